"""Writes the quantized test models of this folder (tests/test_quant_models.py): two small float
models built with onnx.helper (no PyTorch), and what onnxruntime's quantizers make of them.

  mlp        x [batch, 16] -> Gemm 16x32 (transB) -> Relu -> MatMul 32x8 -> Add -> y [batch, 8]
  conv1d     x [batch, 4, time] -> Conv 4->8 k3 pad 1 -> Relu -> Conv 8->6 k3 stride 2 pad 1 -> y

  NAME_float.onnx        the float model
  NAME_qdq_u8s8.onnx     quantize_static, QDQ, uint8 activations, int8 weights, per tensor
  NAME_qdq_s8s8_pc.onnx  quantize_static, QDQ, int8 activations, int8 weights, per channel
  NAME_qdq_u8u8.onnx     quantize_static, QDQ, uint8 activations, uint8 weights, per tensor
  NAME_dynamic.onnx      quantize_dynamic (int8 weights): DynamicQuantizeLinear + MatMulInteger /
                         ConvInteger
  kws_lstm_qdq_ts.onnx   quantize_static QDQ (uint8 activations, int8 weights) of
                         tests/exports/stream/kws_lstm_ts.onnx: an LSTM (left float) with per-step
                         MatMul heads, which streams

Run from anywhere: python tests/exports/quant/make_quant.py (onnx and onnxruntime needed; the
calibration data and weights are seeded, so the files come out the same for the same versions).
"""
import os

import numpy as np
import onnx
from onnx import TensorProto as T, helper as h, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))


def _const(name, array):
    return numpy_helper.from_array(np.asarray(array, np.float32), name)


def mlp():
    rng = np.random.default_rng(10)
    nodes = [h.make_node("Gemm", ["x", "w1", "b1"], ["h1"], transB=1, name="fc1"),
             h.make_node("Relu", ["h1"], ["a1"], name="relu1"),
             h.make_node("MatMul", ["a1", "w2"], ["h2"], name="fc2"),
             h.make_node("Add", ["h2", "b2"], ["y"], name="fc2_bias")]
    inits = [_const("w1", rng.standard_normal((32, 16)) * 0.3), _const("b1", rng.standard_normal(32) * 0.1),
             _const("w2", rng.standard_normal((32, 8)) * 0.3), _const("b2", rng.standard_normal(8) * 0.1)]
    graph = h.make_graph(nodes, "mlp", [h.make_tensor_value_info("x", T.FLOAT, ["batch", 16])],
                         [h.make_tensor_value_info("y", T.FLOAT, ["batch", 8])], inits)
    return graph, {"x": (16,)}


def conv1d():
    rng = np.random.default_rng(11)
    nodes = [h.make_node("Conv", ["x", "w1", "b1"], ["h1"], pads=[1, 1], name="conv1"),
             h.make_node("Relu", ["h1"], ["a1"], name="relu1"),
             h.make_node("Conv", ["a1", "w2", "b2"], ["y"], pads=[1, 1], strides=[2], name="conv2")]
    inits = [_const("w1", rng.standard_normal((8, 4, 3)) * 0.3), _const("b1", rng.standard_normal(8) * 0.1),
             _const("w2", rng.standard_normal((6, 8, 3)) * 0.3), _const("b2", rng.standard_normal(6) * 0.1)]
    graph = h.make_graph(nodes, "conv1d", [h.make_tensor_value_info("x", T.FLOAT, ["batch", 4, "time"])],
                         [h.make_tensor_value_info("y", T.FLOAT, ["batch", 6, None])], inits)
    return graph, {"x": (4, 20)}


class Calibration:
    """A few seeded batches of normal data: onnxruntime's CalibrationDataReader protocol."""

    def __init__(self, shape, seed=12, batch=4):
        rng = np.random.default_rng(seed)
        self.batches = iter([{"x": rng.standard_normal((batch,) + shape).astype(np.float32)} for _ in range(8)])

    def get_next(self):
        return next(self.batches, None)


def main():
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static
    for name, make in (("mlp", mlp), ("conv1d", conv1d)):
        graph, shapes = make()
        model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])
        model.ir_version = 8
        onnx.checker.check_model(model, full_check=True)
        src = os.path.join(HERE, f"{name}_float.onnx")
        onnx.save(model, src)
        for suffix, act, weight, per_channel in (("qdq_u8s8", QuantType.QUInt8, QuantType.QInt8, False),
                                                 ("qdq_s8s8_pc", QuantType.QInt8, QuantType.QInt8, True),
                                                 ("qdq_u8u8", QuantType.QUInt8, QuantType.QUInt8, False)):
            quantize_static(src, os.path.join(HERE, f"{name}_{suffix}.onnx"), Calibration(shapes["x"]),
                            quant_format=QuantFormat.QDQ, activation_type=act, weight_type=weight,
                            per_channel=per_channel)
        quantize_dynamic(src, os.path.join(HERE, f"{name}_dynamic.onnx"), weight_type=QuantType.QInt8,
                         op_types_to_quantize=["MatMul", "Gemm", "Conv"])
    kws = os.path.join(HERE, "..", "stream", "kws_lstm_ts.onnx")
    quantize_static(kws, os.path.join(HERE, "kws_lstm_qdq_ts.onnx"), Calibration((10, 8), seed=13, batch=2),
                    quant_format=QuantFormat.QDQ)


if __name__ == "__main__":
    main()
