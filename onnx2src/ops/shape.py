"""Constant, Shape and ConstantOfShape: where PyTorch's exporters build sizes and zero states.

Shape's output is known at compile time, as symbolic sizes (e.g. [batch, seq, 10]); this is the
start of every Shape → Gather → Concat → ConstantOfShape chain that folding resolves.
"""
import numpy as np

from ..dims import Dim
from ..ir import BY_NUMPY, INT64, CompileError
from . import as_known_array, declared_shape, ir, known, register, set_output, spread

CONSTANT_ATTRS = {
    "value_float": np.float32, "value_floats": np.float32,
    "value_int": np.int64, "value_ints": np.int64,
}


def infer_constant(node, graph):
    if "value" in node.attrs:
        data = np.asarray(node.attrs["value"])
    else:
        kinds = [k for k in CONSTANT_ATTRS if k in node.attrs]
        if not kinds:
            raise CompileError(f"Constant with attribute {sorted(node.attrs)[0]} is not supported", node)
        data = np.asarray(node.attrs[kinds[0]], dtype=CONSTANT_ATTRS[kinds[0]])
    if data.dtype not in BY_NUMPY:
        raise CompileError(f"Constant of type {data.dtype} is not supported", node)
    set_output(node, 0, BY_NUMPY[data.dtype], data.shape)
    node.output(0).data = data


def infer_shape(node, graph):
    x = node.input(0)
    start, end = node.attrs.get("start", 0), node.attrs.get("end", x.rank)
    dims = x.shape[slice(start, end)] if node.version >= 15 else x.shape
    set_output(node, 0, INT64, (len(dims),))
    node.output(0).data = as_known_array(dims, np.int64)


def infer_constant_of_shape(node, graph):
    value = node.attrs.get("value", np.zeros(1, np.float32))
    if value.dtype not in BY_NUMPY:
        raise CompileError(f"a value of type {value.dtype} is not supported", node)
    shape_in = node.input(0)
    if known(shape_in):
        shape = [d if isinstance(d, Dim) else int(d) for d in shape_in.data.reshape(-1)]
    else:
        shape = declared_shape(node, graph, 0, "a run-time shape input")
    set_output(node, 0, BY_NUMPY[value.dtype], shape)


def fold_constant_of_shape(node, shape):
    v = node.output(0)
    value = node.attrs.get("value", np.zeros(1, np.float32)).reshape(-1)[0]
    return [np.full(v.shape, value, dtype=v.dtype.numpy)]


def lower_constant_of_shape(node, graph):
    value = node.attrs.get("value", np.zeros(1, np.float32)).reshape(-1)[0]
    return [ir("Fill", node, [], node.outputs, value=value.item())]


register("Constant", 1, infer=infer_constant, fold=lambda node: [node.output(0).data])
register("Shape", 1, infer=infer_shape)
register("ConstantOfShape", 9, infer=infer_constant_of_shape, fold=fold_constant_of_shape,
         lower=lower_constant_of_shape, symbolic=True,  # over the sequence length: the same every step
         stream=lambda node, classes, time: [spread(node, node.output(0), None, time)])
