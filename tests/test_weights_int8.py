"""--weights int8: weight-only quantization of the matrices (Gemm, MatMul, Conv, the recurrences'
W and R), symmetric, one scale per output channel; activations and state stay float.

The exact reference is onnxruntime running the float model whose matrices are replaced by their
dequantized values (harness.rounded_model): both targets must match it to float precision, as the
float code matches the model itself, and really store int8 (the C kernel's int8 variant, the
NumPy module's int8 arrays). Against the original float model the error is the quantization's
(printed, and stated in docs/performance.md, int8 weights).
"""
import json
import os

import numpy as np
import pytest
import onnx
from onnx import TensorProto, helper, numpy_helper

from conftest import assert_close, max_error, ort_run, wide_bounds
from onnx2src import Options, generate
from onnx2src.bench import prepare
from onnx2src.emit.c import int8_words
from onnx2src.harness import CModel, Interface, load_numpy, reference, rounded_model
from onnx2src.reduced_weights import int8_channels, int8_columns, quantize, round_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = ["samples/simple_rnn.onnx", "samples/simple_lstm.onnx", "samples/simple_gru.onnx",
          "samples/bench/lstm_i32_h64.onnx", "tests/exports/ops/gru_act_dy.onnx",
          "tests/exports/ops/ln_gru_dy.onnx", "tests/exports/ops/crnn_dy.onnx",
          "tests/exports/ops/pad_conv_acts_ts17.onnx", "tests/exports/lstm_l2_bi_bf_h0_last_state_ts.onnx",
          "tests/exports/quant/mlp_float.onnx", "tests/exports/quant/conv1d_float.onnx"]


def inputs_for(iface, rng, size=3):
    env = {s: min(size, 1 if "batch" in s else size) for s in iface.symbols}
    return [rng.standard_normal(shape).astype(dtype) for (_, dtype, _), shape
            in zip(iface.inputs, iface.input_shapes(env))]


@pytest.mark.parametrize("target", ["c", "numpy"])
@pytest.mark.parametrize("model", MODELS, ids=os.path.basename)
def test_int8_matches_the_dequantized_model(model, target, tmp_path):
    path = os.path.join(ROOT, model)
    max_dims = wide_bounds(path)
    files = generate(path, Options(target, name="m", max_dims=max_dims, weights="int8"))
    iface = Interface(path)
    if target == "c":
        assert "o2s_gemm_float_i8(_isa" in files["m.c"]
        run = CModel(files, "m", iface, str(tmp_path), ("-O1", "-DO2S_NO_DISPATCH"))
    else:
        assert "stored as int8 values times a scale per channel" in files["m.py"]
        run = load_numpy(files["m.py"], "m", str(tmp_path)).run
    x = inputs_for(iface, np.random.default_rng(5))
    got = list(run(*x))
    assert_close(got, ort_run(rounded_model(path, str(tmp_path / "int8.onnx"), "int8"), x), f"{model} with int8 weights")
    float_error = max_error(got, ort_run(path, x))
    print(f"{model} ({target}): int8 against the float model: max abs error {float_error:.2e}")
    assert float_error > 0  # the weights really are quantized


@pytest.mark.parametrize("flags", [("-O2",), ("-O2", "-DO2S_GEMM_SUMS=1"), ("-O2", "-DO2S_NO_DISPATCH")],
                         ids=["dispatch", "one-sum", "no-dispatch"])
def test_int8_kernel_paths(flags, tmp_path):
    """The int8 kernel's paths: every instruction-set level of a dispatching build, the one-sum
    form a Cortex-M takes, a batch of 5 (a block of four rows and one more, in every step's
    product) and an input width (10) that is not a multiple of 4 (a last word with fewer rows)."""
    path = os.path.join(ROOT, "samples", "simple_lstm.onnx")
    max_dims = {"batch": 5, "seq": 16}
    files = generate(path, Options("c", name="m", max_dims=max_dims, weights="int8"))
    iface = Interface(path)
    run = CModel(files, "m", iface, str(tmp_path), flags)
    x = [np.random.default_rng(6).standard_normal((5, 7, 10)).astype(np.float32)]
    assert_close(run(*x), ort_run(rounded_model(path, str(tmp_path / "int8.onnx"), "int8"), x), f"{flags}")


def test_int8_quarters_the_matrix_bytes():
    path = os.path.join(ROOT, "samples", "bench", "lstm_i64_h256.onnx")
    float_summary, int8_summary = {}, {}
    generate(path, Options("c", name="m"), summary=float_summary)
    files = generate(path, Options("c", name="m", weights="int8"), summary=int8_summary)
    ratio = int8_summary["weight_bytes"] / float_summary["weight_bytes"]
    assert 0.25 <= ratio < 0.26, ratio  # the biases and the column scales stay float
    assert f"{int8_summary['weight_bytes']} bytes of weights" in files["m.h"]
    assert "--weights int8" in files["m.c"].splitlines()[3]


def test_quantization_is_symmetric_per_channel():
    rng = np.random.default_rng(7)
    w = rng.standard_normal((6, 5)).astype(np.float32) * np.float32([[1], [10], [0.01], [0], [3], [1e-30]])
    q, scale = quantize(w, (1,))
    assert q.dtype == np.int8 and scale.shape == (6, 1)
    assert np.abs(q).max(axis=1).tolist() == [127, 127, 127, 0, 127, 127]
    assert np.all(np.abs(q.astype(np.float32) * scale - w) <= scale / 2 * (1 + 1e-6))
    # the emitters recover the values and scales from the dequantized floats, along any axis
    deq = q.astype(np.float32) * scale
    found = int8_channels(deq)
    assert found is not None and np.array_equal(found[0].astype(np.float32) * found[1], deq)
    cols = int8_columns(np.ascontiguousarray(deq.T)[None])  # one panel: [1][K=5][W=6], a scale per column
    assert cols is not None and np.array_equal(cols[0][0].T, q)
    assert int8_channels(rng.standard_normal((6, 5)).astype(np.float32)) is None  # plain floats stay float


def test_int8_words_layout():
    q = np.arange(-60, 60, dtype=np.int8).reshape(2, 5, 12)  # P=2, K=5 (a last word of one row), W=12
    words = int8_words(q)
    assert words.shape == (2, 2, 12) and words.dtype == np.int32
    for p in range(2):
        for r in range(2):
            for l in range(12):
                got = [((int(words[p, r, l]) >> (8 * b)) & 0xFF) for b in range(4)]
                want = [int(q[p, 4 * r + b, l]) & 0xFF if 4 * r + b < 5 else 0 for b in range(4)]
                assert got == want


def test_dequantize_model_axes(tmp_path):
    """Gemm's B along transB, MatMul's B per column, Conv's W per output channel, a recurrence's
    W per gate row and direction; other initializers (biases) untouched."""
    rng = np.random.default_rng(8)
    inits = {"gemm_b": rng.standard_normal((4, 3)), "mm_b": rng.standard_normal((3, 5)),
             "conv_w": rng.standard_normal((2, 5, 3)), "bias": rng.standard_normal(3)}
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "gemm_b", "bias"], ["g"], transB=1),
         helper.make_node("MatMul", ["g", "mm_b"], ["m"]),
         helper.make_node("Unsqueeze", ["m", "axes"], ["u"]),
         helper.make_node("Conv", ["u", "conv_w"], ["y"])],
        "axes", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(v.astype(np.float32), k) for k, v in inits.items()]
        + [numpy_helper.from_array(np.array([0], np.int64), "axes")])
    model = round_model(helper.make_model(graph), "int8")
    out = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for name, axes in (("gemm_b", (1,)), ("mm_b", (0,)), ("conv_w", (1, 2))):
        q, scale = quantize(inits[name], axes)
        assert np.array_equal(out[name], q.astype(np.float32) * scale), name
    assert np.array_equal(out["bias"], inits["bias"].astype(np.float32))


REAL = os.path.join(ROOT, "samples", "bench", "real_models.json")


@pytest.mark.parametrize("entry", json.load(open(REAL)), ids=lambda e: os.path.basename(e["file"]))
def test_int8_real_models(entry, tmp_path):
    """Real models keep their weights in Constants, behind Unsqueeze and in If branches
    (silero VAD) or as initializers (DeepFilterNet3): all are found, both targets match the
    dequantized model, and the C weights shrink."""
    path = os.path.normpath(os.path.join(os.path.dirname(REAL), entry["file"]))
    pinning = Options("c", consts=entry.get("const"), fixed_dims=entry.get("fix_dim"))
    iface, inputs, env, _ = prepare(path, list(entry["dims"].items()), None, (), (), 0, pinning)
    options = dict(max_dims=env, consts=pinning.consts, fixed_dims=pinning.fixed_dims)
    expected = reference(rounded_model(path, str(tmp_path / "int8.onnx"), "int8"), pinned=iface.pinned)[1](inputs)
    float_summary, int8_summary = {}, {}
    generate(path, Options("c", name="m", **options), summary=float_summary)
    files = generate(path, Options("c", name="m", weights="int8", **options), summary=int8_summary)
    assert int8_summary["weight_bytes"] < 0.75 * float_summary["weight_bytes"]
    assert_close(CModel(files, "m", iface, str(tmp_path), ("-O1", "-DO2S_NO_DISPATCH"))(*inputs), expected, "C")
    module = load_numpy(generate(path, Options("numpy", name="m", weights="int8", **options))["m.py"], "m",
                        str(tmp_path))
    assert_close(list(module.run(*inputs)), expected, "NumPy")


def _batched_model():
    """A MatMul whose constant B holds one matrix per batch entry ([4][8][6], as grouped linear
    layers have it) and a grouped Conv1d over few positions (its groups' weights one B each)."""
    rng = np.random.default_rng(9)
    inits = [numpy_helper.from_array(rng.standard_normal((4, 8, 6)).astype(np.float32), "w"),
             numpy_helper.from_array(rng.standard_normal((8, 2, 3)).astype(np.float32), "k")]
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"]), helper.make_node("Conv", ["z", "k"], ["c"], group=4)],
        "batched", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", 4, "t", 8]),
                    helper.make_tensor_value_info("z", TensorProto.FLOAT, ["b", 8, 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None),
         helper.make_tensor_value_info("c", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


@pytest.mark.parametrize("weights", ["float", "bf16", "int8"])
def test_batched_constant_b_packed_at_compile_time(weights, tmp_path):
    """A constant B with a matrix per batch entry is packed when generating, each matrix in its
    storage (float, bf16, int8), the kernel reading the batch entry's matrix; before, it was
    packed into working memory at every call and stayed float."""
    path = str(tmp_path / "batched.onnx")
    onnx.save(_batched_model(), path)
    max_dims = {"b": 4, "t": 8}
    files = generate(path, Options("c", name="m", max_dims=max_dims, weights=weights))
    assert "o2s_pack_float(" not in files["m.c"]  # nothing packed at run time
    kernel = {"float": "o2s_gemm_float(", "bf16": "o2s_gemm_float_bf16(", "int8": "o2s_gemm_float_i8("}[weights]
    assert files["m.c"].count(kernel + "_isa") == 2
    iface = Interface(path)
    rng = np.random.default_rng(10)
    x = [rng.standard_normal((2, 4, 7, 8)).astype(np.float32), rng.standard_normal((2, 8, 5)).astype(np.float32)]
    reference = path if weights == "float" else rounded_model(path, str(tmp_path / "rounded.onnx"), weights)
    assert_close(CModel(files, "m", iface, str(tmp_path), ("-O2",))(*x), ort_run(reference, x), weights)
