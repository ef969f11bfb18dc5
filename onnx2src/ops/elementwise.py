"""Elementwise ops: Add, Sub, Mul, Div with NumPy broadcasting; Neg, Tanh, Sigmoid, Relu,
LeakyRelu, Cast. All lower to one IR op, `Elementwise`, whose `kind` names the function; each
emitter keeps the table of how a kind is written in its language.
"""
import numpy as np

from ..dims import Dim, floor_div
from ..loops import broadcast_view, contiguous, nest
from ..ir import CompileError, dtype_from_onnx
from . import LAST, ir, refuse, register, set_output, time_axes

BINARY = "Add Sub Mul Div"
FLOAT_ONLY = {"Tanh", "Sigmoid", "LeakyRelu"}


def broadcast(node, *shapes):
    rank = max(len(s) for s in shapes)
    padded = [(1,) * (rank - len(s)) + tuple(s) for s in shapes]
    out = []
    for dims in zip(*padded):
        real = [d for d in dims if not (isinstance(d, int) and d == 1)]
        if any(d != real[0] for d in real[1:]):
            raise CompileError(f"shapes {' and '.join(str(list(s)) for s in shapes)} do not broadcast", node)
        out.append(real[0] if real else 1)
    return tuple(out)


def infer_binary(node, graph):
    a, b = node.inputs
    if a.dtype != b.dtype:
        raise CompileError(f"inputs have different types ({a.dtype.name}, {b.dtype.name})", node)
    set_output(node, 0, a.dtype, broadcast(node, a.shape, b.shape))


def infer_unary(node, graph):
    x = node.input(0)
    if node.op_type in FLOAT_ONLY and x.dtype.numpy.kind != "f":
        raise CompileError(f"{node.op_type} on {x.dtype.name} is not supported", node)
    set_output(node, 0, x.dtype, x.shape)


def infer_cast(node, graph):
    to = dtype_from_onnx(node.attrs["to"], "the target type of Cast", node)
    set_output(node, 0, to, node.input(0).shape)


def truncating_div(a, b):
    """ONNX integer Div truncates toward zero (as C does), symbolic sizes too: (seq + 1) / 2
    is floor((seq + 1) / 2), as torch.chunk's exports compute it."""
    if a.dtype == object or b.dtype == object:
        return np.vectorize(_size_div, otypes=[object])(a, b)
    if a.dtype.kind == "f":
        return a / b
    q = np.abs(a) // np.abs(b)
    return np.where((a < 0) != (b < 0), -q, q).astype(a.dtype)


def _size_div(x, y):
    if isinstance(y, Dim):
        return x // y  # exact division by a symbolic size, else ValueError
    return -floor_div(x, -int(y)) if y < 0 else floor_div(x, int(y))


FOLD = {
    "Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": truncating_div,
    "Neg": np.negative, "Tanh": np.tanh, "Relu": lambda x: np.maximum(x, 0),
    "Sigmoid": lambda x: 1 / (1 + np.exp(-x)),
}


def fold(node, *data):
    if node.op_type == "LeakyRelu":
        x = data[0]
        return [np.where(x < 0, x * node.attrs.get("alpha", 0.01), x)]
    return [FOLD[node.op_type](*data)]


def fold_cast(node, x):
    to = node.output(0).dtype.numpy
    if x.dtype == object:
        if to.kind not in "iu":
            return None
        return [x]
    return [x.astype(to)]


def lower(node, graph):
    """One IR `Elementwise` whose loop nest walks the output and every (broadcast) input."""
    attrs = {"alpha": float(node.attrs.get("alpha", 0.01))} if node.op_type == "LeakyRelu" else {}
    return [elementwise_ir(node, node.inputs, node.output(0), node.op_type, **attrs)]


def elementwise_ir(node, inputs, output, kind, **attrs):
    """The IR `Elementwise` computing `output` from `inputs` (each broadcast to its shape)."""
    out = output.shape
    walk = nest(out, contiguous(out), *[broadcast_view(v.shape, out) for v in inputs])
    return ir("Elementwise", node, inputs, [output], kind=kind, nest=walk, **attrs)


def stream(node, classes, time):
    """Stream rule of every broadcasting op: the per-step inputs' time axes, aligned on the
    right as broadcasting aligns them, must be one axis of the output."""
    steps = time_axes(node, classes)
    rank = node.output(0).rank
    axes = {k + rank - node.input(i).rank for i, k in steps.items()}
    if len(axes) > 1:
        raise refuse(node, "broadcasts time axes that do not line up")
    return [axes.pop() if axes else (LAST if LAST in classes else None)]


register(BINARY, 7, infer=infer_binary, fold=fold, lower=lower, stream=stream, symbolic=True)
register("Neg", 6, infer=infer_unary, fold=fold, lower=lower, stream=stream, symbolic=True)  # also on sizes
register(" ".join(sorted(FLOAT_ONLY | {"Relu"})), 6, infer=infer_unary, fold=fold, lower=lower, stream=stream)
register("Cast", 6, infer=infer_cast, fold=fold_cast, lower=lower, stream=stream, symbolic=True)
