"""--weights bf16: the C target stores the constant matrices of its matrix products (Gemm,
MatMul, Conv, the recurrences' W and R) as bfloat16 and computes in float32.

The exact reference is onnxruntime running the model whose matrices are those bfloat16 values
(each weight rounded to bfloat16, to nearest even, and widened back to float32): the generated
code must match it to float precision, as the float code matches the model itself. Against the
original float model the error is that of the rounding (printed, and stated in docs/performance.md,
Reduced-precision weights), and the matrices' bytes are halved. The NumPy target refuses the
option.
"""
import os
import shutil
import subprocess

import numpy as np
import pytest

from conftest import assert_close, max_error, ort_run, wide_bounds
from onnx2src import CompileError, Options, generate
from onnx2src.harness import CModel, Interface, rounded_model
from onnx2src.reduced_weights import bf16_bits

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = ["samples/simple_rnn.onnx", "samples/simple_lstm.onnx", "samples/simple_gru.onnx",
          "samples/bench/lstm_i32_h64.onnx", "tests/exports/ops/gru_act_dy.onnx",
          "tests/exports/ops/ln_gru_dy.onnx", "tests/exports/ops/crnn_dy.onnx",
          "tests/exports/lstm_l2_bi_bf_h0_last_state_ts.onnx",
          "tests/exports/stream/mask_gru_ts.onnx",  # a pointwise Conv1d: its weights are the kernel's A, float
          "tests/real_models/dfn3_enc.onnx"]        # grouped linear layers, depthwise convolutions
def inputs_for(iface, rng, size=3):
    env = {s: min(size, 1 if "batch" in s else size) for s in iface.symbols}
    return [rng.standard_normal(shape).astype(dtype) for (_, dtype, _), shape
            in zip(iface.inputs, iface.input_shapes(env))]


@pytest.mark.parametrize("model", MODELS, ids=os.path.basename)
def test_bf16_matches_the_rounded_model(model, tmp_path):
    path = os.path.join(ROOT, model)
    max_dims = wide_bounds(path)
    files = generate(path, Options("c", name="m", max_dims=max_dims, weights="bf16"))
    assert "o2s_gemm_float_bf16(" in files["m.c"]
    iface = Interface(path)
    c_model = CModel(files, "m", iface, str(tmp_path))
    x = inputs_for(iface, np.random.default_rng(4))
    got = c_model(*x)
    rounded = rounded_model(path, str(tmp_path / "rounded.onnx"), "bf16")
    assert_close(got, ort_run(rounded, x), f"{model} with bf16 weights")
    float_error = max_error(got, ort_run(path, x))
    print(f"{model}: bf16 against the float model: max abs error {float_error:.2e}")
    assert float_error > 0  # the weights really are rounded


def test_bf16_halves_the_matrix_bytes():
    path = os.path.join(ROOT, "samples", "bench", "lstm_i64_h256.onnx")
    float_summary, bf16_summary = {}, {}
    generate(path, Options("c", name="m"), summary=float_summary)
    generate(path, Options("c", name="m", weights="bf16"), summary=bf16_summary)
    ratio = bf16_summary["weight_bytes"] / float_summary["weight_bytes"]
    assert 0.5 <= ratio < 0.51, ratio  # the biases stay float


def test_bf16_is_named_in_the_provenance_and_refused_by_numpy():
    path = os.path.join(ROOT, "samples", "simple_gru.onnx")
    files = generate(path, Options("c", weights="bf16"))
    assert "--weights bf16" in files["simple_gru.c"].splitlines()[3]
    with pytest.raises(CompileError, match="--weights bf16 is for the C target"):
        generate(path, Options("numpy", weights="bf16"))
    with pytest.raises(CompileError, match="unknown weight format 'f8'"):
        generate(path, Options("c", weights="f8"))


def test_bf16_rounds_to_nearest_even():
    values = np.array([1.0, 1.00390625, 1.005859375, 1.0029296875, -2.5, np.inf, 3.4e38], np.float32)
    # 1 + 2^-8 is a tie between 1 and 1 + 2^-7: to even (1); 1 + 1.5 * 2^-8 rounds up
    expected = np.array([0x3F80, 0x3F80, 0x3F81, 0x3F80, 0xC020, 0x7F80, 0x7F80], np.uint16)
    assert bf16_bits(values).tolist() == expected.tolist()
    assert bf16_bits(np.array([np.nan], np.float32))[0] == 0x7FC0


@pytest.mark.parametrize("weights", ["bf16", "int8"])
@pytest.mark.parametrize("flags", [["-std=c99", "-pedantic"], ["-x", "c++", "-std=c++11"]], ids=["c99", "c++11"])
def test_reduced_weights_code_is_warning_free(flags, weights, tmp_path):
    """The bf16 and int8 kernels under the strict warning set (conversions, shadowing, double
    promotion), as C99 and as C++11."""
    cc = shutil.which("g++" if "c++" in flags else "gcc")
    if cc is None:
        pytest.skip("gcc / g++ is not installed")
    files = generate(os.path.join(ROOT, "samples", "simple_gru.onnx"), Options("c", name="m", weights=weights))
    for fname, text in files.items():
        (tmp_path / fname).write_text(text)
    for src in ("m.c", "m_weights.c"):
        done = subprocess.run([cc, *flags, "-Wall", "-Wextra", "-Werror", "-Wshadow", "-Wdouble-promotion",
                               "-Wconversion", "-O2", "-c", str(tmp_path / src), "-o", str(tmp_path / (src + ".o"))],
                              capture_output=True, text=True)
        assert done.returncode == 0 and not done.stderr, done.stderr
