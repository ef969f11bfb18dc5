"""Softmax and LogSoftmax. Before opset 13 the input is coerced to 2-D at `axis` (default 1);
from 13 on the op runs along one axis (default -1). Both lower to the IR op `Softmax` over an
[outer, n, inner] view of the input."""
from ..dims import product
from . import axis_of, ir, register, set_output


def infer(node, graph):
    x = node.input(0)
    set_output(node, 0, x.dtype, x.shape)


def lower(node, graph):
    shape = node.input(0).shape
    default = -1 if node.version >= 13 else 1
    axis = axis_of(node, node.attrs.get("axis", default), len(shape))
    if node.version >= 13:
        outer, n, inner = product(shape[:axis]), shape[axis], product(shape[axis + 1:])
    else:
        outer, n, inner = product(shape[:axis]), product(shape[axis:]), 1
    return [ir("Softmax", node, node.inputs, node.outputs, outer=outer, n=n, inner=inner,
               log=node.op_type == "LogSoftmax")]


register("Softmax LogSoftmax", 1, infer=infer, lower=lower)
