"""Quantized weights for the int8 matrix kernels: a DequantizeLinear of a constant int8 tensor
with zero point 0 (what onnxruntime's quantizers write for symmetric weights) whose every reader
takes it as a matrix weight (a MatMul's or a Gemm's B, the W of a Conv but a depthwise one, the
W or R of a recurrence), and which along each reader's output channels is int8 values times a
scale, folds into the float constant it stands for, marked `int8`. The emitters store such a
constant as int8 values and scales again (C: the int8 matrix kernel reads them; NumPy: int8
arrays), so the model's int8 weights stay int8 and are read as int8, instead of dequantized
into working memory at every call. Any other DequantizeLinear stays (ops/quantize.py).

With --weights int8 (graph.options.weights) the model's matrix weights are such values already
(reduced_weights.round_model); each one read as such is marked int8 here, so that a Conv's
weights, too, become the int8 kernel's B.

onnxruntime's DynamicQuantizeLSTM with constant int8 W and R and zero points 0 becomes the ONNX
LSTM it computes (ops/contrib.py), on W and R folded and marked so: its weights are read as int8
too, and it streams as any LSTM does.
"""
import numpy as np

from ..reduced_weights import recover, shared_axes
from ..ir import Value
from ..ops import contrib
from ..ops.quantize import dequantize

ONNX = ("", "ai.onnx")


def _axes(reader, index, shape):
    """The axes one scale spans for `reader`'s input `index` (of that shape), or None if it is no
    matrix weight an int8 kernel reads (a depthwise Conv's, one input channel a group, is not)."""
    depthwise = (reader.op_type == "Conv" and int(reader.attrs.get("group", 1)) != 1 and len(shape) > 1
                 and shape[1] == 1)
    if reader.domain not in ONNX or depthwise or reader.op_type == "Einsum":  # (its lowering makes new weights)
        return None
    return shared_axes(reader.op_type, index, len(shape), bool(reader.attrs.get("transB", 0)))


def _lstm_matrix(node, i):
    """A DynamicQuantizeLSTM's input i (1: W, 2: R) as the float weight of an ONNX LSTM,
    [D, 4H, K], marked int8; None unless it is constant int8 with zero point 0."""
    q, scale, zero_point = node.input(i), node.input(6 + 2 * i), node.input(7 + 2 * i)
    if (any(v is None or not v.is_constant for v in (q, scale, zero_point)) or q.dtype.name != "int8"
            or scale.dtype.name != "float" or q.rank != 3 or np.any(zero_point.data != 0)):
        return None
    d, _, g = q.shape
    if tuple(scale.shape) not in ((d,), (d, g)):
        return None  # ops/contrib.py says why
    per = scale.data.reshape((d, 1, g) if scale.rank == 2 else (d, 1, 1))
    data = np.ascontiguousarray((q.data.astype(np.float32) * per).transpose(0, 2, 1))
    if recover(data, (2,)) is None:
        return None
    return Value(f"{node.name}_{'W' if i == 1 else 'R'}", scale.dtype, data.shape, data,
                 int8=True)


def _fold_lstm(node):
    """The ONNX LSTM a DynamicQuantizeLSTM `node` computes, its W and R folded; None if they can't be."""
    w, r = _lstm_matrix(node, 1), _lstm_matrix(node, 2)
    if w is None or r is None or set(node.attrs) - contrib.ATTRIBUTES:
        return None
    lstm = contrib._lstm(node, w, r)
    lstm.attrs["onnx_op"] = node.op_type  # what the generated code's comments name
    for v in lstm.outputs:
        if v is not None:
            v.producer = lstm
    return lstm


def run(graph) -> bool:
    changed = False
    for k, node in enumerate(graph.nodes):
        if node.domain == "com.microsoft" and node.op_type == "DynamicQuantizeLSTM":
            lstm = _fold_lstm(node)
            if lstm is not None:
                graph.nodes[k], changed = lstm, True
    readers = {}
    for node in graph.nodes:
        for index, v in enumerate(node.inputs):
            if v is not None:
                readers.setdefault(id(v), []).append((node, index))
    if graph.options is not None and graph.options.weights == "int8":
        for v in (v for node in graph.nodes for v in node.inputs if v is not None and v.is_constant):
            axes = [_axes(reader, index, v.shape) for reader, index in readers[id(v)]]
            if v.dtype.name == "float" and all(a is not None and recover(v.data, a) for a in axes):
                v.int8 = True
    outputs = {id(v) for v in graph.outputs}
    folded = set()
    for node in graph.nodes:
        if node.op_type != "DequantizeLinear" or node.domain not in ONNX:
            continue
        x, scale, zero_point, y = node.input(0), node.input(1), node.input(2), node.output(0)
        if (not x.is_constant or x.dtype.name != "int8" or not scale.is_constant or y.dtype.name != "float"
                or (zero_point is not None and (not zero_point.is_constant or np.any(zero_point.data != 0)))
                or id(y) in outputs or not readers.get(id(y))):
            continue
        data = np.asarray(dequantize(node, x.data, scale.data), np.float32)
        axes = [_axes(reader, index, data.shape) for reader, index in readers[id(y)]]
        if any(a is None or recover(data, a) is None for a in axes):
            continue
        y.data, y.producer, y.int8 = data, None, True
        folded.add(id(node))
    graph.nodes = [n for n in graph.nodes if id(n) not in folded]
    return changed or bool(folded)
