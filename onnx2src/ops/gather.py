"""Gather along one axis, with int32 or int64 indices that may be negative.

Lowers to the IR op `Gather`; generated code checks every index at run time (C returns an
error code, NumPy raises) rather than read out of bounds.
"""
import numpy as np

from ..ir import CompileError
from ..dims import Dim
from . import LAST, axis_of, ir, refuse, register, set_output, time_axes


def infer(node, graph):
    data, indices = node.inputs
    if indices.dtype.name not in ("int32", "int64"):
        raise CompileError(f"indices of type {indices.dtype.name} are not supported", node)
    if data.rank == 0:
        raise CompileError("data is a scalar: there is no axis to gather along", node)
    axis = axis_of(node, node.attrs.get("axis", 0), data.rank)
    set_output(node, 0, data.dtype, data.shape[:axis] + indices.shape + data.shape[axis + 1:])


def fold(node, data, indices):
    axis = node.attrs.get("axis", 0)
    size = data.shape[axis]
    if np.any(indices >= size) or np.any(indices < -size):
        raise CompileError(f"an index is out of range for axis size {size}", node)
    return [np.take(data, indices.astype(np.int64), axis=axis)]


def lower(node, graph):
    axis = axis_of(node, node.attrs.get("axis", 0), node.input(0).rank)
    return [ir("Gather", node, node.inputs, node.outputs, axis=axis)]


def stream(node, classes, time):
    """Along the time axis, one index known to be the last step (-1 or seq - 1) gives the last
    step; along another axis the data's time axis moves past the indices' axes. Per-step
    indices into time-independent data (an embedding of token ids) are per-step too."""
    data, indices = node.inputs
    axis = axis_of(node, node.attrs.get("axis", 0), data.rank)
    steps = time_axes(node, classes, data={0})
    if not steps:
        return [axis + time_axes(node, classes)[1]]
    k = steps[0]
    if k != axis:
        time_axes(node, [None, classes[1]])  # the indices: neither sizes nor the last step
        if isinstance(classes[1], int):
            raise refuse(node, "takes per-step indices into a per-step value")
        return [k if k < axis else k - 1 + indices.rank]
    picked = [] if indices.data is None else list(indices.data.reshape(-1))
    if len(picked) == 1 and (picked[0] == time - 1 or (not isinstance(picked[0], Dim) and picked[0] == -1)):
        return [LAST]
    what = "steps chosen at run time" if indices.data is None else f"step(s) {', '.join(map(str, picked))}"
    raise refuse(node, f"takes {what} of the time axis, which a chunk alone does not hold")


register("Gather", 1, infer=infer, fold=fold, lower=lower, stream=stream, symbolic=True)
