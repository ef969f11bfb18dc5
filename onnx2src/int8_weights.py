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


def _shared_axes(node, index, rank):
    """The axes one scale spans for input `index` of `node`, or None if it is not quantized."""
    axes = MATRIX_INPUTS.get((node.op_type, index), False)
    if axes is False:
        return None
    if axes == "transB":
        trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
        return (1,) if trans_b else (0,)
    if axes is None:  # Conv: W[out][in/groups][taps...]
        return tuple(range(1, rank)) if rank >= 3 else None
    return axes if rank == {"MatMul": 2, "Gemm": 2}.get(node.op_type, 3) else None


def dequantize_model(model):
    """The ONNX `model` (changed in place, and returned) with each matrix weight that is a float32
    initializer replaced by its int8 quantization, dequantized. A weight some other node also
    reads, or one read along two different channel axes, is quantized once, along the first."""
    from onnx import numpy_helper
    inits = {t.name: t for t in model.graph.initializer}
    done = set()
    for node in model.graph.node:
        for index, name in enumerate(node.input):
            tensor = inits.get(name)
            if tensor is None or name in done or tensor.data_type != 1:  # FLOAT
                continue
            data = numpy_helper.to_array(tensor)
            axes = _shared_axes(node, index, data.ndim)
            if axes is None or data.size == 0:
                continue
            tensor.CopyFrom(numpy_helper.from_array(dequantized(data, axes), name))
            done.add(name)
    return model


def _recover(data: np.ndarray, axes):
    """(q, scale) with q * scale equal to `data` within LOSSLESS of each channel's largest
    magnitude, one scale over `axes`; None if `data` is not such values."""
    q, scale = quantize(data, axes)
    top = np.max(np.abs(data), axis=axes, keepdims=True)
    if np.all(np.abs(q.astype(np.float32) * scale - data) <= top * LOSSLESS):
        return q, scale
    return None


def int8_columns(panels: np.ndarray):
    """For packed matrix panels [P][K][W] (templates/c/kernels.c.j2): (q int8 [P][K][W], scale
    float32 [P*W]), one scale per column, if every column is int8 values times a scale; else None."""
    if panels.ndim != 3 or panels.size == 0 or panels.dtype != np.float32:
        return None
    found = _recover(panels, (1,))
    return found and (found[0], found[1].reshape(-1))


def int8_channels(data: np.ndarray):
    """For a constant float32 array of rank >= 2: (q int8, scale float32 broadcastable to it),
    one scale per index of some axis, or per row along some axis, whichever first holds and
    takes fewer bytes than the floats; else None."""
    if data.ndim < 2 or data.size == 0 or data.dtype != np.float32:
        return None
    rank = data.ndim
    for axes in [tuple(a for a in range(rank) if a != keep) for keep in range(rank)] + [(a,) for a in range(rank)]:
        found = _recover(data, axes)
        if found and data.size + 4 * found[1].size < 4 * data.size:
            return found
    return None
