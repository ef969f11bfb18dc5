"""Real PyTorch exports with non-recurrent ops (tests/exports/ops, made by make_op_exports.py
with torch 2.13): torch.where with a scalar and a per-row condition, If from torch.jit.script
and torch.cond, a custom activation after a GRU, a Conv1d/BatchNorm/MaxPool + LSTM CRNN, a tiny
ResNet (Conv2d, BatchNorm, residual adds, MaxPool, GlobalAveragePool / ReduceMean, Gemm),
LayerNorm + GRU, Pad + Conv2d + the activation zoo + elementwise math, and an audio front-end
(RMS, Clip, log1p, CumSum, ArgMax). TorchScript exports at opset 17 (also without constant
folding, which keeps BatchNormalization) and dynamo exports. Each compiles in both targets and
matches onnxruntime at every size the export was verified at."""
import json
import os

import numpy as np
import onnx
import pytest

from conftest import assert_close, build, ort_run

HERE = os.path.join(os.path.dirname(__file__), "exports", "ops")
MANIFEST = json.load(open(os.path.join(HERE, "manifest.json")))


def random_inputs(path, sizes, seed):
    rng = np.random.default_rng(seed)
    graph = onnx.load(path, load_external_data=False).graph
    inputs = []
    for vi in graph.input:
        shape = [sizes[d.dim_param] if d.dim_param else d.dim_value for d in vi.type.tensor_type.shape.dim]
        inputs.append(rng.standard_normal(shape).astype(np.float32))
    return inputs


@pytest.mark.parametrize("entry", MANIFEST, ids=[e["file"] for e in MANIFEST])
def test_op_export(entry, target, tmp_path):
    path = os.path.join(HERE, entry["file"])
    run = build(path, target, tmp_path)
    for seed, sizes in enumerate(entry["verified_sizes"]):
        inputs = random_inputs(path, sizes, seed)
        assert_close(run(*inputs), ort_run(path, inputs), f"{entry['file']} at {sizes}")
