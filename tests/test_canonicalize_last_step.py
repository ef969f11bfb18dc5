"""A head on the last step reads the recurrence's Y_h instead of its whole Y (passes/last_step.py,
last_step_from_state): every PyTorch export and bench model still matches onnxruntime in both
targets; in the unidirectional last-step-head ones the top recurrence computes no Y, so a one-layer
model's C arena stops growing with the sequence bound; the streaming verdicts are the same with the
rewrite as without it; hand-built graphs where the last step is not provably Y_h (Y read
elsewhere, a reverse direction, sequence_lens) keep Y, and ones reaching the last step through a
Slice or a Transpose that moves the state's axes give the same values from Y_h."""
import glob
import json
import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from conftest import assert_close, build, lowered, ort_run, stream_plan
from onnx2src import Options, frontend, generate, passes
from onnx2src.ops.recurrent import STEP_BLOCK
from onnx2src.passes import last_step as last_step_pass

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPORTS = os.path.join(ROOT, "tests", "exports")
BENCH = os.path.join(ROOT, "samples", "bench")
SIMPLE_LSTM = os.path.join(ROOT, "samples", "simple_lstm.onnx")
MODELS = sorted(glob.glob(os.path.join(EXPORTS, "*.onnx")) + glob.glob(os.path.join(EXPORTS, "stream", "*.onnx"))
                + glob.glob(os.path.join(BENCH, "*.onnx")))
MANIFEST = {e["file"]: e for e in json.load(open(os.path.join(EXPORTS, "manifest.json")))}
BENCH_MANIFEST = {e["file"]: e for e in json.load(open(os.path.join(BENCH, "models.json")))}
BOUNDS = {"batch": 4, "seq": 16}
SIZES = ({"batch": 3, "seq": 16}, {"batch": 1, "seq": 1})


def name(path):
    return os.path.relpath(path, ROOT)


def recurrences(graph):
    return [n for n in graph.nodes if n.op_type == "Recurrent"]


def inputs_for(path, sizes, seed):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal([d if isinstance(d, int) else sizes[str(d)] for d in v.shape]).astype(np.float32)
            for v in frontend.load(path).inputs]


def check_matches(path, target, workdir):
    run = build(path, target, workdir, max_dims={s: BOUNDS[s] for s in frontend.load(path).symbols()})
    for seed, size in enumerate(SIZES):
        inputs = inputs_for(path, size, seed)
        assert_close(run(*inputs), ort_run(path, inputs), f"{name(path)} at {size}")


@pytest.mark.parametrize("path", MODELS, ids=[name(p) for p in MODELS])
def test_model_matches_onnxruntime(path, target, tmp_path):
    check_matches(path, target, tmp_path)


# -- the last-step heads -----------------------------------------------------------------------

def unidirectional(path):
    base = os.path.basename(path)
    entry = MANIFEST.get(base) or BENCH_MANIFEST.get(base) or {"bidirectional": False}
    return not entry["bidirectional"]


# exports whose head reads the last step of the top layer's output (the dynamo exports of an RNN
# are unrolled into MatMuls: no recurrence), the bench models (LSTM / GRU / RNN + Linear on the
# last step) and the LSTM sample (which reads Y_h already)
HEADS = sorted(p for p in glob.glob(os.path.join(EXPORTS, "*_last_*.onnx")) + glob.glob(os.path.join(BENCH, "*.onnx"))
               + [SIMPLE_LSTM] if recurrences(lowered(p)))
REWRITTEN = [p for p in HEADS if unidirectional(p)]
KEPT = [p for p in HEADS if not unidirectional(p)]


def test_heads_cover_the_cases():
    assert {os.path.basename(p).split("_")[0] for p in REWRITTEN} >= {"lstm", "gru", "rnn"}
    assert {MANIFEST[os.path.basename(p)]["batch_first"] for p in REWRITTEN if os.path.basename(p) in MANIFEST} \
        == {True, False}
    assert {MANIFEST[os.path.basename(p)]["exporter"] for p in REWRITTEN if os.path.basename(p) in MANIFEST} \
        == {"torchscript", "dynamo"}
    assert KEPT


@pytest.mark.parametrize("path", REWRITTEN, ids=[name(p) for p in REWRITTEN])
def test_top_recurrence_computes_no_y(path):
    """The layers below feed the next one their whole Y; the top one gives only Y_h."""
    *below, top = recurrences(lowered(path))
    assert top.outputs[0] is None
    assert top.outputs[1] is not None
    assert all(n.outputs[0] is not None for n in below)


@pytest.mark.parametrize("path", KEPT, ids=[name(p) for p in KEPT])
def test_bidirectional_head_keeps_y(path):
    """The reverse direction's output at the last step is its first step, not its Y_h."""
    assert recurrences(lowered(path))[-1].outputs[0] is not None


def arena(path, seq):
    summary = {}
    generate(path, Options("c", name="m", max_dims={"seq": seq}), summary=summary)
    return summary["arena_bytes"]


ONE_LAYER = [p for p in REWRITTEN if "seq" in frontend.load(p).symbols() and len(recurrences(lowered(p))) == 1]


@pytest.mark.parametrize("path", ONE_LAYER, ids=[name(p) for p in ONE_LAYER])
def test_arena_does_not_grow_with_seq(path):
    """Past STEP_BLOCK steps (the block whose input projection a recurrence computes at once),
    nothing in the C arena depends on the sequence bound anymore."""
    assert arena(path, 1024) == arena(path, STEP_BLOCK)


def test_bench_lstm_arena(monkeypatch):
    """The bench LSTM(32, 64) + Linear: Y [seq, 64] floats were almost all of the arena."""
    path = os.path.join(BENCH, "lstm_i32_h64.onnx")
    after = {seq: arena(path, seq) for seq in (128, 1024)}
    monkeypatch.setattr(last_step_pass, "run", lambda graph: False)
    before = {seq: arena(path, seq) for seq in (128, 1024)}
    print("lstm_i32_h64 static arena, before → after: "
          + ", ".join(f"seq <= {s}: {before[s]:,} → {after[s]:,} bytes" for s in before))
    assert before[1024] - before[128] == 4 * 64 * (1024 - 128)  # Y: seq * hidden floats
    assert after[1024] == after[128] < before[128]


@pytest.mark.parametrize("path", MODELS, ids=[name(p) for p in MODELS])
def test_streaming_verdict_unchanged(path, monkeypatch):
    with_rewrite = stream_plan(path)
    monkeypatch.setattr(last_step_pass, "run", lambda graph: False)
    assert with_rewrite == stream_plan(path)


# -- hand-built graphs ---------------------------------------------------------------------------

I, H = 3, 5
BIG = np.iinfo(np.int64).max


def const(name, values):
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.array(values, np.int64)))


def lstm_model(tmp_path, nodes, outputs, seq="seq", direction="forward", lengths=False):
    """x [seq, batch, I] → LSTM (`direction`, hidden H, sequence_lens `lengths` when asked)
    "Y" [seq, D, batch, H], then `nodes`; `outputs` are (name, shape) pairs. Returns the path."""
    rng = np.random.default_rng(11)
    dirs = 2 if direction == "bidirectional" else 1
    weights = [numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32) * 0.5, n)
               for n, shape in (("W", (dirs, 4 * H, I)), ("R", (dirs, 4 * H, H)), ("B", (dirs, 8 * H)))]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [seq, "batch", I])]
    if lengths:
        inputs.append(helper.make_tensor_value_info("lengths", TensorProto.INT32, ["batch"]))
    lstm = helper.make_node("LSTM", ["x", "W", "R", "B", "lengths" if lengths else ""], ["Y"], hidden_size=H,
                            direction=direction)
    graph = helper.make_graph([lstm] + nodes, "hand", inputs,
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs], weights)
    path = os.path.join(tmp_path, "model.onnx")
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def last_step(y="Y"):
    """Squeeze of the direction axis, then Gather of step -1: [batch, H] "out"."""
    return [const("one", [1]), const("last", -1), helper.make_node("Squeeze", [y, "one"], ["ys"]),
            helper.make_node("Gather", ["ys", "last"], ["out"], axis=0)]


def check_hand(path, target, workdir, lengths=False):
    run = build(path, target, workdir, max_dims={s: BOUNDS[s] for s in frontend.load(path).symbols()})
    for seed, size in enumerate(({"seq": 6, "batch": 3}, {"seq": 1, "batch": 1})):
        x = inputs_for(path, size, seed)[0]
        inputs = [x] + ([np.arange(x.shape[1], dtype=np.int32) % x.shape[0] + 1] if lengths else [])
        assert_close(run(*inputs), ort_run(path, inputs), f"{target} at {size}")


def test_head_through_transpose_and_slice(target, tmp_path):
    """Two heads on one Y: Transpose → Reshape → Slice [-1:] along time, and a Transpose that
    moves the batch and hidden axes before Gather of step -1. Both read Y_h; Y is gone."""
    nodes = [helper.make_node("Transpose", ["Y"], ["yb"], perm=[2, 0, 1, 3]),  # [batch, seq, 1, H]
             const("shape", [0, 0, H]), helper.make_node("Reshape", ["yb", "shape"], ["ybr"]),
             const("start", [-1]), const("end", [BIG]), const("axis1", [1]),
             helper.make_node("Slice", ["ybr", "start", "end", "axis1"], ["sliced"]),  # [batch, 1, H]
             helper.make_node("Transpose", ["Y"], ["yt"], perm=[0, 3, 2, 1]),  # [seq, H, batch, 1]
             const("last", -1), helper.make_node("Gather", ["yt", "last"], ["picked"], axis=0)]
    path = lstm_model(tmp_path, nodes, [("sliced", ["batch", 1, H]), ("picked", [H, "batch", 1])])
    graph = lowered(path)
    recurrent, = recurrences(graph)
    assert recurrent.outputs[0] is None
    assert [n.attrs["perm"] for n in graph.nodes if n.op_type == "Transpose"] == [[2, 1, 0]]
    check_hand(path, target, tmp_path / target)


def test_head_on_static_steps_by_index(target, tmp_path):
    """Seven steps fixed in the model: Gather of index 6 (T - 1) is the last step too."""
    nodes = [const("one", [1]), const("six", 6), helper.make_node("Squeeze", ["Y", "one"], ["ys"]),
             helper.make_node("Gather", ["ys", "six"], ["out"], axis=0)]
    path = lstm_model(tmp_path, nodes, [("out", ["batch", H])], seq=7)
    assert recurrences(lowered(path))[0].outputs[0] is None
    check_hand(path, target, tmp_path / target)


def test_y_read_elsewhere_keeps_y(target, tmp_path):
    """Y also feeds an Abs returned as an output: Y stays, and the head reads it as before."""
    path = lstm_model(tmp_path, last_step() + [helper.make_node("Abs", ["Y"], ["abs_y"])],
                      [("out", ["batch", H]), ("abs_y", ["seq", 1, "batch", H])])
    assert recurrences(lowered(path))[0].outputs[0] is not None
    check_hand(path, target, tmp_path / target)


def test_other_step_keeps_y(target, tmp_path):
    """Gather of step 0 besides step -1: the first step is no state, Y stays."""
    nodes = last_step() + [const("first", 0), helper.make_node("Gather", ["ys", "first"], ["out0"], axis=0)]
    path = lstm_model(tmp_path, nodes, [("out", ["batch", H]), ("out0", ["batch", H])])
    assert recurrences(lowered(path))[0].outputs[0] is not None
    check_hand(path, target, tmp_path / target)


def test_reverse_direction_keeps_y(target, tmp_path):
    """A reverse LSTM's output at the last step is its first step's, not Y_h."""
    path = lstm_model(tmp_path, last_step(), [("out", ["batch", H])], direction="reverse")
    assert recurrences(lowered(path))[0].outputs[0] is not None
    check_hand(path, target, tmp_path / target)


def test_sequence_lens_keeps_y(target, tmp_path):
    """With sequence_lens a shorter entry's last step of Y is zeros, its Y_h its last state."""
    path = lstm_model(tmp_path, last_step(), [("out", ["batch", H])], lengths=True)
    assert recurrences(lowered(path))[0].outputs[0] is not None
    check_hand(path, target, tmp_path / target, lengths=True)
