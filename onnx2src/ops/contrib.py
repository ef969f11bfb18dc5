"""onnxruntime's com.microsoft contrib ops that its quantizers write: DynamicQuantizeLSTM, what
`quantize_dynamic` makes of an LSTM.

DynamicQuantizeLSTM is an LSTM whose W [D, I, 4H] and R [D, H, 4H] (transposed from the ONNX
LSTM's [D, 4H, I] / [D, 4H, H]) are int8 or uint8 with a scale and zero point per direction
([D]) or per direction and gate column ([D, 4H]). It lowers to the existing `Recurrent` IR op:
one `Elementwise` Dequantize per matrix and a `Transpose` write the float weights in the ONNX
LSTM's layout, so W and R stay 8-bit in the generated code and are
dequantized when the model runs. onnxruntime's kernel also quantizes X and each step's h to
uint8 before its integer matrix products; onnx2src keeps them float, so its results are those of
the float LSTM with the dequantized weights, and differ from onnxruntime's by that activation
quantization (tests/test_quant_models.py measures it).
"""
from ..ir import CompileError, Node, Value
from ..loops import broadcast_view, contiguous, nest
from . import ir, register
from .recurrent import infer as infer_lstm, lower as lower_lstm
from .conv import _transpose
from .quantize import FLOAT, _reshaped

ATTRIBUTES = {"activation_alpha", "activation_beta", "activations", "clip", "direction", "hidden_size",
              "input_forget"}


def _matrices(node):
    """(W, R) as the float Values an ONNX LSTM takes, [D, 4H, I] and [D, 4H, H]."""
    unknown = set(node.attrs) - ATTRIBUTES
    if unknown:
        raise CompileError(f"attribute {sorted(unknown)[0]!r} is not one of DynamicQuantizeLSTM's", node)
    out = []
    for i, what in ((1, "W"), (2, "R")):
        q, scale, zero_point = node.input(i), node.input(6 + 2 * i), node.input(7 + 2 * i)
        if q is None or scale is None or zero_point is None:
            raise CompileError(f"{what}, its scale and its zero point are required", node)
        if q.dtype.name not in ("int8", "uint8") or zero_point.dtype != q.dtype:
            raise CompileError(f"{what} of type {q.dtype.name} with a zero point of type "
                               f"{zero_point.dtype.name} is not supported (int8 or uint8, both)", node)
        if scale.dtype.name != "float":
            raise CompileError(f"{what}'s scale of type {scale.dtype.name} is not supported (float)", node)
        if q.rank != 3:
            raise CompileError(f"{what} must be 3-D, not {list(q.shape)}", node)
        d, k, g = q.shape
        for v, part in ((scale, "scale"), (zero_point, "zero point")):
            if tuple(v.shape) not in ((d,), (d, g)):
                raise CompileError(f"{what}'s {part} has shape {list(v.shape)}, not [{d}] or [{d}, {g}]", node)
        out.append(Value(f"{node.name}_{what}", FLOAT, (d, g, k)))
    return out


def _lstm(node, w, r):
    """The ONNX LSTM this node computes, on float W and R."""
    inputs = [node.input(0), w, r] + [node.input(i) for i in range(3, 8)]
    while inputs and inputs[-1] is None:
        inputs.pop()
    return Node("LSTM", node.name, inputs, node.outputs, dict(node.attrs), 14)


def infer(node, graph):
    infer_lstm(_lstm(node, *_matrices(node)), graph)


def _dequantize(node, i, out, nodes):
    """out [D, 4H, K] = transpose((q [D, K, 4H] - zero_point) * scale), the parameters read as
    [D, 1, 1] (per direction) or [D, 1, 4H] (per gate column)."""
    q, scale, zero_point = node.input(i), node.input(6 + 2 * i), node.input(7 + 2 * i)
    d, k, g = q.shape
    shape = (d, 1, g) if scale.rank == 2 else (d, 1, 1)
    params = [_reshaped(node, v, shape, f"{out.name}_{what}", nodes)
              for v, what in ((scale, "scale"), (zero_point, "zero_point"))]
    flat = Value(f"{out.name}_dequantized", FLOAT, (d, k, g))
    walk = nest(flat.shape, contiguous(flat.shape), contiguous(q.shape),
                *[broadcast_view(v.shape, flat.shape) for v in params])
    nodes.append(ir("Elementwise", node, [q] + params, [flat], kind="Dequantize", nest=walk))
    nodes.append(_transpose(node, flat, (0, 2, 1), out))


def lower(node, graph):
    w, r = _matrices(node)
    nodes = []
    _dequantize(node, 1, w, nodes)
    _dequantize(node, 2, r, nodes)
    for lowered in lower_lstm(_lstm(node, w, r), graph):
        lowered.attrs["onnx_op"] = node.op_type
        nodes.append(lowered)
    return nodes


register("com.microsoft:DynamicQuantizeLSTM", 1, infer=infer, lower=lower)
