"""The C matrix kernel (templates/c/kernels.c.j2) on awkward sizes, in each of its code paths:
the portable one, the four-row blocks and fused multiply-adds that AVX2 / AVX-512 builds select
at compile time, and each level of a dispatching build. Compared with onnxruntime."""
import numpy as np
import pytest
from onnx import TensorProto, helper

from conftest import assert_close, cpu_flags, ort_run, save
from onnx2src import Options, generate
from onnx2src.harness import CModel, Interface


FLAGS = cpu_flags()
NO_AVX2 = pytest.mark.skipif(not {"avx2", "fma"} <= FLAGS, reason="this CPU has no AVX2/FMA to run that code")
NO_AVX512 = pytest.mark.skipif("avx512f" not in FLAGS, reason="this CPU has no AVX-512F to run that code")
BUILDS = [pytest.param(("-O2", "-DO2S_NO_DISPATCH"), id="portable"),
          pytest.param(("-O2", "-mavx2", "-mfma", "-DO2S_NO_DISPATCH"), id="avx2-fma", marks=NO_AVX2),
          # the levels of a dispatching x86-64 build (templates/c/prelude.c), each pinned
          pytest.param(("-O2", "-DO2S_DISPATCH_PIN=O2S_ISA_BASE"), id="dispatch-base"),
          pytest.param(("-O2", "-DO2S_DISPATCH_PIN=O2S_ISA_AVX2"), id="dispatch-avx2", marks=NO_AVX2),
          pytest.param(("-O2", "-DO2S_DISPATCH_PIN=O2S_ISA_AVX512"), id="dispatch-avx512", marks=NO_AVX512)]


def gemm_model(m, k, n, b_constant, trans_b):
    rng = np.random.default_rng(m * 100 + k * 10 + n)
    b_shape = [n, k] if trans_b else [k, n]
    b = rng.standard_normal(b_shape).astype(np.float32)
    c = rng.standard_normal([n]).astype(np.float32)
    inputs = [helper.make_tensor_value_info("A", TensorProto.FLOAT, [m, k])]
    inits = [helper.make_tensor("C", TensorProto.FLOAT, [n], c)]
    if b_constant:
        inits.append(helper.make_tensor("B", TensorProto.FLOAT, b_shape, b.ravel()))
    else:
        inputs.append(helper.make_tensor_value_info("B", TensorProto.FLOAT, b_shape))
    graph = helper.make_graph([helper.make_node("Gemm", ["A", "B", "C"], ["Y"], transB=trans_b, alpha=0.5)],
                              "gemm", inputs, [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [m, n])],
                              inits)
    feeds = [rng.standard_normal([m, k]).astype(np.float32)] + ([] if b_constant else [b])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), feeds


@pytest.mark.parametrize("flags", BUILDS)
# (13, 9, 200), (2, 3, 130): the blocks of four panels, the eight-panel rows and the one-panel rest
@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (3, 5, 17), (4, 7, 16), (5, 2, 33), (9, 13, 40), (8, 64, 80),
                                   (13, 9, 200), (2, 3, 130)])
@pytest.mark.parametrize("b_constant,trans_b", [(True, 1), (False, 0)], ids=["packed", "runtime"])
def test_gemm_kernel(m, k, n, b_constant, trans_b, flags, tmp_path):
    model, feeds = gemm_model(m, k, n, b_constant, trans_b)
    path = save(model, tmp_path)
    run = CModel(generate(path, Options("c", name="gemm")), "gemm", Interface(path), str(tmp_path), flags)
    assert_close(run(*feeds), ort_run(path, feeds), f"Gemm {m}x{k}x{n}")


@pytest.mark.parametrize("flags", BUILDS)
def test_batched_lstm_export_with_wide_registers(flags, tmp_path):
    """A real export at batch 6: the recurrence itself goes through the four-row blocks."""
    import os
    path = os.path.join(os.path.dirname(__file__), "exports", "lstm_l2_bi_bf_noh0_last_dy.onnx")
    files = generate(path, Options("c", name="lstm", max_dims={"batch": 6}))
    run = CModel(files, "lstm", Interface(path), str(tmp_path), flags)
    x = np.random.default_rng(1).standard_normal((6, 9, 5)).astype(np.float32)
    assert_close(run(x), ort_run(path, [x]), "lstm batch 6")
