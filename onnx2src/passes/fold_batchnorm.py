"""Fold an inference BatchNormalization into the Conv, ConvTranspose or Gemm that feeds it.

    BN(Y) = Y * a + b   with a = scale / sqrt(var + epsilon), b = B - mean * a   (per channel)

so a Conv's weights become W * a (per output channel) and its bias bias * a + b, and the
BatchNormalization node disappears: one pass over the activations less, and one weight array
less. Done when the producer's weights and bias and the BN parameters are constants, the
producer's output feeds nothing else (and is no graph output), and the channels are the axis the
weights scale: axis 1 of a Conv / ConvTranspose output, the N columns of a Gemm (Y[M][N]).
Runs on the ONNX graph after constant folding, before lowering.
"""
import numpy as np

from ..ir import Value
from ..ops import batchnorm

PRODUCERS = ("Conv", "ConvTranspose", "Gemm")


def run(graph) -> bool:
    consumers = {}
    for node in graph.nodes:
        for v in node.inputs:
            if v is not None:
                consumers[id(v)] = consumers.get(id(v), 0) + 1
    outputs = {id(v) for v in graph.outputs}
    producer_of = {id(v): node for node in graph.nodes for v in node.outputs if v is not None}
    removed = set()
    for bn in graph.nodes:
        if bn.op_type != "BatchNormalization" or bn.domain not in ("", "ai.onnx"):
            continue
        x = bn.input(0)
        prod = producer_of.get(id(x))
        if (prod is None or prod.op_type not in PRODUCERS or prod.domain not in ("", "ai.onnx")
                or consumers.get(id(x)) != 1 or id(x) in outputs or prod.output(0) is not x):
            continue
        if not _foldable(bn, prod):
            continue
        a, b = batchnorm.factors(bn, *(v.data for v in bn.inputs[1:5]))
        if prod.op_type == "Gemm":
            _fold_gemm(prod, a, b)
        else:
            _fold_conv(prod, a, b)
        prod.outputs[0] = bn.output(0)
        bn.output(0).producer = prod
        removed.add(id(bn))
    graph.nodes = [n for n in graph.nodes if id(n) not in removed]
    return bool(removed)


def _foldable(bn, prod) -> bool:
    params = bn.inputs[1:5]
    if len(params) < 4 or not all(v is not None and v.is_constant for v in params):
        return False
    if bn.attrs.get("training_mode", 0) or any(v is not None for v in bn.outputs[1:]):
        return False
    if bn.version < 9 and not bn.attrs.get("spatial", 1):
        return False
    x = bn.input(0)
    if x.dtype is None or x.dtype.name not in ("float", "double") or x.rank < 2:
        return False
    weights = prod.input(1)
    bias = prod.input(2)
    if not weights.is_constant or (bias is not None and not bias.is_constant):
        return False
    if any(v.dtype != x.dtype for v in (weights, bias) if v is not None):
        return False
    if prod.op_type == "Gemm":
        return x.rank == 2 and not (bias is not None and bias.rank > 2)
    return True


def _constant(name, data, like) -> Value:
    data = np.ascontiguousarray(data.astype(like.dtype.numpy))
    return Value(name, like.dtype, data.shape, data)


def _fold_conv(prod, a, b):
    w, bias, y = prod.input(1), prod.input(2), prod.output(0)
    channels = a.shape[0]
    if prod.op_type == "Conv":  # W[out][in/g][k...]
        scaled = w.data * a.reshape((-1,) + (1,) * (w.rank - 1))
    else:                       # W[in][out/g][k...], out = g * out/g + o
        groups = int(prod.attrs.get("group", 1))
        cpg, opg = w.shape[0] // groups, w.shape[1]
        grouped = w.data.reshape((groups, cpg, opg) + tuple(w.shape[2:]))
        scaled = (grouped * a.reshape((groups, 1, opg) + (1,) * (w.rank - 2))).reshape(w.shape)
    old = bias.data if bias is not None else np.zeros(channels, y.dtype.numpy)
    prod.inputs[1] = _constant(f"{w.name}_bn", scaled, w)
    new_bias = _constant(f"{y.name}_bias", old * a + b, w)
    if len(prod.inputs) > 2:
        prod.inputs[2] = new_bias
    else:
        prod.inputs.append(new_bias)


def _fold_gemm(prod, a, b):
    """Y = alpha * A' x B' + beta * C, BN over Y's columns: scale B's columns and C."""
    w, c, y = prod.input(1), prod.input(2), prod.output(0)
    cols = a.reshape(-1, 1) if prod.attrs.get("transB", 0) else a.reshape(1, -1)
    prod.inputs[1] = _constant(f"{w.name}_bn", w.data * cols, w)
    beta = float(prod.attrs.get("beta", 1.0))
    if c is None:
        new_c = b
    else:  # beta * C broadcast to the columns, then scaled like them
        full = np.broadcast_to(c.data.reshape((1,) * (2 - c.rank) + tuple(c.shape)),
                               np.broadcast_shapes((1,) * (2 - c.rank) + tuple(c.shape), (1, a.shape[0])))
        new_c = beta * full.astype(np.float64) * a + b
    prod.attrs["beta"] = 1.0
    new = _constant(f"{y.name}_bias", np.asarray(new_c), w)
    if len(prod.inputs) > 2:
        prod.inputs[2] = new
    else:
        prod.inputs.append(new)

