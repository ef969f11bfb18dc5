"""Trilu (ops/trilu.py), in both targets.

The ONNX backend node cases, compared with the outputs they carry; hand-made models compared with
onnxruntime: a [batch][seq][seq] input with a symbolic `seq` (upper k=1, lower k=-1, and k taken
from a folded shape), a causal mask made from Shape → ConstantOfShape / Expand → Trilu → Where,
each at two sizes; every element type; a constant input folds away; a run-time k is refused;
streaming goes through a Trilu whose matrices leave the time axis alone, and stops at one over it.
"""
import json

import numpy as np
import pytest
from onnx import TensorProto as T, helper, numpy_helper

from onnx2src.harness import CStream
from onnx2src.ir import CompileError

from conftest import (assert_close, build, case_data, check_node_case, chunked, lowered, ort_run, save,
                      single_op_cases, stream_plan)
from test_streaming_analysis import Net, analyze, assert_streams

RNG = np.random.default_rng(14)
CASES = single_op_cases({"Trilu"})


def test_node_case_count():
    assert len(CASES) == 18  # tril and triu: 9 each


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_node_case(case, target, tmp_path):
    """A case whose k is a graph input is refused as it is, and run with k pinned (--const)."""
    node = case.model.graph.node[0]
    if len(node.input) < 2:
        check_node_case(case, target, tmp_path)
        return
    error = check_node_case(case, target, tmp_path, refused=True)
    assert "k given at run time" in str(error)
    path = save(case.model, tmp_path)
    for inputs, expected in case_data(case):
        x, k = inputs
        run = build(path, target, tmp_path / f"{target}_{int(k)}", consts={node.input[1]: json.dumps(int(k))})
        assert_close(run(x), expected, case.name)


# -- hand-made models -----------------------------------------------------------------------------

def model(nodes, inputs, outputs, inits=()):
    """An opset-17 model; inputs/outputs are (name, elem type, shape or None)."""
    vi = helper.make_tensor_value_info
    g = helper.make_graph(nodes, "g", [vi(*i) for i in inputs], [vi(*o) for o in outputs], list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


def const(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def check(m, target, tmp_path, feeds):
    path = save(m, tmp_path)
    run = build(path, target, tmp_path / target)
    for inputs in feeds:
        assert_close(run(*inputs), [np.asarray(e) for e in ort_run(path, inputs)], str(inputs[0].shape))
    return path


def rand(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def test_symbolic_seq(target, tmp_path):
    """x[batch][seq][seq]: the upper triangle above the diagonal, the lower one below it."""
    m = model([helper.make_node("Trilu", ["x", "one"], ["up"], name="up"),
               helper.make_node("Trilu", ["x", "minus_one"], ["low"], upper=0, name="low")],
              [("x", T.FLOAT, ["batch", "seq", "seq"])],
              [("up", T.FLOAT, ["batch", "seq", "seq"]), ("low", T.FLOAT, ["batch", "seq", "seq"])],
              [const("one", np.array(1, np.int64)), const("minus_one", np.array(-1, np.int64))])
    check(m, target, tmp_path, [[rand(2, 5, 5)], [rand(1, 9, 9)]])


def test_rectangular_symbolic_and_k_from_shape(target, tmp_path):
    """x[rows][cols], both symbolic, k = the number of rows (a folded Shape → Gather), and a
    default k on a matrix with a batch of two axes."""
    m = model([helper.make_node("Shape", ["x"], ["s"]),
               helper.make_node("Gather", ["s", "zero"], ["rows"], axis=0),
               helper.make_node("Neg", ["rows"], ["k"]),
               helper.make_node("Trilu", ["x", "k"], ["y"], name="by_rows"),
               helper.make_node("Trilu", ["z"], ["w"], upper=0, name="batched")],
              [("x", T.FLOAT, ["rows", "cols"]), ("z", T.FLOAT, [2, "n", 3, "m"])],
              [("y", T.FLOAT, None), ("w", T.FLOAT, None)],
              [const("zero", np.array(0, np.int64))])
    check(m, target, tmp_path, [[rand(3, 7), rand(2, 1, 3, 4)], [rand(6, 2), rand(2, 3, 3, 2)]])


def test_extreme_k_symbolic(target, tmp_path):
    """k at the ends of int64 on symbolic matrices: all kept, or nothing."""
    m = model([helper.make_node("Trilu", ["x", "big"], ["none_up"], name="none_up"),
               helper.make_node("Trilu", ["x", "small"], ["none_low"], upper=0, name="none_low"),
               helper.make_node("Trilu", ["x", "small"], ["all_up"], name="all_up")],
              [("x", T.FLOAT, ["batch", "seq", "seq"])],
              [("none_up", T.FLOAT, None), ("none_low", T.FLOAT, None), ("all_up", T.FLOAT, None)],
              [const("big", np.array(2**63 - 1, np.int64)), const("small", np.array(-2**63, np.int64))])
    check(m, target, tmp_path, [[rand(2, 3, 3)], [rand(1, 6, 6)]])


@pytest.mark.parametrize("source", ["ConstantOfShape", "Expand"])
def test_causal_mask(source, target, tmp_path):
    """What `scaled_dot_product_attention(is_causal=True)` exports: a [seq][seq] matrix of ones,
    its strict upper triangle, as a mask over the scores."""
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Slice", ["s", "starts", "ends"], ["ss"])]  # [seq, seq]
    if source == "ConstantOfShape":
        nodes.append(helper.make_node("ConstantOfShape", ["ss"], ["ones"],
                                      value=helper.make_tensor("v", T.BOOL, [1], [True])))
        nodes.append(helper.make_node("Trilu", ["ones", "one"], ["mask"], name="causal"))
    else:
        nodes.append(helper.make_node("Expand", ["onef", "ss"], ["ones"]))
        nodes.append(helper.make_node("Trilu", ["ones", "one"], ["tri"], name="causal"))
        nodes.append(helper.make_node("Cast", ["tri"], ["mask"], to=T.BOOL))
    nodes.append(helper.make_node("Where", ["mask", "neg", "x"], ["y"]))
    m = model(nodes, [("x", T.FLOAT, ["batch", "seq", "seq"])], [("y", T.FLOAT, ["batch", "seq", "seq"])],
              [const("starts", np.array([1], np.int64)), const("ends", np.array([3], np.int64)),
               const("one", np.array(1, np.int64)), const("onef", np.array(1, np.float32)),
               const("neg", np.array(-1e9, np.float32))])
    check(m, target, tmp_path, [[rand(2, 4, 4)], [rand(3, 7, 7)]])


@pytest.mark.parametrize("elem", [T.FLOAT, T.DOUBLE, T.INT8, T.UINT8, T.INT32, T.INT64, T.BOOL])
@pytest.mark.parametrize("upper,k", [(1, 0), (0, 2), (1, -5), (0, 9), (1, 2**63 - 1), (0, -2**63)])
def test_types(elem, upper, k, target, tmp_path):
    def of(elem):
        return model([helper.make_node("Trilu", ["x", "k"], ["y"], upper=upper)], [("x", elem, [2, 4, 6])],
                     [("y", elem, [2, 4, 6])], [const("k", np.array(k, np.int64))])
    dtype = helper.tensor_dtype_to_np_dtype(elem)
    x = RNG.integers(0, 9, (2, 4, 6)).astype(dtype)
    run = build(save(of(elem), tmp_path), target, tmp_path / target)
    if elem in (T.INT8, T.UINT8):  # onnxruntime has no Trilu kernel for them: its int64 one
        expected = [ort_run(save(of(T.INT64), tmp_path, "wide"), [x.astype(np.int64)])[0].astype(dtype)]
    else:
        expected = ort_run(save(of(elem), tmp_path, "ort"), [x])
    assert_close(run(x), expected)


def test_constant_input_folds(target, tmp_path):
    """Trilu of an initializer is computed at compile time: no Trilu is left to run."""
    mask = np.ones((5, 5), np.float32)
    m = model([helper.make_node("Trilu", ["ones", "one"], ["mask"], name="causal"),
               helper.make_node("Add", ["x", "mask"], ["y"])],
              [("x", T.FLOAT, ["batch", 5, 5])], [("y", T.FLOAT, ["batch", 5, 5])],
              [const("ones", mask), const("one", np.array(1, np.int64))])
    path = check(m, target, tmp_path, [[rand(2, 5, 5)], [rand(1, 5, 5)]])
    assert not any(n.op_type == "Trilu" for n in lowered(path).nodes)


def test_run_time_k_refused(target, tmp_path):
    m = model([helper.make_node("Trilu", ["x", "k"], ["y"], name="runtime_k")],
              [("x", T.FLOAT, [4, 4]), ("k", T.INT64, [])], [("y", T.FLOAT, [4, 4])])
    with pytest.raises(CompileError) as error:
        build(save(m, tmp_path), target, tmp_path / target)
    assert "runtime_k" in str(error.value) and "k given at run time" in str(error.value)


# -- streaming ------------------------------------------------------------------------------------

def _after_lstm(perm):
    """x [T, B, 3] → LSTM → Y [T, 1, B, 4], transposed by `perm` → Trilu (k=1)."""
    net = Net()
    y = net.op("Transpose", net.rnn("LSTM", "x")[0], perm=perm)
    return net.output(net.op("Trilu", y, net.const(1, np.int64)))


def test_streams_when_time_is_a_batch_axis(target, tmp_path):
    """The verdict, proved in onnxruntime (assert_streams), then the generated step function:
    chunks of 1 and of 4, 2, 3 steps joined give onnxruntime's whole run."""
    model = _after_lstm([0, 1, 2, 3]).model()
    path = save(model, tmp_path)
    stream = analyze(path).stream
    assert (stream.time, stream.reason, list(stream.outputs.values())) == ("T", None, [0])
    if target == "numpy":
        assert_streams(model, path, tmp_path)
    x = RNG.standard_normal((9, 2, 3)).astype(np.float32)
    expected = ort_run(path, [x])
    run = build(path, target, tmp_path / target, max_dims={"T": 16, "B": 16})
    plan, names = stream_plan(path), {"in": ["x"], "out": [model.graph.output[0].name]}
    for sizes in ([1] * 9, [4, 2, 3]):
        step = CStream(run, 2).step if target == "c" else run.module.Stream().step
        assert_close(chunked(step, plan, names, [x], sizes), expected, f"chunks {sizes}")


def test_stream_stops_at_a_triangle_over_time(tmp_path):
    stream = analyze(save(_after_lstm([1, 2, 0, 3]).model(), tmp_path)).stream
    assert stream.time is None
    assert "keeps a triangle of matrices along the time axis" in stream.reason
