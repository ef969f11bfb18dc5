"""Pad: opset 2 (attributes `pads`, `value`), 11+ (`pads` and `constant_value` as inputs), 18+
(an `axes` input), 19+ (mode `wrap`), any rank.

Per axis, `begin` and `end` pads may be negative: they crop first (as onnxruntime does), and
the non-constant modes (edge, reflect, wrap) then pad from the cropped data. Everything is
decided here and lowered to the IR op `Pad`:
  constant   fill the output with the value, then copy the kept part of the input into place (a
             loop nest, loops.py), so sizes may be symbolic (a crop clamps at zero, as a slice);
  edge, reflect, wrap   per output axis: the first input index kept (`start`), the kept length
             (`length`, at least 1) and, for reflect, its period 2 * (length - 1); the generated
             code maps each output index into [0, length).
onnxruntime refuses reflect pads longer than length - 1; we refuse them when the length is known
and otherwise continue the reflection periodically, as numpy.pad does.
"""
import numpy as np

from ..dims import Dim, is_static, maximum, nonneg
from ..ir import CompileError
from ..loops import nest, strides
from . import axis_of, const_input, ir, refuse, register, set_output, stream_same

MODES = ("constant", "reflect", "edge")
WRAP_SINCE = 19
LIMIT = 2**31  # pads at or beyond this (either sign) are refused: sizes must stay far from overflow


def _pads(node, rank):
    """(begin, end) pads for every axis of a rank-`rank` input, as ints."""
    if node.version < 11:
        raw = node.attrs.get("pads")
    else:
        raw = const_input(node, 1, "pads")
        if raw.dtype == object and any(isinstance(p, Dim) for p in raw.flat):
            raise CompileError("pads computed from symbolic sizes are not supported", node)
    if raw is None:
        raise CompileError("the pads are missing", node)
    raw = [int(p) for p in np.asarray(raw).reshape(-1)]
    if any(abs(p) >= LIMIT for p in raw):
        raise CompileError(f"pads {raw} are beyond ±2^31", node)
    axes = list(range(rank))
    if node.version >= 18 and node.input(3) is not None:
        given = const_input(node, 3, "axes").reshape(-1)
        axes = [axis_of(node, int(a), rank) for a in given]
        if len(set(axes)) != len(axes):
            raise CompileError(f"axes {[int(a) for a in given]} repeat an axis", node)
    if len(raw) != 2 * len(axes):
        raise CompileError(f"{len(raw)} pads for {len(axes)} axes (need two per axis)", node)
    begin, end = [0] * rank, [0] * rank
    for i, a in enumerate(axes):
        begin[a], end[a] = raw[i], raw[i + len(axes)]
    return begin, end


def _mode(node):
    mode = node.attrs.get("mode", "constant")
    if mode not in MODES + (("wrap",) if node.version >= WRAP_SINCE else ()):
        raise CompileError(f'mode "{mode}" is not supported (opset {node.version} has '
                           f"{', '.join(MODES + (('wrap',) if node.version >= WRAP_SINCE else ()))})", node)
    return mode


def _plan(node, shape):
    """The mode, and per axis (output size, begin pad, end pad, first index kept, elements cut
    from the end, length kept), the pads clipped at 0; refuses what onnxruntime refuses."""
    mode = _mode(node)
    if not shape:
        raise CompileError("the input is a scalar: it has no axis to pad", node)
    begin, end = _pads(node, len(shape))
    axes = []
    for a, (d, b, e) in enumerate(zip(shape, begin, end)):
        start, cut = max(-b, 0), max(-e, 0)          # cropped from the front and the back
        kept = d - start - cut
        if mode == "constant":
            out = d + b + e
            if not nonneg(out):
                if is_static(out):
                    raise CompileError(f"pads {b}, {e} leave axis {a} of size {d} with size {out}", node)
                out = maximum(out, 0)                 # an empty result, as a slice would give
            kept = maximum(kept, 0)
        else:
            if not nonneg(kept - 1):
                raise CompileError(f"{mode} padding needs at least one element of axis {a} after "
                                   f"cropping (pads {b}, {e}, size {d})", node)
            out = kept + max(b, 0) + max(e, 0)
            if mode == "reflect" and is_static(kept) and max(b, e) > kept - 1:
                raise CompileError(f"reflect pads {b}, {e} exceed {kept - 1}, the size of axis {a} "
                                   f"after cropping less one", node)
        axes.append((out, max(b, 0), max(e, 0), start, cut, kept))
    return mode, axes


def _value(node):
    """The constant value: an attribute (opsets 2-10), an input (11+) or 0; a float (rendered
    in the output's type), or the input Value itself when it is only known at run time or a
    float would not hold it exactly."""
    if node.version < 11:
        return float(node.attrs.get("value", 0.0)), None
    v = node.input(2)
    if v is None:
        return 0.0, None
    if not all(is_static(d) for d in v.shape) or int(np.prod(v.shape)) != 1:
        raise CompileError(f"constant_value must hold one element, not shape {list(v.shape)}", node)
    if v.dtype != node.input(0).dtype:
        raise CompileError(f"constant_value is {v.dtype.name}, the data {node.input(0).dtype.name}", node)
    if v.is_constant:
        x = v.data.reshape(-1)[0]
        if v.dtype.numpy.kind in "fb" or abs(int(x)) < 2**53:
            return float(x), None
    return 0.0, v


def infer(node, graph):
    x = node.input(0)
    _, axes = _plan(node, x.shape)
    _value(node)
    set_output(node, 0, x.dtype, [a[0] for a in axes])


def fold(node, data, *rest):
    if data.dtype == object:
        return None
    mode, axes = _plan(node, data.shape)
    value, runtime = _value(node)
    if runtime is not None:
        value = runtime.data.reshape(-1)[0]
    src = tuple(slice(start, -cut if cut else None) for _, _, _, start, cut, _ in axes)
    if mode == "constant":
        y = np.full([a[0] for a in axes], value, dtype=data.dtype)
        y[tuple(slice(pb, pb + kept) for _, pb, _, _, _, kept in axes)] = data[src]
        return [y]
    return [np.pad(data[src], [(pb, pe) for _, pb, pe, _, _, _ in axes], mode=mode)]


def lower(node, graph):
    x, y = node.input(0), node.output(0)
    mode, axes = _plan(node, x.shape)
    value, runtime = _value(node)
    xs, ys = strides(x.shape), strides(y.shape)
    # NumPy: the input kept (negative pads crop), and where it goes in the output
    src = [[start, -cut if cut else None] for _, _, _, start, cut, _ in axes]
    dst = [[pb, -pe if pe else None] for _, pb, pe, _, _, _ in axes]
    attrs = dict(mode=mode, value=value, src=src, dst=dst, pads=[[pb, pe] for _, pb, pe, _, _, _ in axes],
                 crop=any(start or cut for _, _, _, start, cut, _ in axes))
    inputs = [x]
    if mode == "constant":
        kept = [a[5] for a in axes]
        y_off = sum((pb * s for (_, pb, _, _, _, _), s in zip(axes, ys)), 0)
        x_off = sum((a[3] * s for a, s in zip(axes, xs)), 0)
        attrs["parts"] = [nest(kept, (y_off, ys), (x_off, xs))]
        inputs += [runtime] if runtime is not None else []
    else:
        maps = _index_maps(mode, axes, xs)
        attrs.update({key: [m[i] for m in maps] for i, key in enumerate(
            ("axis_modes", "out_dims", "pad_begin", "start", "length", "last", "period", "in_strides"))})
    return [ir("Pad", node, inputs, [y], **attrs)]


def _index_maps(mode, axes, xs):
    """Per loop of the output: how its index maps into the input. Runs of axes that are neither
    padded nor cropped become one loop ("copy"); a reflected axis whose length may be 1 at run
    time is "reflect_short" (a single element reflects onto itself)."""
    maps, merged = [], False           # merged: whether the last loop may take in the next axis
    for (out, pb, pe, start, cut, kept), stride in zip(axes, xs):
        if not (pb or pe or start or cut):
            if merged:
                maps[-1] = ("copy", maps[-1][1] * out, 0, 0, maps[-1][4] * out, 0, 0, stride)
            else:
                maps.append(("copy", out, 0, 0, kept, 0, 0, stride))
            merged = True
            continue
        kind = "copy" if not (pb or pe) else mode
        if kind == "reflect" and not nonneg(kept - 2):
            kind = "reflect_short"
        maps.append((kind, out, pb, start, kept, kept - 1, 2 * (kept - 1), stride))
        merged = False
    return maps


def stream(node, classes, time):
    """Per-step when the time axis is neither padded nor cropped."""
    k, = stream_same(node, classes, time)
    begin, end = _pads(node, node.input(0).rank)
    if begin[k] or end[k]:
        raise refuse(node, f"pads the time axis ({begin[k]} before, {end[k]} after)")
    return [k]


register("Pad", 2, infer=infer, fold=fold, lower=lower, stream=stream)
