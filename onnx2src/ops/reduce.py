"""Reductions: ReduceSum, ReduceMean, ReduceMax, ReduceMin, ReduceProd, ReduceL1, ReduceL2,
ReduceSumSquare, ReduceLogSum, ReduceLogSumExp (axes an attribute before opset 18 -- before 13
for ReduceSum -- and an optional input from then on, with noop_with_empty_axes), ArgMax and
ArgMin, and CumSum.

Reductions and Arg* lower to the IR op `Reduce`: one loop nest over the input whose loops come
in three groups, outermost first: the kept axes, the reduced axes, and the kept axes after the
last reduced one ("inner", contiguous in input and output alike). With no inner loop each output
element is one scalar accumulation; along a contiguous innermost axis a float accumulates in
`lanes` partial sums, so the C loop vectorizes without -ffast-math (loops.lane_split decides
whether a scalar tail follows the groups of lanes). With an inner loop whole
output rows accumulate at once and the innermost loop stays contiguous (ReduceLogSumExp and
Arg*, which carry two values per element, always accumulate scalars). CumSum lowers to the IR op
`CumSum` over the same kind of nest, its axis as the middle group.

Axes must be known at compile time (they decide the output shape); a reduction of constants, or
the sum, product, max or min of symbolic sizes (ReduceProd of a Shape), folds.
"""
import operator

import numpy as np
import onnx

from ..dims import Dim, maximum, minimum, nonneg, product
from ..ir import INT64, CompileError
from ..loops import Nest, lane_split, nest, strides
from . import as_known_array, axis_of, ir, refuse, register, set_output, stream_same

KINDS = {"ReduceSum": "Sum", "ReduceMean": "Mean", "ReduceMax": "Max", "ReduceMin": "Min",
         "ReduceProd": "Prod", "ReduceL1": "L1", "ReduceL2": "L2", "ReduceSumSquare": "SumSquare",
         "ReduceLogSum": "LogSum", "ReduceLogSumExp": "LogSumExp", "ArgMax": "ArgMax", "ArgMin": "ArgMin"}
LANES = 8             # partial accumulators of a float reduction along a contiguous axis
SIZE_KINDS = {"Sum": operator.add, "Prod": operator.mul, "Max": maximum, "Min": minimum}


def check_type(node, dtype, param="T"):
    """Refuse an input type the op's schema (at the node's version) does not allow."""
    schema = onnx.defs.get_schema(node.op_type, node.version, "")
    allowed = next(c.allowed_type_strs for c in schema.type_constraints if c.type_param_str == param)
    if f"tensor({dtype.name})" not in allowed:
        raise CompileError(f"{node.op_type} (opset {node.version}) does not take {dtype.name} inputs", node)


def grouped_nest(shape, groups, *views):
    """One loop nest over the axes of `groups` in order, each group coalesced on its own (loops.nest),
    and the positions of each group's loops in it. views: (offset, stride of each axis) per operand."""
    extents, positions, per_operand = [], [], [[] for _ in views]
    for group in groups:
        part = nest([shape[a] for a in group], *[(0, [s[a] for a in group]) for _, s in views])
        positions.append(list(range(len(extents), len(extents) + len(part.extents))))
        extents += part.extents
        for k, ss in enumerate(part.strides):
            per_operand[k] += ss
    return Nest(extents, [offset for offset, _ in views], per_operand), positions


# -- which axes ---------------------------------------------------------------------------------

def _normalized(node, axes, rank):
    if rank == 0 and len(axes):
        raise CompileError(f"axes {list(axes)} given for a scalar input", node)
    out = sorted(axis_of(node, int(a), rank) for a in axes)
    if len(set(out)) != len(out):
        raise CompileError(f"axes {list(axes)} repeat an axis", node)
    return out


def axes_attribute(node, rank):
    """Before opset 18 (13 for ReduceSum): the `axes` attribute; absent or empty means all."""
    axes = node.attrs.get("axes")
    return _normalized(node, axes, rank) if axes else list(range(rank))


def axes_input(node, rank):
    """Opset 18 (13 for ReduceSum) on: the optional input `axes`, which must be known at compile
    time. Absent or empty means all axes, or none with noop_with_empty_axes (the reduction of
    one element each: ReduceL2 is then |x|, ReduceLogSum log x)."""
    v = node.input(1)
    if v is not None and v.data is None:
        raise CompileError("axes given at run time are not supported (the output shape would depend "
                           "on them); make them a constant", node)
    axes = [] if v is None else list(np.asarray(v.data).reshape(-1))
    if any(isinstance(a, Dim) for a in axes):
        raise CompileError("axes must be numbers, not sizes", node)
    if not axes:
        return [] if node.attrs.get("noop_with_empty_axes", 0) else list(range(rank))
    return _normalized(node, axes, rank)


def _out_shape(shape, axes, keepdims):
    if keepdims:
        return [1 if a in axes else d for a, d in enumerate(shape)]
    return [d for a, d in enumerate(shape) if a not in axes]


# -- ReduceX ------------------------------------------------------------------------------------

def infer_reduce(node, graph, axes_of):
    x = node.input(0)
    check_type(node, x.dtype)
    if node.op_type == "ReduceLogSumExp" and x.dtype.numpy.kind != "f":
        raise CompileError(f"ReduceLogSumExp on {x.dtype.name} is not supported: the spec defines it with "
                           f"Exp, which takes floats (onnxruntime takes exp of integers); cast to float first", node)
    axes = axes_of(node, x.rank)
    set_output(node, 0, x.dtype, _out_shape(x.shape, axes, node.attrs.get("keepdims", 1)))


def reduce_numpy(kind, x, axes):
    """The reduction of x over axes (a tuple), keeping dims, in x's type; as the NumPy target does."""
    t, a = x.dtype, tuple(axes)
    divisor = max(int(np.prod([x.shape[i] for i in a], dtype=np.int64)), 1)
    with np.errstate(all="ignore"):
        if kind == "LogSumExp":
            m = np.max(x, axis=a, keepdims=True, initial=_lowest(t))
            if t.kind == "f":
                m = np.where(np.isinf(m), 0, m).astype(t)
            return (np.log(np.sum(np.exp(x - m), axis=a, keepdims=True)) + m).astype(t)
        if kind in ("Max", "Min"):
            f, start = (np.max, _lowest(t)) if kind == "Max" else (np.min, _highest(t))
            return f(x, axis=a, keepdims=True, initial=start)
        if kind == "Prod":
            return np.prod(x, axis=a, keepdims=True, dtype=t)
        terms = {"L1": np.abs, "L2": np.square, "SumSquare": np.square}.get(kind, lambda v: v)(x)
        s = np.sum(terms, axis=a, keepdims=True, dtype=t)
        if kind == "Mean":
            return s / t.type(divisor) if t.kind == "f" else _trunc_div(s, divisor).astype(t)
        if kind == "L2":
            return np.sqrt(s).astype(t)
        if kind == "LogSum":
            return np.log(s).astype(t)
        return s


def _trunc_div(a, b):
    q = np.abs(a) // b
    return np.where(a < 0, -q, q)


def _lowest(t):
    return False if t.kind == "b" else -np.inf if t.kind == "f" else np.iinfo(t).min


def _highest(t):
    return True if t.kind == "b" else np.inf if t.kind == "f" else np.iinfo(t).max


def fold_reduce(node, data, *rest, axes_of):
    axes = axes_of(node, data.ndim)
    kind = KINDS[node.op_type]
    if data.dtype != object:
        return [reduce_numpy(kind, data, axes).reshape(node.output(0).shape)]
    if kind not in SIZE_KINDS or 0 in [data.shape[a] for a in axes]:
        return None  # sizes (from Shape): sums, products, max and min only
    out = data
    for a in axes:
        out = np.frompyfunc(SIZE_KINDS[kind], 2, 1).reduce(out, axis=a, keepdims=True)
    return [as_known_array(out.reshape(-1), np.int64).reshape(node.output(0).shape)]


def lower_reduce(node, graph, axes_of):
    x = node.input(0)
    return [reduce_node(node, KINDS[node.op_type], axes_of(node, x.rank))]


def reduce_node(node, kind, axes):
    """The IR `Reduce` of node.input(0) over `axes` (sorted) into node.output(0)."""
    x, y = node.input(0), node.output(0)
    shape = x.shape
    count = product(shape[a] for a in axes)
    out_strides = [0 if a in axes else s for a, s in enumerate(strides(_out_shape(shape, axes, True)))]
    views = [(0, out_strides), (0, strides(shape))]
    kept = [a for a in range(len(shape)) if a not in axes]
    looped = [a for a in axes if not (isinstance(shape[a], int) and shape[a] == 1)]
    inner = [a for a in kept if a > looped[-1]] if looped else []
    if kind in ("LogSumExp", "ArgMax", "ArgMin"):
        inner = []  # two values per output element: scalar accumulation only
    walk, groups = grouped_nest(shape, [[a for a in kept if a not in inner], axes, inner], *views)
    lanes = row = whole = None
    tail = False
    if (x.dtype.numpy.kind == "f" and kind not in ("LogSumExp", "ArgMax", "ArgMin") and groups[1]
            and not groups[2] and not (isinstance(walk.extents[-1], int) and walk.extents[-1] < 2 * LANES)):
        lanes = LANES  # the innermost loop is reduced, contiguous and long enough
        row = Nest(walk.extents[:-1], walk.offsets, [s[:-1] for s in walk.strides])
        whole, tail = lane_split(walk.extents[-1], lanes)
    attrs = dict(kind=kind, x_dtype=x.dtype, axes=list(axes), nest=walk, groups=groups, row=row,
                 lanes=lanes, whole=whole, tail=tail, divisor=maximum(count, 1), empty=not nonneg(count - 1),
                 last=bool(node.attrs.get("select_last_index", 0)))
    return ir("Reduce", node, [x], [y], **attrs)


def stream_over(node, classes, time, axes_of):
    """Per-step when the reduced (or, for CumSum, summed along) axes leave the time axis alone."""
    k, = stream_same(node, classes, time)
    axes = axes_of(node, node.input(0).rank)
    if k in axes:
        raise refuse(node, "reduces over the time axis" if node.op_type != "CumSum" else "sums along the time axis")
    keepdims = node.op_type == "CumSum" or node.attrs.get("keepdims", 1)
    return [k if keepdims else k - sum(a < k for a in axes)]


REDUCE_OPS = ("ReduceMean ReduceMax ReduceMin ReduceProd ReduceL1 ReduceL2 ReduceSumSquare "
              "ReduceLogSum ReduceLogSumExp")


def _register_reduce(ops, since, axes_of):
    register(ops, since, symbolic=True,
             infer=lambda node, graph: infer_reduce(node, graph, axes_of),
             fold=lambda node, *data: fold_reduce(node, *data, axes_of=axes_of),
             lower=lambda node, graph: lower_reduce(node, graph, axes_of),
             stream=lambda node, classes, time: stream_over(node, classes, time, axes_of))


_register_reduce(REDUCE_OPS + " ReduceSum", 1, axes_attribute)
_register_reduce("ReduceSum", 13, axes_input)
_register_reduce(REDUCE_OPS, 18, axes_input)


# -- ArgMax / ArgMin ------------------------------------------------------------------------------

def _arg_axis(node, x):
    if x.rank == 0:
        raise CompileError(f"{node.op_type} needs an input of rank 1 or more", node)
    axis = axis_of(node, node.attrs.get("axis", 0), x.rank)
    if isinstance(x.shape[axis], int) and x.shape[axis] == 0:
        raise CompileError(f"{node.op_type} along axis {axis} of size 0 has no answer", node)
    return axis


def infer_arg(node, graph):
    x = node.input(0)
    check_type(node, x.dtype)
    axis = _arg_axis(node, x)
    set_output(node, 0, INT64, _out_shape(x.shape, [axis], node.attrs.get("keepdims", 1)))


def fold_arg(node, x):
    if x.dtype == object:
        return None
    axis = _arg_axis(node, node.input(0))
    pick = np.argmax if node.op_type == "ArgMax" else np.argmin
    if node.attrs.get("select_last_index", 0):
        index = x.shape[axis] - 1 - pick(np.flip(x, axis), axis=axis)
    else:
        index = pick(x, axis=axis)
    return [index.astype(np.int64).reshape(node.output(0).shape)]


register("ArgMax ArgMin", 1, infer=infer_arg, fold=fold_arg,
         stream=lambda node, classes, time: stream_over(node, classes, time, lambda n, r: [_arg_axis(n, n.input(0))]),
         lower=lambda node, graph: [reduce_node(node, node.op_type, [_arg_axis(node, node.input(0))])])


# -- CumSum -------------------------------------------------------------------------------------

def _cumsum_axis(node, rank):
    v = node.input(1)
    if v.data is None:
        raise CompileError("an axis given at run time is not supported; make it a constant", node)
    data = np.asarray(v.data).reshape(-1)
    if data.size != 1 or isinstance(data[0], Dim):
        raise CompileError("axis must be one number", node)
    if rank == 0:
        raise CompileError("CumSum needs an input of rank 1 or more", node)
    return axis_of(node, int(data[0]), rank)


def infer_cumsum(node, graph):
    x = node.input(0)
    check_type(node, x.dtype)
    _cumsum_axis(node, x.rank)
    set_output(node, 0, x.dtype, x.shape)


def fold_cumsum(node, x, axis):
    a = _cumsum_axis(node, x.ndim)
    reverse = node.attrs.get("reverse", 0)
    if reverse:
        x = np.flip(x, a)
    if node.attrs.get("exclusive", 0):  # the sums of the elements before: shift in a zero
        pad = list(x.shape)
        pad[a] = 1
        x = np.delete(np.concatenate([np.zeros_like(x, shape=pad), x], axis=a), -1, axis=a)
    out = np.cumsum(x, axis=a, dtype=x.dtype)
    return [np.flip(out, a) if reverse else out]


def lower_cumsum(node, graph):
    """One nest [axes before][axis][axes after], walking the axis backwards when reversed, and the
    same nest shifted one step back along the axis (the previous partial sum, and for exclusive
    sums the previous element)."""
    x = node.input(0)
    shape, axis = x.shape, _cumsum_axis(node, x.rank)
    reverse = bool(node.attrs.get("reverse", 0))
    s = strides(shape)
    walk_strides = [-st if a == axis and reverse else st for a, st in enumerate(s)]
    start = (shape[axis] - 1) * s[axis] if reverse else 0
    view = (start, walk_strides)
    back = (start - walk_strides[axis], walk_strides)
    groups = [list(range(axis)), [axis], list(range(axis + 1, len(shape)))]
    walk, positions = grouped_nest(shape, groups, view, view)
    prev = grouped_nest(shape, groups, back, back)[0]
    if not positions[1] or not positions[2]:
        prev = None  # no previous row (the axis has one element), or a running scalar does
    return [ir("CumSum", node, [x], node.outputs, axis=axis, exclusive=bool(node.attrs.get("exclusive", 0)),
               reverse=reverse, nest=walk, prev=prev, groups=positions)]


register("CumSum", 11, infer=infer_cumsum, fold=fold_cumsum, lower=lower_cumsum, symbolic=True,
         stream=lambda node, classes, time: stream_over(node, classes, time, lambda n, r: [_cumsum_axis(n, r)]))
