"""Slice, opset 1 (attributes) and opset 10+ (inputs), and Split, which is one Slice per output.

With starts/ends/axes/steps known at compile time, Slice lowers to the IR op `Slice`: one
normalized (start, end, step) per axis, clamped as the spec says, possibly in symbolic sizes
(PyTorch's `out[:, -1, :]` gives start seq-1). The C emitter turns it into a strided copy.
When starts/ends/steps/axes arrive at run time, it lowers to `DynamicSlice`, which normalizes
them in the generated code; the output shape must then be declared by the model.
"""
from ..dims import Dim, ceil_div, maximum, minimum
from ..ir import CompileError
from ..loops import contiguous, nest, strides
from . import LAST, axis_of, const_input, declared_shape, ir, refuse, register, set_output, time_axes

BIG = 2**31  # ends at or beyond this mean "to the end" (PyTorch writes INT64_MAX)


def normalize(node, dim, start, end, step):
    """ONNX Slice semantics for one axis → (start, end, extent), end exclusive, clamped as the
    spec says. With a symbolic `dim` the clamps stay symbolic (min / max), so `y[:, 1:3]` over
    seq has min(seq, 3) - 1 elements, which is 0 when seq is 1."""
    if step == 0:
        raise CompileError("slice step must not be 0", node)
    try:
        if start < 0:
            start = start + dim
        if isinstance(end, int) and end >= BIG:
            end = dim
        elif isinstance(end, int) and end <= -BIG:
            end = -1
        elif end < 0:
            end = end + dim
        if step > 0:
            start, end = minimum(maximum(start, 0), dim), minimum(maximum(end, 0), dim)
            extent = maximum(end - start, 0)
        else:
            start, end = minimum(maximum(start, 0), dim - 1), minimum(maximum(end, -1), dim - 1)
            extent = maximum(start - end, 0)
        extent = ceil_div(extent, abs(step))
    except ValueError as e:  # a symbolic bound whose sign can't be known
        raise CompileError(f"cannot resolve slice bounds: {e}", node)
    return start, end, extent


def _arguments(node):
    """(starts, ends, axes, steps) as lists of ints, for the static forms."""
    if node.version < 10:
        starts, ends = node.attrs["starts"], node.attrs["ends"]
        axes = node.attrs.get("axes", list(range(len(starts))))
        return list(starts), list(ends), list(axes), [1] * len(starts)
    starts, ends = [_size(x) for x in node.input(1).data], [_size(x) for x in node.input(2).data]
    axes = [int(x) for x in node.input(3).data] if node.input(3) is not None else list(range(len(starts)))
    steps = [int(x) for x in node.input(4).data] if node.input(4) is not None else [1] * len(starts)
    return starts, ends, axes, steps


def _size(x):
    return x if isinstance(x, Dim) else int(x)


def is_static(node) -> bool:
    """Whether the arguments are known at compile time: numbers, or starts / ends computed from
    the symbolic sizes (torch.chunk's exports compute ends as (seq + 1) / 2 * k)."""
    if node.version < 10:
        return True
    args = node.inputs[1:]
    return all(v is None or v.data is not None for v in args) and all(
        v is None or v.is_constant for v in args[2:])


def per_axis(node, shape):
    """[(start, end, step)] for every axis of the input, and the output shape."""
    starts, ends, axes, steps = _arguments(node)
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise CompileError("starts, ends, axes and steps differ in length", node)
    bounds = [(0, d, 1) for d in shape]
    out = list(shape)
    for s, e, a, st in zip(starts, ends, axes, steps):
        a = axis_of(node, a, len(shape))
        start, end, out[a] = normalize(node, shape[a], s, e, st)
        bounds[a] = (start, end, st)
    return bounds, out


def infer(node, graph):
    x = node.input(0)
    if is_static(node):
        shape = per_axis(node, x.shape)[1]
    else:
        shape = declared_shape(node, graph, 0, "run-time starts/ends")
        if len(shape) != x.rank:
            raise CompileError("declared output rank differs from the input's", node)
    set_output(node, 0, x.dtype, shape)


def fold(node, data, *rest):
    if not is_static(node):
        return None
    bounds, _ = per_axis(node, data.shape)
    index = tuple(slice(s, None if e < 0 else e, st) for s, e, st in bounds)
    return [data[index]]


def slice_node(node, x, y, bounds):
    """The IR `Slice` of y from x: bounds per axis for NumPy, the strided copy for C."""
    xs = strides(x.shape)
    offset = sum((start * s for (start, _, _), s in zip(bounds, xs)), 0)
    part = nest(y.shape, contiguous(y.shape), (offset, [step * s for (_, _, step), s in zip(bounds, xs)]))
    return ir("Slice", node, [x], [y], bounds=bounds, parts=[part])


def lower(node, graph):
    x = node.input(0)
    if is_static(node):
        return [slice_node(node, x, node.output(0), per_axis(node, x.shape)[0])]
    y = node.output(0)
    return [ir("DynamicSlice", node, node.inputs, node.outputs, in_dims=list(x.shape),
               out_dims=list(y.shape), in_strides=strides(x.shape), out_strides=strides(y.shape))]


def stream(node, classes, time):
    """The whole time axis keeps every step; the last step alone (start -1 or seq - 1) gives a
    last-step value; any other range of steps is not in one chunk. Bounds may come from the
    sequence length."""
    steps = time_axes(node, classes, data={0})
    if not steps:
        return [classes[0]]
    if not is_static(node):
        raise refuse(node, "slices with bounds known only at run time")
    k = steps[0]
    start, end, step = per_axis(node, node.input(0).shape)[0][k]
    if start == 0 and end == time and step == 1:
        return [k]
    if start == time - 1 and end == time and step == 1:
        return [LAST]
    raise refuse(node, f"takes steps [{start}:{end}:{step}] of the time axis, which a chunk alone does not hold")


register("Slice", 1, infer=infer, fold=fold, lower=lower, stream=stream, symbolic=True)


# -- Split ----------------------------------------------------------------------------------------

def split_pieces(node, shape):
    """The axis, and (start, extent) along it of each output. Sizes come from `split` (an
    attribute before opset 13, else an input), else the axis is cut in equal chunks of
    ceil(dim / n) (opset 18's num_outputs: the last may be smaller, or empty)."""
    axis = axis_of(node, node.attrs.get("axis", 0), len(shape))
    dim, n = shape[axis], len(node.outputs)
    sizes = node.attrs.get("split") if node.version < 13 else None
    if sizes is None and node.input(1) is not None:
        sizes = const_input(node, 1, "split").reshape(-1)
    if sizes is not None:
        sizes = [x if isinstance(x, Dim) else int(x) for x in sizes]
        if len(sizes) != n or sum(sizes) != dim:
            raise CompileError(f"split {sizes} does not cut an axis of size {dim} into {n} outputs", node)
        starts = [sum(sizes[:i]) for i in range(n)]
        return axis, list(zip(starts, sizes))
    if node.version >= 18 and node.attrs.get("num_outputs") != n:
        raise CompileError(f"num_outputs {node.attrs.get('num_outputs')} differs from the {n} outputs", node)
    if node.version < 18 and isinstance(dim, int) and dim % n:
        raise CompileError(f"an axis of size {dim} can't be split in {n} equal parts", node)
    chunk = ceil_div(dim, n)
    starts = [minimum(i * chunk, dim) for i in range(n + 1)]
    return axis, [(starts[i], maximum(starts[i + 1] - starts[i], 0)) for i in range(n)]


def split_bounds(node, shape):
    """Per output: [(start, end, step)] for every axis of the input (as Slice lowers to)."""
    axis, pieces = split_pieces(node, shape)
    return [[(start, start + extent, 1) if a == axis else (0, d, 1) for a, d in enumerate(shape)]
            for start, extent in pieces]


def infer_split(node, graph):
    x = node.input(0)
    axis, pieces = split_pieces(node, x.shape)
    for i, (_, extent) in enumerate(pieces):
        set_output(node, i, x.dtype, [extent if a == axis else d for a, d in enumerate(x.shape)])


def fold_split(node, data, *rest):
    return [data[tuple(slice(s, e, st) for s, e, st in bounds)] for bounds in split_bounds(node, data.shape)]


def lower_split(node, graph):
    x = node.input(0)
    return [slice_node(node, x, y, bounds)
            for y, bounds in zip(node.outputs, split_bounds(node, x.shape)) if y is not None]


def stream_split(node, classes, time):
    steps = time_axes(node, classes, data={0})
    if not steps:
        return [classes[0]] * len(node.outputs)
    if split_pieces(node, node.input(0).shape)[0] == steps[0]:
        raise refuse(node, "splits the time axis")
    return [steps[0]] * len(node.outputs)


register("Split", 1, infer=infer_split, fold=fold_split, lower=lower_split, stream=stream_split, symbolic=True)
