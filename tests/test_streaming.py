"""The step API, checked against onnxruntime: for every bundled model the streaming analysis
lets stream, running the sequence chunk by chunk (C: NAME_init + NAME_step on a caller's workspace;
NumPy: Stream().step) gives onnxruntime's outputs for the whole sequence at once, for random
splits and one step at a time. Per-step outputs are the chunks' joined on their time axis,
last-step outputs the last chunk's. Models that can't stream say why in the header and docstring.
"""
import glob
import re
import os

import numpy as np
import pytest

from conftest import assert_close, build, chunked, ort_run, stream_plan
from onnx2src import Options, frontend, generate
from onnx2src.harness import CStream

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = sorted(glob.glob(os.path.join(ROOT, "samples", "*.onnx")) +
                glob.glob(os.path.join(ROOT, "tests", "exports", "*.onnx")) +
                glob.glob(os.path.join(ROOT, "tests", "exports", "stream", "*.onnx")))
BATCH, STEPS = 2, 9


def inputs_for(path, plan, rng):
    """Random inputs for the whole sequence: batch BATCH, STEPS time steps."""
    sizes = {plan.time: STEPS}
    if isinstance(plan.batch, str):
        sizes[plan.batch] = BATCH
    arrays = []
    for v in frontend.load(path).inputs:
        shape = [d if isinstance(d, int) else sizes[str(d)] for d in v.shape]
        arrays.append(rng.standard_normal(shape).astype(v.dtype.numpy))
    return arrays


def splits(rng):
    yield [1] * STEPS
    for _ in range(2):
        cuts = sorted(rng.choice(np.arange(1, STEPS), size=rng.integers(1, 4), replace=False))
        yield list(np.diff([0, *cuts, STEPS]))


PLANS = {os.path.basename(p): stream_plan(p) for p in MODELS}
STREAMABLE = [p for p in MODELS if PLANS[os.path.basename(p)].reason is None]


def test_enough_models_stream():
    """The bundled exports include unidirectional models of all three cells that stream."""
    names = [os.path.basename(p) for p in STREAMABLE]
    assert len(names) >= 8, names
    assert all(any(n.startswith(c) for n in names) for c in ("lstm", "gru", "rnn")), names


@pytest.mark.parametrize("path", STREAMABLE, ids=os.path.basename)
def test_chunks_match_whole_sequence(path, target, tmp_path):
    plan = PLANS[os.path.basename(path)]
    rng = np.random.default_rng(0)
    inputs = inputs_for(path, plan, rng)
    expected = ort_run(path, inputs)
    model = frontend.load(path)
    names = {"in": [v.name for v in model.inputs], "out": [v.name for v in model.outputs]}
    bounds = {s: 16 for s in (plan.time, plan.batch) if isinstance(s, str)}
    run = build(path, target, tmp_path / target, max_dims=bounds)
    for sizes in splits(rng):
        if target == "c":
            stream = CStream(run, BATCH if isinstance(plan.batch, str) else None)
            step = stream.step
        else:
            step = run.module.Stream().step
        assert_close(chunked(step, plan, names, inputs, sizes), expected, f"chunks {sizes}")


@pytest.mark.parametrize("stem,reason", [
    ("stream/conv_time_gru_ts", 'Conv "/conv/Conv" slides along the time axis'),
    ("stream/meanpool_lstm_ts", 'ReduceMean "/ReduceMean" reduces over the time axis'),
    ("lstm_l1_bi_sf_noh0_last_ts", 'LSTM "/rnn/LSTM" is bidirectional'),
])
def test_models_that_cannot_stream_say_why(stem, reason, tmp_path):
    path = os.path.join(ROOT, "tests", "exports", stem + ".onnx")
    files = generate(path, Options("c", name="m"))
    header = " ".join(files["m.h"].split())
    assert f"Streaming: no step API ({reason.replace(chr(34), chr(39))}" in header
    assert "m_step" not in header and "m_step" not in files["m.c"]
    module = build(path, "numpy", tmp_path).module
    with pytest.raises(TypeError, match="this model can't stream: " + re.escape(reason)):
        module.Stream()
