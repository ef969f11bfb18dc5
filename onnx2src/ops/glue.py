"""Shape glue: Size, Tile and Range, which exporters put between the layers that compute.

Size is known at compile time, as a symbolic size when the input's dims are symbolic (like
Shape, whose chains it joins). Tile copies through a loop nest over an [r0, d0, r1, d1, ...]
view of its output in which every repeat axis reads the input with stride 0, so it is a strided
copy like Expand (IR op `Tile`). Range folds when its bounds are known and its length is a
number; otherwise (a length such as `seq`, or bounds given at run time with a declared output
shape) the IR op `Range` reads start, limit and delta, checks the length, and writes
start + i * delta.
"""
import numpy as np

from ..dims import Dim, ceil_div, is_static, maximum, nonneg, product
from ..ir import INT64, CompileError
from ..loops import nest, strides
from . import declared_shape, ir, known, refuse, register, set_output, spread, time_axes


# -- Size -----------------------------------------------------------------------------------------

def size_data(n) -> np.ndarray:
    """A 0-d int64 array of a size, or a 0-d object array holding it when it is symbolic."""
    if is_static(n):
        return np.array(int(n), np.int64)
    data = np.empty((), object)
    data[()] = n
    return data


def infer_size(node, graph):
    set_output(node, 0, INT64, ())
    node.output(0).data = size_data(product(node.input(0).shape))


register("Size", 1, infer=infer_size, symbolic=True,
         fold=lambda node, x: [size_data(product(node.input(0).shape))])


# -- Tile -----------------------------------------------------------------------------------------

def _known_repeats(node, x):
    """Repeats known at compile time (numbers, or sizes from a Shape chain), or None."""
    r = node.input(1)
    if r is None:
        raise CompileError("the repeats input is missing", node)
    if r.rank != 1 or r.shape[0] != x.rank:
        raise CompileError(f"repeats of shape {list(r.shape)} do not match the input's rank {x.rank}", node)
    if not known(r):
        return None
    return [d if isinstance(d, Dim) else _int(d, node) for d in r.data]


def _int(v, node):
    if float(v) != int(v):
        raise CompileError(f"a repeat count of {v} is not an integer", node)
    return int(v)


def _repeats(node, graph):
    """(repeats, from_data): repeats from the input, or implied by the declared output shape
    when they arrive at run time (then the generated code checks them)."""
    x = node.input(0)
    repeats = _known_repeats(node, x)
    if repeats is not None:
        for r in repeats:
            if not nonneg(r):
                raise CompileError(f"repeats {repeats} has a count that is or may be negative", node)
        return repeats, False
    out = declared_shape(node, graph, 0, "repeats given at run time")
    if len(out) != x.rank:
        raise CompileError(f"the declared output shape {list(out)} does not have the input's rank {x.rank}", node)
    repeats = []
    for d, o in zip(x.shape, out):
        if d == o and not (is_static(d) and d == 0):
            repeats.append(1)
        elif is_static(d) and is_static(o) and d > 0 and o % d == 0:
            repeats.append(o // d)
        else:
            raise CompileError(f"repeats given at run time: the declared output shape {list(out)} does not "
                               f"tell them from the input shape {list(x.shape)}", node)
    return repeats, True


def infer_tile(node, graph):
    x = node.input(0)
    repeats, _ = _repeats(node, graph)
    set_output(node, 0, x.dtype, [d * r for d, r in zip(x.shape, repeats)])


def fold_tile(node, x, *rest):
    return [np.tile(x, [int(d) // int(s) if s else 0 for d, s in zip(node.output(0).shape, x.shape)])]


def lower_tile(node, graph):
    """Output axis k, of d_k * r_k elements, seen as [r_k, d_k]: copy number j of the input lies
    at j * d_k along it. The input is read with stride 0 along each r_k."""
    x, y = node.input(0), node.output(0)
    repeats, from_data = _repeats(node, graph)
    xs, ys = strides(x.shape), strides(y.shape)
    extents, y_strides, x_strides = [], [], []
    for d, r, sx, sy in zip(x.shape, repeats, xs, ys):
        extents += [r, d]
        y_strides += [d * sy, sy]
        x_strides += [0, sx]
    part = nest(extents, (0, y_strides), (0, x_strides))
    static = all(is_static(r) for r in repeats)
    inputs = [x, node.input(1)] if from_data else [x]
    return [ir("Tile", node, inputs, [y], repeats=repeats if static else None, parts=[part])]


def stream_tile(node, classes, time):
    """A per-step input repeated along other axes only; a time-independent one repeated over
    the sequence length is the same at every step."""
    steps = time_axes(node, classes, data={0})
    y = node.output(0)
    if not steps:
        return [spread(node, y, classes[0], time)]
    if y.shape[steps[0]] != time:
        raise refuse(node, "repeats the time axis")
    return [steps[0]]


register("Tile", 6, infer=infer_tile, fold=fold_tile, lower=lower_tile, stream=stream_tile, symbolic=True)


# -- Range ----------------------------------------------------------------------------------------

RANGE_TYPES = ("float", "double", "int16", "int32", "int64")


def _scalars(node):
    names = ("start", "limit", "delta")
    if len(node.inputs) != 3 or any(v is None for v in node.inputs):
        raise CompileError("Range needs its three inputs start, limit and delta", node)
    types = {v.dtype.name for v in node.inputs}
    if len(types) != 1:
        raise CompileError(f"start, limit and delta must have one type (they have {', '.join(sorted(types))})", node)
    if node.input(0).dtype.name not in RANGE_TYPES:
        raise CompileError(f"Range of {node.input(0).dtype.name} is not supported", node)
    for name, v in zip(names, node.inputs):
        if product(v.shape) != 1:
            raise CompileError(f"{name} must be a scalar, not of shape {list(v.shape)}", node)


def _as_size(v, node):
    """A known start, limit or delta as an int or a symbolic size, when it is a whole number."""
    if isinstance(v, Dim):
        return v
    if float(v) != np.floor(float(v)):
        return None
    return int(v)


def range_length(node, start, limit, delta):
    """max(ceil((limit - start) / delta), 0), symbolic when start or limit are."""
    if not any(isinstance(v, Dim) for v in (start, limit, delta)):
        if float(delta) == 0:
            raise CompileError("delta is 0", node)
        steps = np.ceil((float(limit) - float(start)) / float(delta))
        if not np.isfinite(steps):
            raise CompileError(f"start {start}, limit {limit} and delta {delta} give no finite length", node)
        return max(int(steps), 0)
    start, limit, delta = (_as_size(v, node) for v in (start, limit, delta))
    if delta is None or isinstance(delta, Dim):
        raise CompileError("with a symbolic start or limit, delta must be a whole number known at compile time", node)
    if start is None or limit is None:
        raise CompileError("a fractional start or limit with a symbolic one is not supported", node)
    if delta == 0:
        raise CompileError("delta is 0", node)
    span = limit - start if delta > 0 else start - limit
    try:
        return ceil_div(maximum(span, 0), abs(delta))
    except ValueError as e:
        raise CompileError(f"cannot compute the length at compile time: {e}", node)


def infer_range(node, graph):
    _scalars(node)
    dtype = node.input(0).dtype
    if all(known(v) for v in node.inputs):
        start, limit, delta = (v.data.reshape(-1)[0] for v in node.inputs)
        set_output(node, 0, dtype, (range_length(node, start, limit, delta),))
        return
    shape = declared_shape(node, graph, 0, "start, limit or delta given at run time")
    if len(shape) != 1:
        raise CompileError(f"the declared output shape {list(shape)} is not 1-D", node)
    set_output(node, 0, dtype, shape)


def fold_range(node, start, limit, delta):
    start, limit, delta = (x.reshape(-1)[0] for x in (start, limit, delta))
    n = node.output(0).shape[0]
    if any(isinstance(v, Dim) for v in (start, delta)):
        out = np.empty(n, object)
        out[:] = [start + i * delta for i in range(n)]
        return [out]
    # as the ONNX reference does: in double (or int64), then in the output type
    wide = np.float64 if node.output(0).dtype.numpy.kind == "f" else np.int64
    return [(wide(start) + np.arange(n, dtype=wide) * wide(delta)).astype(node.output(0).dtype.numpy)]


def lower_range(node, graph):
    return [ir("Range", node, node.inputs, node.outputs, count=node.output(0).shape[0])]


register("Range", 11, infer=infer_range, fold=fold_range, lower=lower_range, symbolic=True)
