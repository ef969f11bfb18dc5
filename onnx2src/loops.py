"""Loop nests over strided views: how lowering tells the C emitter which elements an op visits.

An op that walks tensors element by element (elementwise math, copies through transposes,
slices, broadcasts and concatenations) lowers to a `Nest`: the extents of its loops and, per
operand, the element offset and the stride of each loop. Loops of extent 1 are dropped and
adjacent loops that are contiguous in every operand are merged, so `y = x + b` over [batch, seq,
20] with a broadcast bias is two loops, not three. All of this is layout, decided here; the
emitter only spells the result (`_i0*20 + _i1`).
"""
from dataclasses import dataclass
from typing import List, Sequence, Tuple

from .dims import DimLike, is_static


@dataclass
class Nest:
    extents: List[DimLike]            # one per loop, outermost first
    offsets: List[DimLike]            # one per operand
    strides: List[List[DimLike]]      # per operand, one per loop


View = Tuple[DimLike, Sequence[DimLike]]
PANEL = 16  # columns of the C matrix kernel's weight panels (passes/pack_weights.py), which
            # lowering weighs when it picks a layout (ops/conv.py)   # (element offset, stride of each axis)


def lane_split(count: DimLike, lanes: int):
    """How a contiguous run of `count` elements splits over `lanes` partial accumulators: (whole,
    tail). whole: the elements the groups of `lanes` cover when `count` is known at compile time,
    else None (the loop then tests `j + lanes <= count` as it runs); tail: whether single elements
    may remain after them. A loop whose trip count is known to be zero is never emitted: gcc's
    loop analysis warns on such a dead tail (-Waggressive-loop-optimizations) once it is inlined."""
    if lanes == 1:
        return count, False
    if is_static(count):
        return count - count % lanes, count % lanes != 0
    return None, True


def strides(shape) -> list:
    """Row-major strides, in elements, of a contiguous tensor of this shape."""
    out, step = [], 1
    for d in reversed(shape):
        out.insert(0, step)
        step = step * d
    return out


def contiguous(shape, offset: DimLike = 0) -> View:
    return offset, strides(shape)


def broadcast_view(shape, out_shape) -> View:
    """`shape` read as if broadcast to `out_shape`: stride 0 along the broadcast axes."""
    pad = len(out_shape) - len(shape)
    own = strides(shape)
    return 0, [0] * pad + [0 if (is_static(d) and d == 1) else s for d, s in zip(shape, own)]


def nest(extents, *views: View) -> Nest:
    """The loop nest visiting `extents` (one per axis) in every view at once, coalesced."""
    loops = [(e, [s[i] for _, s in views]) for i, e in enumerate(extents) if not (is_static(e) and e == 1)]
    merged = []
    for e, ss in loops:
        if merged and all(ps == s * e for ps, s in zip(merged[-1][1], ss)):
            merged[-1] = (merged[-1][0] * e, ss)
        else:
            merged.append((e, ss))
    return Nest([e for e, _ in merged], [offset for offset, _ in views],
                [[ss[k] for _, ss in merged] for k in range(len(views))])
