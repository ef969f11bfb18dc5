"""Real PyTorch exports, made with torch 2.13, each compiled in both targets and matched with
onnxruntime at every (batch, seq) the export was verified at:

- tests/exports (make_exports.py): nn.RNN (tanh, relu), nn.LSTM and nn.GRU; 1-3 layers; uni-
  and bidirectional; batch_first or not; with and without an initial state; heads on the last
  step, on every step or none; both exporters (dynamo=False at opset 14, dynamo=True with
  external weights).
- tests/exports/ops (make_op_exports.py): torch.where with a scalar and a per-row condition, If
  from torch.jit.script and torch.cond, a custom activation after a GRU, a Conv1d / BatchNorm /
  MaxPool + LSTM CRNN, a tiny ResNet, LayerNorm + GRU, Pad + Conv2d + the activation zoo, and an
  audio front-end (RMS, Clip, log1p, CumSum, ArgMax); TorchScript at opset 17 (also without
  constant folding, which keeps BatchNormalization) and dynamo exports.
- tests/exports/keras (make_keras_exports.py, TensorFlow 2.21 and tf2onnx 1.17): tf.keras LSTM
  → Dense(256) → LayerNormalization → Dense, the layer norm as ReduceMean over 256 features
  (opset 13) or as GlobalAveragePool (opset 17), also with the batch fixed to 1 (every size of
  the layer norm's rows then known at compile time)."""
import json
import os

import numpy as np
import onnx
import pytest

from conftest import assert_close, build, ort_run

HERE = os.path.join(os.path.dirname(__file__), "exports")
MANIFEST = [dict(entry, file=os.path.join(sub, entry["file"])) for sub in ("", "ops")
            for entry in json.load(open(os.path.join(HERE, sub, "manifest.json")))]


def random_inputs(path, sizes, seed):
    rng = np.random.default_rng(seed)
    graph = onnx.load(path, load_external_data=False).graph
    inputs = []
    for vi in graph.input:
        shape = [sizes[d.dim_param] if d.dim_param else d.dim_value for d in vi.type.tensor_type.shape.dim]
        inputs.append(rng.standard_normal(shape).astype(np.float32))
    return inputs


@pytest.mark.parametrize("entry", MANIFEST, ids=[e["file"] for e in MANIFEST])
def test_export(entry, target, tmp_path):
    path = os.path.join(HERE, entry["file"])
    run = build(path, target, tmp_path)
    for seed, sizes in enumerate(entry["verified_sizes"]):
        inputs = random_inputs(path, sizes, seed)
        assert_close(run(*inputs), ort_run(path, inputs), f"{entry['file']} at {sizes}")


# (file, fixed dims, sizes to run at). keras_lstm_ln_last's time is fixed: tf2onnx slices the
# last step with end INT32_MAX, whose size (max(min(INT32_MAX, time) - time + 1, 0)) onnx2src
# can't tell is 1 for a symbolic time.
KERAS = [("keras_lstm_ln_last.onnx", {"time": 5}, [{"batch": 3, "time": 5}, {"batch": 1, "time": 5}]),
         ("keras_lstm_ln_last.onnx", {"time": 5, "batch": 1}, [{"batch": 1, "time": 5}]),
         ("keras_lstm_ln_seq.onnx", {}, [{"batch": 2, "time": 7}, {"batch": 1, "time": 1}]),
         ("keras_lstm_ln_seq.onnx", {"batch": 1}, [{"batch": 1, "time": 4}])]


@pytest.mark.parametrize("file,fixed,runs", KERAS,
                         ids=[f"{f[:-5]}{''.join(f'-{d}{n}' for d, n in fx.items())}" for f, fx, _ in KERAS])
def test_keras_export(file, fixed, runs, target, tmp_path):
    path = os.path.join(HERE, "keras", file)
    run = build(path, target, tmp_path, fixed_dims=fixed)
    for seed, sizes in enumerate(runs):
        inputs = random_inputs(path, sizes, seed)
        assert_close(run(*inputs), ort_run(path, inputs), f"{file} fixed {fixed} at {sizes}")
