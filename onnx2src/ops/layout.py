"""Ops that only rearrange data: Transpose, Concat, Expand, and the ones that change a shape
without moving a byte (Reshape, Flatten, Squeeze, Unsqueeze, Identity, Dropout in inference).

The latter lower to the IR op `View`: the output shares the input's storage, so in C they cost
nothing (the memory planner merges their buffers). The others keep their meaning for NumPy
(perm, axis) and carry `parts`: the loop nest copying each input into the output (loops.py).
"""
import numpy as np

from ..dims import Dim, product
from ..loops import broadcast_view, contiguous, nest, strides
from ..ir import BY_NUMPY, CompileError
from . import (axis_of, const_input, declared_shape, ir, known, refuse, register, set_output, spread,
               stream_same, time_axes)
from .elementwise import broadcast


def lower_view(node, graph):
    return [ir("View", node, node.inputs[:1], node.outputs[:1])]


# -- Transpose ------------------------------------------------------------------------------------

def _perm(node, rank):
    perm = node.attrs.get("perm", list(range(rank))[::-1])
    if sorted(axis_of(node, p, rank) for p in perm) != list(range(rank)):
        raise CompileError(f"perm {list(perm)} is not a permutation of {rank} axes", node)
    return [axis_of(node, p, rank) for p in perm]


def infer_transpose(node, graph):
    x = node.input(0)
    set_output(node, 0, x.dtype, [x.shape[p] for p in _perm(node, x.rank)])


def stream_transpose(node, classes, time):
    k, = stream_same(node, classes, time)
    return [_perm(node, node.input(0).rank).index(k)]


register("Transpose", 1, infer=infer_transpose, symbolic=True, stream=stream_transpose,
         fold=lambda node, x: [np.transpose(x, _perm(node, x.ndim))],
         lower=lambda node, graph: [lower_transpose(node)])


def lower_transpose(node):
    x, perm = node.input(0), _perm(node, node.input(0).rank)
    xs = strides(x.shape)
    out = [x.shape[p] for p in perm]
    part = nest(out, contiguous(out), (0, [xs[p] for p in perm]))
    return ir("Transpose", node, node.inputs, node.outputs, perm=perm, parts=[part])


# -- Squeeze / Unsqueeze --------------------------------------------------------------------------

def _axes(node, rank, what):
    """Axes from the attribute (before opset 13) or the second input (13 and later)."""
    axes = node.attrs.get("axes") if node.version < 13 else const_input(node, 1, "axes")
    if axes is None:
        return None
    axes = [axis_of(node, int(a), rank) for a in np.asarray(axes).reshape(-1)]
    if len(set(axes)) != len(axes):
        raise CompileError(f"{what} axes repeat", node)
    return axes


def _runtime_axes(node, graph):
    """Axes arriving as a run-time input: the model must declare the output shape."""
    if node.version >= 13 and node.input(1) is not None and not known(node.input(1)):
        set_output(node, 0, node.input(0).dtype, declared_shape(node, graph, 0, "run-time axes"))
        return True
    return False


def infer_squeeze(node, graph):
    if _runtime_axes(node, graph):
        return
    x = node.input(0)
    axes = _axes(node, x.rank, "squeeze")
    if axes is None:
        axes = [i for i, d in enumerate(x.shape) if d == 1]
    for a in axes:
        if x.shape[a] != 1:
            depends = x.shape[a].symbols() if isinstance(x.shape[a], Dim) else []
            hint = (f" (it depends on {', '.join(depends)}: fix that with --fix-dim "
                    f"{depends[0]}=N)" if depends else "")
            raise CompileError(f"cannot squeeze axis {a} of size {x.shape[a]}{hint}", node)
    set_output(node, 0, x.dtype, [d for i, d in enumerate(x.shape) if i not in axes])


def infer_unsqueeze(node, graph):
    if _runtime_axes(node, graph):
        return
    x = node.input(0)
    added = node.attrs.get("axes", []) if node.version < 13 else const_input(node, 1, "axes")
    rank = x.rank + np.asarray(added).size
    axes = _axes(node, rank, "unsqueeze")
    dims = iter(x.shape)
    set_output(node, 0, x.dtype, [1 if i in axes else next(dims) for i in range(rank)])


def fold_reshaped(node, x, *rest):
    return [x.reshape(node.output(0).shape)]


def stream_reshape(node, classes, time):
    """Squeeze, Unsqueeze, Reshape, Flatten: each step keeps its elements in place when the dims
    before and after the time axis hold as many elements in the output as in the input (the
    second input, axes or a shape, may come from the sequence length)."""
    steps = time_axes(node, classes, data={0})
    if not steps:
        return [classes[0]]
    x, y, k = node.input(0), node.output(0), steps[0]
    for j, d in enumerate(y.shape):
        if (d == time and product(y.shape[:j]) == product(x.shape[:k])
                and product(y.shape[j + 1:]) == product(x.shape[k + 1:])):
            return [j]
    raise refuse(node, "merges the time axis with another")


register("Squeeze", 1, infer=infer_squeeze, fold=fold_reshaped, lower=lower_view, stream=stream_reshape,
         symbolic=True)
register("Unsqueeze", 1, infer=infer_unsqueeze, fold=fold_reshaped, lower=lower_view, stream=stream_reshape,
         symbolic=True)


# -- Reshape / Flatten ----------------------------------------------------------------------------

def infer_reshape(node, graph):
    x = node.input(0)
    if node.version < 5:
        target = node.attrs["shape"]
    elif known(node.input(1)):
        target = list(node.input(1).data.reshape(-1))
    else:
        set_output(node, 0, x.dtype, declared_shape(node, graph, 0, "a run-time shape input"))
        return
    allow_zero = node.attrs.get("allowzero", 0)
    target = [d if isinstance(d, Dim) else int(d) for d in target]
    shape = [x.shape[i] if (isinstance(d, int) and d == 0 and not allow_zero) else d
             for i, d in enumerate(target)]
    unknown = [i for i, d in enumerate(shape) if isinstance(d, int) and d == -1]
    if len(unknown) > 1:
        raise CompileError("more than one -1 in the target shape", node)
    total = product(x.shape)
    if unknown:
        rest = product(d for i, d in enumerate(shape) if i != unknown[0])
        try:
            shape[unknown[0]] = total // rest
        except (ValueError, ZeroDivisionError) as e:
            raise CompileError(f"cannot infer the -1 in the target shape: {e}", node)
    if product(shape) != total:
        raise CompileError(f"cannot reshape {list(x.shape)} to {shape}", node)
    set_output(node, 0, x.dtype, shape)


def infer_flatten(node, graph):
    x = node.input(0)
    axis = node.attrs.get("axis", 1)
    axis = axis + x.rank if axis < 0 else axis
    if not 0 <= axis <= x.rank:
        raise CompileError(f"axis {node.attrs.get('axis')} is out of range", node)
    set_output(node, 0, x.dtype, (product(x.shape[:axis]), product(x.shape[axis:])))


register("Reshape", 1, infer=infer_reshape, fold=fold_reshaped, lower=lower_view, stream=stream_reshape,
         symbolic=True)
register("Flatten", 1, infer=infer_flatten, fold=fold_reshaped, lower=lower_view, stream=stream_reshape,
         symbolic=True)


# -- Identity / Dropout ---------------------------------------------------------------------------

def infer_identity(node, graph):
    x = node.input(0)
    set_output(node, 0, x.dtype, x.shape)


def infer_dropout(node, graph):
    training = node.input(2)
    if training is not None:
        if not (training.is_constant):
            raise CompileError("training_mode given at run time is not supported (inference only)", node)
        ratio = node.input(1)
        zero_ratio = ratio is not None and ratio.is_constant and float(ratio.data) == 0.0
        if bool(training.data) and not zero_ratio:
            raise CompileError("training mode with a nonzero ratio is not supported (inference only)", node)
    infer_identity(node, graph)
    set_output(node, 1, BY_NUMPY[np.dtype(bool)], node.input(0).shape)


def lower_dropout(node, graph):
    nodes = lower_view(node, graph) if node.output(0) is not None else []
    if node.output(1) is not None:
        nodes.append(ir("Fill", node, [], [node.output(1)], value=True))
    return nodes


register("Identity", 1, infer=infer_identity, fold=lambda node, x: [x], lower=lower_view, stream=stream_same,
         symbolic=True)
register("Dropout", 7, infer=infer_dropout, lower=lower_dropout, stream=stream_same)


# -- Concat / Expand ------------------------------------------------------------------------------

def infer_concat(node, graph):
    first = node.input(0)
    axis = axis_of(node, node.attrs["axis"], first.rank)
    shape = list(first.shape)
    for v in node.inputs[1:]:
        if v.rank != first.rank or any(a != b for i, (a, b) in enumerate(zip(v.shape, shape)) if i != axis):
            raise CompileError(f"cannot concatenate shapes {list(first.shape)} and {list(v.shape)}", node)
        shape[axis] = shape[axis] + v.shape[axis]
    set_output(node, 0, first.dtype, shape)


def stream_concat(node, classes, time):
    """Per-step values (all of them: a time-independent one has no time axis to match) joined
    along another axis."""
    axes = set(time_axes(node, classes).values())
    if len(axes) > 1 or len(time_axes(node, classes)) != len(node.inputs):
        raise refuse(node, "joins values whose time axes do not line up")
    k = axes.pop()
    if k == axis_of(node, node.attrs["axis"], node.input(0).rank):
        raise refuse(node, "concatenates along the time axis")
    return [k]


register("Concat", 4, infer=infer_concat, symbolic=True, stream=stream_concat,
         fold=lambda node, *xs: [np.concatenate(xs, axis=node.attrs["axis"])],
         lower=lambda node, graph: [lower_concat(node)])


def lower_concat(node):
    out = node.output(0).shape
    axis = axis_of(node, node.attrs["axis"], node.input(0).rank)
    ys, parts, start = strides(out), [], 0
    for v in node.inputs:
        parts.append(nest(v.shape, (start * ys[axis], ys), contiguous(v.shape)))
        start = start + v.shape[axis]
    return ir("Concat", node, node.inputs, node.outputs, axis=axis, parts=parts)


def infer_expand(node, graph):
    x, shape = node.inputs
    if known(shape):
        out = broadcast(node, x.shape, [d if isinstance(d, Dim) else int(d) for d in shape.data])
    else:
        out = declared_shape(node, graph, 0, "a run-time shape input")
        if broadcast(node, x.shape, out) != tuple(out):
            raise CompileError(f"cannot expand {list(x.shape)} to the declared {list(out)}", node)
    set_output(node, 0, x.dtype, out)


def stream_expand(node, classes, time):
    """A per-step input keeps its time axis (aligned on the right); a time-independent one
    expanded over the sequence length (a shape from Shape) is the same at every step."""
    steps = time_axes(node, classes, data={0})
    y = node.output(0)
    if steps:
        return [steps[0] + y.rank - node.input(0).rank]
    return [spread(node, y, classes[0], time)]


register("Expand", 8, infer=infer_expand, symbolic=True, stream=stream_expand,
         fold=lambda node, x, shape: [np.broadcast_to(x, node.output(0).shape).copy()],
         lower=lambda node, graph: [lower_expand(node)])


def lower_expand(node):
    x, out = node.input(0), node.output(0).shape
    part = nest(out, contiguous(out), broadcast_view(x.shape, out))
    return ir("Expand", node, node.inputs[:1], node.outputs, parts=[part])
