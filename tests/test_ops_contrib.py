"""onnxruntime's com.microsoft DynamicQuantizeLSTM (ops/contrib.py), what its quantize_dynamic
writes for an LSTM, in both targets.

The LSTM models are built here with onnx.helper and quantized by onnxruntime (int8 weights,
per tensor and per channel; forward, reverse and bidirectional, with and without initial
states). Two references:
- exact: onnxruntime's float LSTM with W and R replaced by their dequantized values, which is
  what onnx2src computes (the weights dequantized at run time, activations float): float
  tolerance;
- onnxruntime running the quantized model, whose kernel also quantizes X and every step's h to
  uint8 (steps of 2/255 for h in [-1, 1]) before its integer products: measured, within two such
  steps (0.016). The largest difference measured is printed for docs/supported.md
  (Quantized models). The session sets session.x64quantprecision (conftest.ort_options): on
  x86-64 without VNNI the kernel's uint8 x int8 products otherwise saturate at 16 bits, up to
  0.094 off (bi_channel_states) instead of 6.2e-3.
"""
import numpy as np
import onnx
import pytest
from onnx import TensorProto as T, helper as h, numpy_helper

from onnx2src import CompileError, Options, generate

from conftest import assert_close, build, max_error, ort_run, save

H, I = 16, 8
ACTIVATION_STEP = 2 / 255  # onnxruntime's uint8 quantization of h in [-1, 1]


def lstm_model(direction, states):
    rng = np.random.default_rng(20)
    d = 2 if direction == "bidirectional" else 1
    inits = [numpy_helper.from_array((rng.standard_normal((d, 4 * H, I)) * 0.3).astype(np.float32), "W"),
             numpy_helper.from_array((rng.standard_normal((d, 4 * H, H)) * 0.3).astype(np.float32), "R"),
             numpy_helper.from_array((rng.standard_normal((d, 8 * H)) * 0.1).astype(np.float32), "B")]
    inputs = [h.make_tensor_value_info("x", T.FLOAT, ["seq", "batch", I])]
    names = ["x", "W", "R", "B"]
    if states:
        names += ["", "h0", "c0"]
        inputs += [h.make_tensor_value_info(n, T.FLOAT, [d, "batch", H]) for n in ("h0", "c0")]
    node = h.make_node("LSTM", names, ["y", "y_h", "y_c"], hidden_size=H, direction=direction)
    outputs = [h.make_tensor_value_info("y", T.FLOAT, ["seq", d, "batch", H]),
               h.make_tensor_value_info("y_h", T.FLOAT, [d, "batch", H]),
               h.make_tensor_value_info("y_c", T.FLOAT, [d, "batch", H])]
    model = h.make_model(h.make_graph([node], "lstm", inputs, outputs, inits), opset_imports=[h.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def dequantized_reference(quantized, float_model):
    """The float model with W and R replaced by the quantized model's dequantized weights."""
    q = {i.name: numpy_helper.to_array(i) for i in quantized.graph.initializer}
    node = next(n for n in quantized.graph.node if n.op_type == "DynamicQuantizeLSTM")
    out = onnx.ModelProto()
    out.CopyFrom(float_model)
    for k, name in ((1, "W"), (2, "R")):
        w, scale, zp = (q[node.input[i]] for i in (k, 6 + 2 * k, 7 + 2 * k))
        shape = (-1, 1, w.shape[2]) if scale.ndim == 2 else (-1, 1, 1)
        deq = (w.astype(np.int32) - zp.astype(np.int32).reshape(shape)).astype(np.float32) * scale.reshape(shape)
        for init in out.graph.initializer:
            if init.name == name:
                init.CopyFrom(numpy_helper.from_array(np.ascontiguousarray(deq.transpose(0, 2, 1)), name))
    return out


# (quantize_dynamic writes int8 weights for an LSTM even when asked for QUInt8)
CONFIGS = [("forward", False, "QInt8", False), ("bidirectional", True, "QInt8", True),
           ("reverse", True, "QInt8", False)]


@pytest.mark.parametrize("direction,states,weight,per_channel", CONFIGS,
                         ids=["fwd_tensor", "bi_channel_states", "rev_tensor_states"])
def test_dynamic_quantize_lstm(direction, states, weight, per_channel, target, tmp_path):
    from onnxruntime.quantization import QuantType, quantize_dynamic
    model = lstm_model(direction, states)
    float_path = save(model, tmp_path, "float")
    path = str(tmp_path / "quantized.onnx")
    quantize_dynamic(float_path, path, weight_type=getattr(QuantType, weight), per_channel=per_channel)
    quantized = onnx.load(path)
    assert [(n.domain, n.op_type) for n in quantized.graph.node] == [("com.microsoft", "DynamicQuantizeLSTM")]
    reference = save(dequantized_reference(quantized, model), tmp_path, "dequantized")
    run = build(path, target, tmp_path / target)
    d = 2 if direction == "bidirectional" else 1
    rng = np.random.default_rng(21)
    worst = 0.0
    for seq, batch in ((9, 1), (4, 2)):
        x = [rng.standard_normal((seq, batch, I)).astype(np.float32)]
        if states:
            x += [rng.standard_normal((d, batch, H)).astype(np.float32) * 0.5 for _ in range(2)]
        got = run(*x)
        assert_close(got, ort_run(reference, x), f"{target} against the dequantized float LSTM")
        error = max_error(got, ort_run(path, x))
        assert error <= 2 * ACTIVATION_STEP, error
        worst = max(worst, error)
    print(f"DynamicQuantizeLSTM {direction} {weight} per_channel={per_channel} {target}: "
          f"max |onnx2src - onnxruntime| = {worst:.2e}")


def test_weights_stay_quantized(tmp_path):
    from onnxruntime.quantization import QuantType, quantize_dynamic
    float_path = save(lstm_model("forward", False), tmp_path, "float")
    path = str(tmp_path / "quantized.onnx")
    quantize_dynamic(float_path, path, weight_type=QuantType.QInt8)
    sizes = {}
    for p in (float_path, path):
        summary = {}
        files = generate(p, Options("c", name="m"), summary=summary)
        sizes[p] = summary["weight_bytes"]
    # int8 with zero point 0: folded into an LSTM whose W and R the int8 matrix kernel reads
    assert "(int8, four rows to a word)" in files["m_weights.c"] and "o2s_gemm_float_i8(_isa" in files["m.c"]
    assert '/* DynamicQuantizeLSTM "' in files["m.c"]
    assert sizes[path] < 0.4 * sizes[float_path], sizes


def test_other_contrib_ops_refused(tmp_path):
    """A com.microsoft op without rules is refused, named with its domain."""
    node = h.make_node("FusedGemm", ["a", "b"], ["y"], domain="com.microsoft")
    graph = h.make_graph([node], "g", [h.make_tensor_value_info(n, T.FLOAT, [2, 2]) for n in "ab"],
                         [h.make_tensor_value_info("y", T.FLOAT, [2, 2])])
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17), h.make_opsetid("com.microsoft", 1)])
    with pytest.raises(CompileError, match="com.microsoft.FusedGemm"):
        generate(save(model, tmp_path), Options("c"))


def test_dynamic_quantize_lstm_streams(target, tmp_path):
    """With int8 weights and zero points 0 (what quantize_dynamic writes) the node becomes the
    LSTM it computes (passes/fold_int8_weights.py), so it has the step API: chunk by chunk, one
    step at a time or in uneven chunks, it gives the whole sequence's outputs."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnx2src.harness import CStream
    from conftest import build, chunked, stream_plan
    float_path = save(lstm_model("forward", False), tmp_path, "float")
    path = str(tmp_path / "quantized.onnx")
    quantize_dynamic(float_path, path, weight_type=QuantType.QInt8, per_channel=True)
    plan = stream_plan(path)
    assert plan.reason is None and plan.time == "seq"
    rng = np.random.default_rng(22)
    x = [rng.standard_normal((7, 2, I)).astype(np.float32)]
    run = build(path, target, tmp_path / target, max_dims={"seq": 16, "batch": 4})
    expected = run(*x)
    assert_close(expected, ort_run(save(dequantized_reference(onnx.load(path), onnx.load(float_path)),
                                        tmp_path, "dequantized"), x), "whole sequence")
    names = {"in": ["x"], "out": ["y", "y_h", "y_c"]}
    for sizes in ([1] * 7, [3, 1, 3]):
        step = CStream(run, 2).step if target == "c" else run.module.Stream().step
        assert_close(chunked(step, plan, names, x, sizes), expected, f"{target} chunks {sizes}")
