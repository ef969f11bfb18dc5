"""Gather along one axis, with int32 or int64 indices that may be negative.

Lowers to the IR op `Gather`; generated code checks every index at run time (C returns an
error code, NumPy raises) rather than read out of bounds.
"""
import numpy as np

from ..ir import CompileError
from . import axis_of, ir, register, set_output


def infer(node, graph):
    data, indices = node.inputs
    if indices.dtype.name not in ("int32", "int64"):
        raise CompileError(f"indices of type {indices.dtype.name} are not supported", node)
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


register("Gather", 1, infer=infer, fold=fold, lower=lower, symbolic=True)
