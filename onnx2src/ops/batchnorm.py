"""BatchNormalization in inference mode (opsets 7, 9, 14, 15):

    Y = scale * (X - mean) / sqrt(var + epsilon) + B,   per channel (axis 1)

lowered to one `Elementwise` of kind BatchNormalization. With constant parameters (the usual
case) the compiler precomputes a = scale / sqrt(var + epsilon) and b = B - mean * a, as
onnxruntime does, and the kernel is Y = X * a + b; otherwise it evaluates the formula with
var + epsilon computed by an Add first. Opset 7's spatial=0 takes parameters of shape
[C, D1, ...] (one per element of a sample). Training (training_mode=1, or the running
statistics asked for as outputs) is refused. passes/fold_batchnorm.py folds a BatchNormalization
into the Conv, ConvTranspose or Gemm before it when their weights are constant.
"""
import numpy as np

from ..ir import CompileError, Value
from ..loops import broadcast_view, contiguous, nest
from . import ir, register, set_output, stream_same

PARAMS = ("scale", "B", "input_mean", "input_var")


def _spatial(node) -> bool:
    return node.version >= 9 or bool(node.attrs.get("spatial", 1))


def infer_batchnorm(node, graph):
    x = node.input(0)
    if x.dtype.name not in ("float", "double"):
        raise CompileError(f"BatchNormalization on {x.dtype.name} is not supported (float or double)", node)
    if node.attrs.get("training_mode", 0):
        raise CompileError("training_mode=1 is not supported (inference only)", node)
    if any(v is not None for v in node.outputs[1:]):
        raise CompileError("the running or saved statistics are outputs only in training, "
                           "which is not supported (inference only)", node)
    if x.rank < 2:
        raise CompileError(f"X of shape {list(x.shape)} has no channel axis", node)
    want = (x.shape[1],) if _spatial(node) else tuple(x.shape[1:])
    for name, v in zip(PARAMS, node.inputs[1:5]):
        if v is None:
            raise CompileError(f"input {name} is missing", node)
        if tuple(v.shape) != want:
            raise CompileError(f"{name} has shape {list(v.shape)}, expected {list(want)}", node)
        if v.dtype != x.dtype and not v.is_constant:
            raise CompileError(f"{name} is {v.dtype.name} but X is {x.dtype.name}", node)
    set_output(node, 0, x.dtype, x.shape)


def factors(node, scale, bias, mean, var):
    """(a, b) with Y = X * a + b, computed in double and rounded once to X's type."""
    eps = float(node.attrs.get("epsilon", 1e-5))
    a = scale.astype(np.float64) / np.sqrt(var.astype(np.float64) + eps)
    b = bias.astype(np.float64) - mean.astype(np.float64) * a
    dtype = node.input(0).dtype.numpy
    return a.astype(dtype), b.astype(dtype)


def fold_batchnorm(node, x, scale, bias, mean, var):
    a, b = factors(node, scale, bias, mean, var)
    shape = (-1,) + (1,) * (x.ndim - 2) if _spatial(node) else a.shape
    return [(x * a.reshape(shape) + b.reshape(shape)).astype(x.dtype)]


def lower_batchnorm(node, graph):
    x, y = node.input(0), node.output(0)
    params = node.inputs[1:5]
    shape = (x.shape[1],) + (1,) * (x.rank - 2) if _spatial(node) else tuple(x.shape[1:])
    nodes = []

    def operand(name, v, data=None):
        """A parameter shaped to broadcast over X: a constant, or a View of a run-time input."""
        if data is not None or v.is_constant:
            data = (v.data if data is None else data).astype(x.dtype.numpy).reshape(shape)
            return Value(f"{node.name}_{name}", x.dtype, shape, data)
        out = Value(f"{node.name}_{name}", x.dtype, shape)
        nodes.append(ir("View", node, [v], [out]))
        return out

    if all(v.is_constant for v in params):
        a, b = factors(node, *(v.data for v in params))
        operands = [operand("a", None, a), operand("b", None, b)]
    else:
        scale, bias, mean, var = (operand(n, v) for n, v in zip(PARAMS, params))
        eps = Value(f"{node.name}_epsilon", x.dtype, (), np.array(node.attrs.get("epsilon", 1e-5), x.dtype.numpy))
        var_eps = Value(f"{node.name}_var_eps", x.dtype, shape)
        walk = nest(shape, contiguous(shape), contiguous(shape), broadcast_view((), shape))
        nodes.append(ir("Elementwise", node, [var, eps], [var_eps], kind="Add", nest=walk))
        operands = [scale, bias, mean, var_eps]
    inputs = [x] + operands
    walk = nest(y.shape, contiguous(y.shape), *[broadcast_view(v.shape, y.shape) for v in inputs])
    nodes.append(ir("Elementwise", node, inputs, [y], kind="BatchNormalization", nest=walk))
    return nodes


for _since in (7, 9, 14, 15):
    register("BatchNormalization", _since, infer=infer_batchnorm, fold=fold_batchnorm, lower=lower_batchnorm,
             stream=stream_same)  # the channels, with their parameters, are static: never the time axis
