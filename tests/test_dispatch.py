"""Run-time dispatch (templates/c/prelude.c, source.c.j2): a plain -O2 x86-64 build compiles
o2s_forward once per instruction-set level (AVX-512F, AVX2 + FMA, the build's own) and runs the
best one the CPU has. Checked with gcc and clang against onnxruntime: the dispatching build,
each level pinned with -DO2S_DISPATCH_PIN (those this CPU can run), and -DO2S_NO_DISPATCH. The
objects must hold the variants with every kernel inlined into them (a kernel left out of line
would run at the baseline level), and none where dispatch is off."""
import os
import platform
import shutil
import subprocess

import numpy as np
import onnx
import pytest

from conftest import assert_close, cpu_flags, ort_run
from onnx2src import Options, generate
from onnx2src.harness import CModel, Interface
from test_exports import HERE, random_inputs
from test_portability import SAMPLES

pytestmark = pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86-64 dispatch")

CC = [c for c in ("gcc", "clang") if shutil.which(c)]
# a seed per cell, the batched bidirectional exports (the four-row blocks), a convolution
CASES = [(os.path.join(SAMPLES, "simple_lstm.onnx"), {"batch": 2, "seq": 5}),
         (os.path.join(SAMPLES, "simple_gru.onnx"), {"batch": 3, "seq": 4}),
         (os.path.join(SAMPLES, "simple_rnn.onnx"), {"batch": 1, "seq": 6}),
         (os.path.join(HERE, "lstm_l2_bi_bf_noh0_last_dy.onnx"), {"batch": 5, "seq": 7}),
         (os.path.join(HERE, "gru_l2_bi_sf_noh0_every_dy.onnx"), {"batch": 2, "seq": 3}),
         (os.path.join(HERE, "ops", "crnn_ts17nf.onnx"), {"batch": 2, "time": 7})]
IDS = [os.path.basename(f)[:-5] for f, _ in CASES]


FLAGS = cpu_flags()
# the levels this CPU runs, as -DO2S_DISPATCH_PIN takes them
PINS = ["O2S_ISA_BASE"] + (["O2S_ISA_AVX2"] if {"avx2", "fma"} <= FLAGS else []) + \
       (["O2S_ISA_AVX512"] if "avx512f" in FLAGS else [])


def _build(path, sizes, cc, flags, tmp_path, monkeypatch):
    monkeypatch.setenv("CC", cc)
    symbols = Interface(path).symbols
    files = generate(path, Options("c", name="model", max_dims={d: n for d, n in sizes.items() if d in symbols}))
    out = tmp_path / "_".join(f.lstrip("-").replace("=", "_") for f in flags)
    out.mkdir(exist_ok=True)
    return CModel(files, "model", Interface(path), str(out), flags)


def _inputs(path, sizes):
    x = random_inputs(path, sizes, 4)
    return x, ort_run(path, x)


@pytest.mark.skipif(not CC, reason="no gcc or clang")
@pytest.mark.parametrize("cc", CC)
@pytest.mark.parametrize("path,sizes", CASES, ids=IDS)
def test_plain_o2_dispatches(path, sizes, cc, tmp_path, monkeypatch):
    """-O2, no -m flags (the harness adds -std=c99 -pedantic -Wall -Wextra -Werror): the
    dispatching build, every level pinned, and dispatch off, all match onnxruntime; the levels
    with fused multiply-adds (AVX2, AVX-512) give the same bits as each other."""
    x, expected = _inputs(path, sizes)
    outputs = {}
    for flags in [("-O2",), ("-O2", "-DO2S_NO_DISPATCH")] + [("-O2", f"-DO2S_DISPATCH_PIN={p}") for p in PINS]:
        got = _build(path, sizes, cc, flags, tmp_path, monkeypatch)(*x)
        assert_close(got, expected, f"{os.path.basename(path)} {cc} {' '.join(flags)}")
        outputs[flags[-1]] = got
    fused = [outputs[f"-DO2S_DISPATCH_PIN={p}"] for p in PINS if p != "O2S_ISA_BASE"]
    for other in fused[1:]:
        for a, b in zip(fused[0], other):
            assert np.array_equal(a.view(np.uint32), b.view(np.uint32)), "AVX2 and AVX-512 variants differ"


def _symbols(cc, flags, src, tmp_path):
    obj = str(tmp_path / "m.o")
    subprocess.run([cc, *flags, "-c", src, "-o", obj], check=True, capture_output=True)
    return subprocess.run(["nm", obj], capture_output=True, text=True, check=True).stdout


@pytest.mark.skipif(not CC or not shutil.which("nm"), reason="needs gcc or clang and nm")
@pytest.mark.parametrize("cc", CC)
def test_variants_have_their_kernels_inlined(cc, tmp_path):
    """With dispatch, the object has the three variants of o2s_forward and no matrix kernel or
    activation out of line (it would be compiled for the baseline only); without (-O0,
    -DO2S_NO_DISPATCH, -march=native, C++), it has none of them."""
    path = os.path.join(HERE, "lstm_l2_bi_bf_noh0_last_dy.onnx")
    files = generate(path, Options("c", name="model"))
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    src = str(tmp_path / "model.c")
    for flags in (["-O2"], ["-O3"], ["-Os"], ["-O2", "-std=c99", "-pedantic"]):
        names = _symbols(cc, flags, src, tmp_path)
        for variant in ("o2s_forward_avx512", "o2s_forward_avx2", "o2s_forward_base"):
            assert variant in names, f"{cc} {flags}: no {variant}"
        for kernel in ("o2s_gemm_float", "o2s_store_float", "o2s_sigmoidf", "o2s_tanhf"):
            assert kernel not in names, f"{cc} {flags}: {kernel} out of line"
    cxx = {"gcc": "g++", "clang": "clang++"}[cc]
    for c, flags in ((cc, ["-O0"]), (cc, ["-O2", "-DO2S_NO_DISPATCH"]), (cc, ["-O2", "-march=x86-64-v4"]),
                     (cxx, ["-x", "c++", "-std=c++11", "-O2"])):
        if shutil.which(c):
            assert "o2s_forward_avx2" not in _symbols(c, flags, src, tmp_path), f"{c} {flags}"


@pytest.mark.skipif(not CC, reason="no gcc or clang")
@pytest.mark.parametrize("cc", CC)
def test_warning_free_wherever_it_dispatches(cc, tmp_path):
    """The loop hints (O2S_IVDEP, O2S_UNROLL_CLANG) and the variants warn at no optimization level
    or sanitizer (clang's vectorize(assume_safety) used to, where it could not vectorize)."""
    path = os.path.join(SAMPLES, "simple_lstm.onnx")
    for name, text in generate(path, Options("c", name="model")).items():
        (tmp_path / name).write_text(text)
    small = "-Oz" if cc == "clang" else "-Os"
    for flags in ([small], ["-O2", "-fsanitize=address,undefined"]):
        done = subprocess.run([cc, "-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", *flags, "-c",
                               str(tmp_path / "model.c"), "-o", str(tmp_path / "model.o")],
                              capture_output=True, text=True)
        assert done.returncode == 0 and not done.stderr, f"{cc} {flags}:\n{done.stderr}"
