"""Weight-only int8 quantization (--weights int8): symmetric, one scale per output channel.

`dequantize_model` is the quantization itself: it replaces each matrix weight of an ONNX model
(Gemm's and a 2-D MatMul's B, Conv's W, the W and R of LSTM, GRU and RNN) by its int8 values
times their channel's scale, as float32. The compiler compiles that model, and it is the exact
reference for tests and `bench --weights int8`, so the generated code is checked against
onnxruntime running it.

The emitters then store as int8 every constant they find to be such values along its channels
(`int8_columns` for the C kernel's packed matrices, `int8_channels` for the NumPy module's
arrays): the check recovers the int8 values and scales from the floats, so it holds through the
re-layouts the compiler makes (transposes, packing, a BatchNorm folded into a Conv), and a
constant it does not hold for (a ConvTranspose's weights seen a tap at a time, weights computed
from others) simply stays float.
"""
import numpy as np

LEVELS = 127  # int8 values -127..127: symmetric, so no zero point
# How far a recovered q * scale may be from the float it stands for, relative to its channel's
# largest magnitude: a few float32 roundings (the scale itself is recovered to about an ulp).
LOSSLESS = 2.0 ** -20

# The ONNX inputs quantized, (op type, input index) -> the axes that share one scale (all but the
# output channel's), or a function of the node for Gemm, whose transB decides.
MATRIX_INPUTS = {("MatMul", 1): (0,), ("Conv", 1): None, ("LSTM", 1): (2,), ("LSTM", 2): (2,),
                 ("GRU", 1): (2,), ("GRU", 2): (2,), ("RNN", 1): (2,), ("RNN", 2): (2,), ("Gemm", 1): "transB"}


def quantize(data: np.ndarray, axes) -> tuple:
    """(q int8, scale float32 broadcastable to data): data ≈ q * scale, one scale over `axes`
    (max |data| / 127, rounded to nearest even; a channel of zeros gets scale 0)."""
    data = np.asarray(data, np.float32)
    top = np.max(np.abs(data), axis=axes, keepdims=True) if data.size else np.zeros([1] * data.ndim, np.float32)
    scale = (top / np.float32(LEVELS)).astype(np.float32)
    safe = np.where(scale > 0, scale, np.float32(1))
    q = np.clip(np.rint(data / safe), -LEVELS, LEVELS).astype(np.int8)
    return q, scale


def dequantized(data: np.ndarray, axes) -> np.ndarray:
    q, scale = quantize(data, axes)
    return (q.astype(np.float32) * scale).astype(np.float32)


def shared_axes(op_type, index, rank, trans_b=False):
    """The axes one scale spans for input `index` (of rank `rank`) of an `op_type` node (a Gemm's
    transB given), or None if it is not a matrix weight quantized."""
    axes = MATRIX_INPUTS.get((op_type, index), False)
    if axes is False:
        return None
    if axes == "transB":
        return (1,) if trans_b else (0,)
    if axes is None:  # Conv: W[out][in/groups][taps...]
        return tuple(range(1, rank)) if rank >= 3 else None
    return axes if rank == {"MatMul": 2, "Gemm": 2}.get(op_type, 3) else None


# Ops between a constant and the matrix input it feeds that only add or remove axes of size 1
# (exporters write a recurrence's W as Unsqueeze(Constant)): followed back to the constant.
VIEWS = ("Unsqueeze", "Squeeze", "Identity")


def _graphs(graph):
    yield graph
    for node in graph.node:
        for a in node.attribute:
            for sub in ([a.g] if a.HasField("g") else []) + list(a.graphs):
                yield from _graphs(sub)


def _view(node, data, tensors):
    """`data` through the view op `node`; None if its axes are not known constants."""
    from onnx import numpy_helper
    if node.op_type == "Identity":
        return data
    axes = next((list(a.ints) for a in node.attribute if a.name == "axes"), None)
    if axes is None and len(node.input) > 1 and node.input[1]:
        source = tensors.get(node.input[1])
        axes = None if source is None else [int(v) for v in numpy_helper.to_array(source[1]).reshape(-1)]
    if node.op_type == "Squeeze":
        return np.squeeze(data, axis=tuple(axes)) if axes else np.squeeze(data)
    if axes is None:
        return None
    out_rank = data.ndim + len(axes)
    for axis in sorted(a % out_rank for a in axes):
        data = np.expand_dims(data, axis)
    return data


def dequantize_model(model):
    """The ONNX `model` (changed in place, and returned) with each matrix weight replaced by its
    int8 quantization, dequantized: a float32 initializer or Constant, in the main graph or a
    subgraph, feeding the matrix input directly or through VIEWS. A constant feeding several
    matrix inputs is quantized once, for the first."""
    from onnx import numpy_helper
    tensors, producers = {}, {}  # name -> (owner, TensorProto); output name -> node
    for g in _graphs(model.graph):
        for t in g.initializer:
            tensors[t.name] = (t, t)
        for node in g.node:
            for o in node.output:
                producers[o] = node
            value = next((a for a in node.attribute if a.name == "value" and a.HasField("t")), None)
            if node.op_type == "Constant" and value is not None:
                tensors[node.output[0]] = (value, value.t)
    done = set()
    for g in _graphs(model.graph):
        for node in g.node:
            for index, name in enumerate(node.input):
                if (node.op_type, index) not in MATRIX_INPUTS:
                    continue
                chain = []
                while name not in tensors and name in producers and producers[name].op_type in VIEWS:
                    chain.append(producers[name])
                    name = producers[name].input[0]
                if name not in tensors or name in done or tensors[name][1].data_type != 1:  # FLOAT
                    continue
                owner, tensor = tensors[name]
                source = numpy_helper.to_array(tensor)
                data = source
                for view in reversed(chain):
                    data = data if data is None else _view(view, data, tensors)
                trans_b = any(a.name == "transB" and a.i for a in node.attribute)
                axes = None if data is None or data.size == 0 else shared_axes(node.op_type, index, data.ndim, trans_b)
                if axes is None:
                    continue
                new = numpy_helper.from_array(dequantized(data, axes).reshape(source.shape), tensor.name)
                tensor.CopyFrom(new)
                done.add(name)
    return model


def recover(data: np.ndarray, axes):
    """(q int8, scale float32 broadcastable to data) with q * scale equal to `data` within
    LOSSLESS of each channel's largest magnitude, one scale over `axes`; None if `data` is not
    such values. A channel's scale is its largest magnitude / m for the largest m <= 127 that
    works: 127 for this module's quantization, the channel's largest |q| for a weight quantized
    per tensor (or with a narrower range) by another tool."""
    data = np.asarray(data, np.float32)
    top = np.max(np.abs(data), axis=axes, keepdims=True)
    q, scale = np.zeros(data.shape, np.int8), np.zeros(top.shape, np.float32)
    todo = np.ones(top.shape, bool)
    for m in range(LEVELS, 0, -1):
        trial = (top / np.float32(m)).astype(np.float32)
        codes = np.rint(data / np.where(trial > 0, trial, np.float32(1)))
        fits = np.all(np.abs(codes * trial - data) <= top * LOSSLESS, axis=axes, keepdims=True) & todo
        q = np.where(fits, codes, q).astype(np.int8)
        scale = np.where(fits, trial, scale)
        todo &= ~fits
        if not todo.any():
            return q, scale
    return None


def int8_columns(panels: np.ndarray):
    """For packed matrix panels [P][K][W] (templates/c/kernels.c.j2): (q int8 [P][K][W], scale
    float32 [P*W]), one scale per column, if every column is int8 values times a scale; else None."""
    if panels.ndim != 3 or panels.size == 0 or panels.dtype != np.float32:
        return None
    found = recover(panels, (1,))
    return found and (found[0], found[1].reshape(-1))


def int8_channels(data: np.ndarray):
    """For a constant float32 array of rank >= 2: (q int8, scale float32 broadcastable to it),
    one scale per index of some axis, or per row along some axis, whichever first holds and
    takes fewer bytes than the floats; else None."""
    if data.ndim < 2 or data.size == 0 or data.dtype != np.float32:
        return None
    rank = data.ndim
    for axes in [tuple(a for a in range(rank) if a != keep) for keep in range(rank)] + [(a,) for a in range(rank)]:
        found = recover(data, axes)
        if found and data.size + 4 * found[1].size < 4 * data.size:
            return found
    return None
