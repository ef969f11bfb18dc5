"""The Transposes around a batch-first recurrence fold into its layout (passes/fold_layout.py,
fold_layout): every PyTorch export still matches onnxruntime in both targets, the batch-first
LSTM / GRU exports of both exporters keep no Transpose around their recurrences (which run in
layout 1), and hand-built graphs whose moved values have readers needing the old layout stay
correct, or stay as they were where the rewrite would copy more."""
import glob
import json
import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from conftest import assert_close, build, lowered, ort_run
from onnx2src import Options, frontend, generate, passes

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "exports")
EXPORTS = sorted(glob.glob(os.path.join(HERE, "*.onnx")) + glob.glob(os.path.join(HERE, "stream", "*.onnx")))
MANIFEST = {e["file"]: e for e in json.load(open(os.path.join(HERE, "manifest.json")))}
BOUNDS = {"batch": 8, "seq": 16}
SIZES = ({"batch": 2, "seq": 5}, {"batch": 1, "seq": 1})


def transposes(graph):
    return [n for n in graph.nodes if n.op_type == "Transpose"]


def layouts(graph):
    return [n.attrs["layout"] for n in graph.nodes if n.op_type == "Recurrent"]


def inputs_for(path, sizes, seed):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal([d if isinstance(d, int) else sizes[str(d)] for d in v.shape]).astype(np.float32)
            for v in frontend.load(path).inputs]


def check_matches(path, target, workdir, sizes=SIZES):
    run = build(path, target, workdir, max_dims={s: BOUNDS[s] for s in frontend.load(path).symbols()})
    for seed, size in enumerate(sizes):
        inputs = inputs_for(path, size, seed)
        assert_close(run(*inputs), ort_run(path, inputs), f"{os.path.basename(path)} at {size}")


@pytest.mark.parametrize("path", EXPORTS, ids=[os.path.relpath(p, HERE) for p in EXPORTS])
def test_export_matches_onnxruntime(path, target, tmp_path):
    check_matches(path, target, tmp_path)


# batch-first LSTM / GRU exports whose rewrite needs no copy of a state: bidirectional ones that
# take or return a state keep the Transposes of [2, batch, hidden] (the next test)
FOLDED = sorted(f for f, e in MANIFEST.items()
                if e["batch_first"] and e["module"] in ("LSTM", "GRU")
                and not (e["bidirectional"] and (e["initial_state"] or e["returns_state"])))


def test_folded_covers_both_exporters():
    assert {MANIFEST[f]["exporter"] for f in FOLDED} == {"torchscript", "dynamo"}
    assert {MANIFEST[f]["module"] for f in FOLDED} == {"LSTM", "GRU"}


@pytest.mark.parametrize("name", FOLDED)
def test_batch_first_export_keeps_no_transpose(name):
    graph = lowered(os.path.join(HERE, name))
    assert layouts(graph) == [1] * MANIFEST[name]["layers"]
    assert transposes(graph) == []


@pytest.mark.parametrize("name", ["gru_l1_bi_bf_h0_every_ts.onnx", "gru_l1_bi_bf_h0_last_state_dy.onnx",
                                  "rnn_tanh_l1_bi_bf_noh0_none_state_ts.onnx"])
def test_bidirectional_state_keeps_only_state_transposes(name):
    """X and Y move no more; the state [2, batch, hidden] is transposed to [batch, 2, hidden]
    for the recurrence (h0) and back for the caller (Y_h): no Transpose copies a time axis."""
    graph = lowered(os.path.join(HERE, name))
    assert layouts(graph) == [1]
    assert transposes(graph)
    hidden = MANIFEST[name]["hidden_size"]
    for node in transposes(graph):
        assert sorted(map(str, node.output(0).shape)) == sorted(["2", "batch", str(hidden)])


def test_rewrite_that_copies_more_at_one_step_is_left_alone():
    """Two bidirectional layers with h0 / c0 in and h_n / c_n out: eight state Transposes of
    [2, batch, hidden] would replace four over the sequence, more copies when seq is 1."""
    graph = lowered(os.path.join(HERE, "lstm_l2_bi_bf_h0_last_state_ts.onnx"))
    assert layouts(graph) == [0, 0]
    assert len(transposes(graph)) == 4


def test_c_source_has_no_transpose():
    files = generate(os.path.join(HERE, "lstm_l1_uni_bf_noh0_last_ts.onnx"), Options("c", name="m", max_dims=BOUNDS))
    assert "/* Transpose" not in files["m.c"]


# -- hand-built graphs -----------------------------------------------------------------------------

I, H = 3, 5


def lstm_model(nodes, outputs, hidden=H):
    """x [batch, seq, I] → Transpose → LSTM (forward, `hidden`) "Y" [seq, 1, batch, hidden],
    then `nodes`; `outputs` are (name, shape) pairs."""
    rng = np.random.default_rng(7)
    weights = [numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32) * 0.5, name)
               for name, shape in (("W", (1, 4 * hidden, I)), ("R", (1, 4 * hidden, hidden)),
                                   ("B", (1, 8 * hidden)))]
    graph = helper.make_graph(
        [helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 0, 2]),
         helper.make_node("LSTM", ["xt", "W", "R", "B"], ["Y"], hidden_size=hidden)] + nodes,
        "hand", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq", I])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs], weights)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def axes(name, values):
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.array(values, np.int64)))


def test_y_read_in_layout_0_too(target, tmp_path):
    """Y feeds the usual Squeeze → Transpose and also a graph output and an Abs in layout 0:
    one Transpose restores Y, the one on X and the one after the Squeeze are gone."""
    model = lstm_model([axes("one", [1]), helper.make_node("Squeeze", ["Y", "one"], ["ys"]),
                        helper.make_node("Transpose", ["ys"], ["out"], perm=[1, 0, 2]),
                        helper.make_node("Abs", ["Y"], ["abs_y"])],
                       [("out", ["batch", "seq", H]), ("Y", ["seq", 1, "batch", H]),
                        ("abs_y", ["seq", 1, "batch", H])])
    path = os.path.join(tmp_path, "model.onnx")
    onnx.save(model, path)
    graph = lowered(path)
    assert layouts(graph) == [1]
    assert [n.attrs["perm"] for n in transposes(graph)] == [[1, 2, 0, 3]]
    check_matches(path, target, tmp_path / target)


def test_transposed_x_read_elsewhere(target, tmp_path):
    """The Transposed X also feeds a graph output: it stays for that reader alone, while the
    LSTM reads x itself."""
    model = lstm_model([axes("one", [1]), helper.make_node("Squeeze", ["Y", "one"], ["ys"]),
                        helper.make_node("Transpose", ["ys"], ["out"], perm=[1, 0, 2]),
                        helper.make_node("Neg", ["xt"], ["neg_xt"])],
                       [("out", ["batch", "seq", H]), ("xt", ["seq", "batch", I]),
                        ("neg_xt", ["seq", "batch", I])])
    path = os.path.join(tmp_path, "model.onnx")
    onnx.save(model, path)
    graph = lowered(path)
    assert layouts(graph) == [1]
    recurrent, = [n for n in graph.nodes if n.op_type == "Recurrent"]
    assert recurrent.input(0).name == "x"
    assert len(transposes(graph)) == 1
    check_matches(path, target, tmp_path / target)


def test_rewrite_copying_more_is_left_alone(target, tmp_path):
    """Y itself is the output, in layout 0, and wider than X (hidden 5 > input 3): restoring Y
    would copy more than the Transpose on X does, so the graph stays as it was."""
    model = lstm_model([], [("Y", ["seq", 1, "batch", H])])
    path = os.path.join(tmp_path, "model.onnx")
    onnx.save(model, path)
    graph = lowered(path)
    assert layouts(graph) == [0]
    assert len(transposes(graph)) == 1
    check_matches(path, target, tmp_path / target)
