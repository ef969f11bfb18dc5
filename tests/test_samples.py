"""The bundled samples: every seed model compiles in both targets and matches onnxruntime, and
samples/demo.py (which also builds the C program samples/simple_rnn_main.c) runs and agrees."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from conftest import ATOL, assert_close, build, ort_run

SAMPLES = os.path.join(os.path.dirname(__file__), "..", "samples")
SEEDS = ["simple_rnn", "simple_lstm", "simple_gru"]


@pytest.mark.parametrize("name", SEEDS)
@pytest.mark.parametrize("batch,seq", [(1, 1), (1, 5), (4, 9)])
def test_seed_model(name, batch, seq, target, tmp_path):
    path = os.path.join(SAMPLES, f"{name}.onnx")
    rng = np.random.default_rng(batch * 100 + seq)
    inputs = [rng.standard_normal((batch, seq, 10)).astype(np.float32)]
    if name != "simple_lstm":
        inputs.append(rng.standard_normal((1, batch, 20)).astype(np.float32))
    assert_close(build(path, target, tmp_path)(*inputs), ort_run(path, inputs), name)


def test_demo_prints_outputs_matching_onnxruntime():
    done = subprocess.run([sys.executable, os.path.join(SAMPLES, "demo.py")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    diffs = [float(x) for x in re.findall(r"max \|diff\| (\S+)", done.stdout)]
    assert len(diffs) == 7, done.stdout  # 2 + 1 + 2 NumPy outputs, 2 C outputs
    assert max(diffs) < ATOL, done.stdout


@pytest.mark.parametrize("name", SEEDS)
def test_seed_model_with_approximate_activations(name, tmp_path):
    """--approx-activations (rational tanh/sigmoid, abs error <= 1.4e-6 each) still keeps the
    seeds within the usual tolerance of onnxruntime."""
    import onnx2src
    from onnx2src.harness import CModel, Interface
    path = os.path.join(SAMPLES, f"{name}.onnx")
    files = onnx2src.generate(path, onnx2src.Options("c", name=name, approximate=True, max_dims={"batch": 3}))
    assert "o2s_fast_tanhf(" in files[f"{name}.c"]
    run = CModel(files, name, Interface(path), str(tmp_path))
    rng = np.random.default_rng(7)
    inputs = [rng.standard_normal((3, 9, 10)).astype(np.float32)]
    if name != "simple_lstm":
        inputs.append(rng.standard_normal((1, 3, 20)).astype(np.float32))
    assert_close(run(*inputs), ort_run(path, inputs), name)
