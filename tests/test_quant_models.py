"""Quantized models as onnxruntime's quantizers write them (tests/exports/quant, made by its
make_quant.py from two small float models: a Gemm/MatMul MLP and a Conv1d model):
quantize_static in QDQ format (uint8 or int8 activations, int8 or uint8 weights, per tensor or
per channel) and quantize_dynamic (DynamicQuantizeLinear + MatMulInteger / ConvInteger). Both
targets are compared with onnxruntime running the same quantized model, twice: as written
(basic graph optimizations only) and with its default optimizations (which run QDQ groups as
fused integer kernels).

Tolerance: the float tolerance of every other test. A quantized model may differ from
onnxruntime by one quantization step where a float sum before a QuantizeLinear lands within
rounding of a halfway point and the two sum in different orders; on these models and inputs
(seeded) no element does: the outputs are equal, which test_exact_on_the_grid asserts and
docs/supported.md (Quantized models) reports. The quantized weights stay int8 / uint8 in the
generated code (test_weights_stay_quantized).

onnxruntime's integer matrix products: on x86-64 CPUs without VNNI its uint8 x int8 kernels sum
pairs of products in saturating 16-bit arithmetic, not in int32 as the spec says; every session
here sets its documented remedy `session.x64quantprecision` (conftest.ort_options says how it
works). That remedy is a level-2 graph transformer, so at the basic level a MatMulInteger of int8
weights still runs the saturating kernel: as_written takes onnx.reference's outputs for such a
model (quantize_dynamic's MLP) instead.
"""
import os

import numpy as np
import onnx
import pytest

from onnx2src import Options, generate

from conftest import assert_close, build, ort_options, ort_run

HERE = os.path.join(os.path.dirname(__file__), "exports", "quant")
QUANTIZED = [f"{m}_{q}" for m in ("mlp", "conv1d") for q in ("qdq_u8s8", "qdq_s8s8_pc", "qdq_u8u8", "dynamic")]


def _path(name):
    return os.path.join(HERE, f"{name}.onnx")


def _inputs(name, seed):
    rng = np.random.default_rng(seed)
    shape = (7, 16) if name.startswith("mlp") else (3, 4, 41)
    return [rng.standard_normal(shape).astype(np.float32) * (1 + seed)]


def as_written(path, inputs):
    """The model's own ops: onnxruntime with its basic graph optimizations only, or, for a model
    with a MatMulInteger of int8 weights, the spec's reference implementation (onnx.reference).
    onnxruntime runs such a MatMulInteger with its U8S8 kernel, which on x86-64 without VNNI
    clamps each sum of two neighbouring products to int16 (VPMADDUBSW: 255 * 127 * 2 = 64770
    becomes 32767); session.x64quantprecision, which makes it exact, acts from the extended level
    on only. Seen on mlp_dynamic, seed 0: one int32 sum of its first MatMulInteger 2239 off
    (-15739 instead of -17978), one of its second 1857 off, one output 0.168 off."""
    model = onnx.load(path)
    weights = {i.name: i.data_type for i in model.graph.initializer}
    if any(n.op_type == "MatMulInteger" and weights.get(n.input[1]) == onnx.TensorProto.INT8
           for n in model.graph.node):
        from onnx.reference import ReferenceEvaluator
        return ReferenceEvaluator(model).run(None, dict(zip(_graph_inputs(model), inputs)))
    import onnxruntime as ort
    sess = ort.InferenceSession(path, ort_options(ort.GraphOptimizationLevel.ORT_ENABLE_BASIC),
                                providers=["CPUExecutionProvider"])
    return sess.run(None, dict(zip([i.name for i in sess.get_inputs()], inputs)))


def _graph_inputs(model):
    weights = {i.name for i in model.graph.initializer}
    return [i.name for i in model.graph.input if i.name not in weights]


def test_models_are_what_the_quantizers_wrote():
    ops = {name: {n.op_type for n in onnx.load(_path(name)).graph.node} for name in QUANTIZED}
    for name, found in ops.items():
        if name.endswith("dynamic"):
            assert {"DynamicQuantizeLinear", "MatMulInteger" if name.startswith("mlp") else "ConvInteger"} <= found
        else:
            assert {"QuantizeLinear", "DequantizeLinear"} <= found and "Relu" not in found
    pc = onnx.load(_path("mlp_qdq_s8s8_pc"))
    scales = [i for i in pc.graph.initializer if i.name.startswith("w1") and "scale" in i.name]
    assert scales and scales[0].dims == [32]  # per output channel


@pytest.mark.parametrize("name", QUANTIZED)
def test_quantized_model(name, target, tmp_path):
    path = _path(name)
    run = build(path, target, tmp_path / target)
    for seed in range(3):
        x = _inputs(name, seed)
        got = run(*x)
        assert_close(got, as_written(path, x), f"{name} {target} seed {seed} (as written)")
        assert_close(got, ort_run(path, x), f"{name} {target} seed {seed} (onnxruntime's default)")


@pytest.mark.parametrize("name", QUANTIZED)
def test_exact_on_the_grid(name, target, tmp_path):
    """The outputs (dequantized from the last QuantizeLinear, or integer sums scaled) are
    as_written's to the bit on these inputs."""
    path = _path(name)
    run = build(path, target, tmp_path / target)
    x = _inputs(name, 5)
    got, want = run(*x)[0], as_written(path, x)[0]
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("model", ["mlp", "conv1d"])
def test_weights_stay_quantized(model):
    """The C weights of a QDQ model are about a quarter of the float model's: the int8 weights
    are not folded back to floats (biases, int32 in the model, fold to float: same size)."""
    sizes = {}
    for name in (f"{model}_float", f"{model}_qdq_s8s8_pc", f"{model}_qdq_u8s8", f"{model}_dynamic"):
        summary = {}
        files = generate(_path(name), Options("c", name="m"), summary=summary)
        sizes[name] = summary["weight_bytes"]
        if name != f"{model}_float":
            assert "int8_t values[" in files["m_weights.c"], name
    floats = sizes[f"{model}_float"]
    for name, size in sizes.items():
        if name != f"{model}_float":
            assert size < 0.4 * floats, sizes


@pytest.mark.parametrize("name,symmetric", [("mlp_qdq_s8s8_pc", True), ("conv1d_qdq_s8s8_pc", True),
                                            ("kws_lstm_qdq_ts", True), ("mlp_qdq_u8s8", True),
                                            ("conv1d_qdq_u8s8", True), ("mlp_qdq_u8u8", False),
                                            ("conv1d_qdq_u8u8", False)])
def test_int8_weights_read_as_int8(name, symmetric):
    """Symmetric int8 weights (zero point 0) of matrix products are folded and stored as int8
    again, which the int8 matrix kernel reads (C) or which stay int8 arrays (NumPy), instead of
    being dequantized into working memory at every call (passes/fold_int8_weights.py); the
    numbers are test_quantized_model's. uint8 weights with a zero point stay as they were."""
    c = generate(_path(name), Options("c", name="m"))["m.c"]
    py = generate(_path(name), Options("numpy", name="m"))["m.py"]
    assert ("o2s_gemm_float_i8(_isa" in c) == symmetric, name
    assert ("stored as int8 values times a scale per channel" in py) == symmetric, name


def test_qdq_model_streams(target, tmp_path):
    """A QDQ model around an LSTM (its per-step heads quantized) keeps its step API: chunk by
    chunk, one step at a time or in uneven chunks, it gives onnxruntime's outputs for the whole
    sequence."""
    from onnx2src.harness import CStream
    from conftest import chunked, stream_plan
    path = _path("kws_lstm_qdq_ts")
    plan = stream_plan(path)
    assert plan.reason is None and (plan.time, plan.batch) == ("seq", "batch")
    rng = np.random.default_rng(8)
    x = [rng.standard_normal((2, 9, 8)).astype(np.float32)]
    expected = as_written(path, x)
    assert_close(expected, ort_run(path, x), "onnxruntime as written and optimized")
    names = {"in": ["x"], "out": [o.name for o in onnx.load(path).graph.output]}
    run = build(path, target, tmp_path / target, max_dims={"seq": 16, "batch": 4})
    assert_close(run(*x), expected, f"{target} whole sequence")
    for sizes in ([1] * 9, [4, 2, 3]):
        step = CStream(run, 2).step if target == "c" else run.module.Stream().step
        assert_close(chunked(step, plan, names, x, sizes), expected, f"{target} chunks {sizes}")


def _integer_lstm_model():
    """x [seq, batch, 8] -> QuantizeLinear (uint8) -> MatMulInteger with int8 weights -> float
    (Cast, Mul by the scales) -> LSTM (hidden 4): a per-step integer product before a recurrence."""
    from onnx import TensorProto as T, helper as h, numpy_helper
    rng = np.random.default_rng(30)
    inits = [numpy_helper.from_array(np.float32(0.02), "x_scale"), numpy_helper.from_array(np.uint8(128), "x_zp"),
             numpy_helper.from_array(rng.integers(-127, 128, (8, 12)).astype(np.int8), "w_q"),
             numpy_helper.from_array(np.int8(0), "w_zp"), numpy_helper.from_array(np.float32(0.02 * 0.01), "s"),
             numpy_helper.from_array((rng.standard_normal((1, 16, 12)) * 0.3).astype(np.float32), "W"),
             numpy_helper.from_array((rng.standard_normal((1, 16, 4)) * 0.3).astype(np.float32), "R")]
    nodes = [h.make_node("QuantizeLinear", ["x", "x_scale", "x_zp"], ["xq"]),
             h.make_node("MatMulInteger", ["xq", "w_q", "x_zp", "w_zp"], ["acc"]),
             h.make_node("Cast", ["acc"], ["accf"], to=T.FLOAT), h.make_node("Mul", ["accf", "s"], ["z"]),
             h.make_node("LSTM", ["z", "W", "R"], ["y", "y_h"], hidden_size=4)]
    graph = h.make_graph(nodes, "integer_lstm", [h.make_tensor_value_info("x", T.FLOAT, ["seq", "batch", 8])],
                         [h.make_tensor_value_info("y", T.FLOAT, ["seq", 1, "batch", 4]),
                          h.make_tensor_value_info("y_h", T.FLOAT, [1, "batch", 4])], inits)
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def test_integer_product_streams(target, tmp_path):
    """MatMulInteger keeps time steps apart (MatMul's rule on its operands), so a model with a
    per-step integer product before a recurrence has the step API and gives the whole sequence's
    outputs chunk by chunk; DynamicQuantizeLinear (one scale from every step) is refused, saying
    why."""
    from onnx2src import CompileError
    from onnx2src.harness import CStream
    from conftest import chunked, save, stream_plan
    path = save(_integer_lstm_model(), tmp_path, "integer_lstm")
    plan = stream_plan(path)
    assert plan.reason is None and plan.time == "seq"
    x = [np.random.default_rng(31).standard_normal((6, 2, 8)).astype(np.float32)]
    expected = ort_run(path, x)
    run = build(path, target, tmp_path / target, max_dims={"seq": 16, "batch": 4})
    assert_close(run(*x), expected, "whole sequence")
    for sizes in ([1] * 6, [2, 4]):
        step = CStream(run, 2).step if target == "c" else run.module.Stream().step
        assert_close(chunked(step, plan, {"in": ["x"], "out": ["y", "y_h"]}, x, sizes), expected, f"chunks {sizes}")
    dynamic = _integer_lstm_model()
    node = dynamic.graph.node[0]
    node.CopyFrom(onnx.helper.make_node("DynamicQuantizeLinear", ["x"], ["xq", "x_scale_d", "x_zp_d"]))
    dynamic.graph.node[1].input[2] = "x_zp_d"
    with pytest.raises(CompileError, match="DynamicQuantizeLinear .* computes one scale and zero point from all"):
        generate(save(dynamic, tmp_path, "dynamic"), Options("c", stream=True))
