"""Softmax and LogSoftmax. Before opset 13 the input is coerced to 2-D at `axis` (default 1);
from 13 on the op runs along one axis (default -1). Both lower to the IR op `Softmax` over an
[outer, n, inner] view of the input."""
from ..dims import product
from . import axis_of, ir, refuse, register, set_output, stream_same


def infer(node, graph):
    x = node.input(0)
    set_output(node, 0, x.dtype, x.shape)


def _axis(node, rank):
    return axis_of(node, node.attrs.get("axis", -1 if node.version >= 13 else 1), rank)


def stream(node, classes, time):
    """Per-step unless the normalized axes (`axis`; from 13 on, before it all from `axis` on)
    include the time axis."""
    k, = stream_same(node, classes, time)
    axis = _axis(node, node.input(0).rank)
    if k == axis or (node.version < 13 and k > axis):
        raise refuse(node, "normalizes over the time axis")
    return [k]


def lower(node, graph):
    shape = node.input(0).shape
    axis = _axis(node, len(shape))
    if node.version >= 13:
        outer, n, inner = product(shape[:axis]), shape[axis], product(shape[axis + 1:])
    else:
        outer, n, inner = product(shape[:axis]), product(shape[axis:]), 1
    return [ir("Softmax", node, node.inputs, node.outputs, outer=outer, n=n, inner=inner,
               log=node.op_type == "LogSoftmax")]


register("Softmax LogSoftmax", 1, infer=infer, lower=lower, stream=stream)
