"""LayerNormalization (opset 17): each row of the axes from `axis` on is normalized to zero mean
and unit variance, then scaled by Scale and shifted by B (both unidirectionally broadcast to X),
with the optional outputs Mean and InvStdDev of shape [d0, ..., d(axis-1), 1, ..., 1].

As the spec's function body defines it: the mean, then the mean of the squared deviations from
it (two passes, so a large mean does not cancel the variance away), computed in X's type as
onnxruntime does whatever stash_type says (float is the only stash_type the spec allows with a
supported type). Lowers to the IR op `LayerNorm`: a loop nest whose outer loops walk the rows and
whose inner loops walk one row, in X (= Y), Scale, B and the row statistics at once; the sums
run over the contiguous row in partial sums (lanes), which vectorize and keep the mean accurate.
"""
import numpy as np

from ..dims import is_static, product
from ..ir import FLOAT, CompileError, dtype_from_onnx
from ..loops import Nest, broadcast_view, contiguous, lane_split
from . import axis_of, ir, refuse, register, set_output, stream_same
from .elementwise import broadcast
from .reduce import LANES, check_type, grouped_nest


def _axis(node, x):
    if x.rank == 0:
        raise CompileError("LayerNormalization needs an input of rank 1 or more", node)
    return axis_of(node, node.attrs.get("axis", -1), x.rank)


def _epsilon(node) -> float:
    return float(node.attrs.get("epsilon", np.float32(1e-5)))  # a float attribute: 1e-5 as float32


def _stash_type(node):
    stash = dtype_from_onnx(node.attrs.get("stash_type", 1), "stash_type", node)
    if stash != FLOAT:
        raise CompileError(f"stash_type {stash.name} is not supported (the spec allows float)", node)
    return stash


def infer(node, graph):
    x = node.input(0)
    check_type(node, x.dtype)
    axis, stash = _axis(node, x), _stash_type(node)
    for i, what in ((1, "Scale"), (2, "B")):
        v = node.input(i)
        if v is None:
            continue
        if v.dtype != x.dtype:
            raise CompileError(f"{what} is {v.dtype.name} but X is {x.dtype.name}", node)
        if v.rank > x.rank or broadcast(node, x.shape, v.shape) != tuple(x.shape):
            raise CompileError(f"{what} of shape {list(v.shape)} does not broadcast to X {list(x.shape)}", node)
    if any(is_static(d) and d == 0 for d in x.shape[axis:]):
        raise CompileError("LayerNormalization over an empty axis has no mean", node)
    stats = list(x.shape[:axis]) + [1] * (x.rank - axis)
    set_output(node, 0, x.dtype, x.shape)
    set_output(node, 1, stash, stats)
    set_output(node, 2, stash, stats)


def fold(node, x, scale, b=None):
    axes = tuple(range(_axis(node, node.input(0)), x.ndim))
    with np.errstate(all="ignore"):
        mean = np.mean(x, axis=axes, keepdims=True)
        d = x - mean
        inv = 1 / np.sqrt(np.mean(d * d, axis=axes, keepdims=True) + x.dtype.type(_epsilon(node)))
        y = d * inv * scale + (b if b is not None else 0)
    return [y.astype(x.dtype), mean.astype(np.float32), inv.astype(np.float32)]


def lower(node, graph):
    x = node.input(0)
    axis, shape = _axis(node, x), x.shape
    stats = list(shape[:axis]) + [1] * (x.rank - axis)
    views = [contiguous(shape), broadcast_view(stats, shape)]
    views += [broadcast_view(v.shape, shape) for v in node.inputs[1:3] if v is not None]
    walk, groups = grouped_nest(shape, [list(range(axis)), list(range(axis, x.rank))], *views)
    rows = len(groups[0])  # the nest of the rows alone: where each row starts
    start = Nest(walk.extents[:rows], walk.offsets, [s[:rows] for s in walk.strides])
    count = product(shape[axis:])
    lanes = 1 if is_static(count) and count < 2 * LANES else LANES
    whole, tail = lane_split(count, lanes)
    scale, b = node.input(1), node.input(2)
    mean, inv_std_dev = node.output(1), node.output(2)
    return [ir("LayerNorm", node, [x, scale] + ([b] if b is not None else []),
               [node.output(0), mean, inv_std_dev], axis=axis, epsilon=_epsilon(node),
               nest=walk, groups=groups, start=start, count=count, lanes=lanes, whole=whole, tail=tail,
               bias=b is not None, mean=mean is not None, inv_std_dev=inv_std_dev is not None)]


def stream(node, classes, time):
    """Per-step when the time axis is one of the rows' axes, before `axis`."""
    k = stream_same(node, classes, time)[0]
    if k >= _axis(node, node.input(0)):
        raise refuse(node, "normalizes over the time axis")
    return [k] * 3


register("LayerNormalization", 17, infer=infer, fold=fold, lower=lower, stream=stream)
