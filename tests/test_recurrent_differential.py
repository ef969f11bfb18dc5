"""Differential tests: hypothesis draws RNN/LSTM/GRU configurations (direction, layout, sizes,
activations with alpha/beta, clip, sequence lengths, initial states, peepholes, input_forget,
linear_before_reset, omitted outputs) and checks both targets against onnxruntime.

onnxruntime refuses layout=1, so for those the reference is the equivalent layout-0 model
wrapped in Transposes; the model under test is the layout-1 one.
"""
import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper

from conftest import assert_close, build, ort_run, save

ACTIVATIONS = ["Relu", "Tanh", "Sigmoid", "Affine", "LeakyRelu", "ThresholdedRelu", "ScaledTanh",
               "HardSigmoid", "Elu", "Softsign", "Softplus"]
PER_DIRECTION = {"RNN": 1, "GRU": 2, "LSTM": 3}
GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}


@st.composite
def configs(draw):
    op = draw(st.sampled_from(["RNN", "GRU", "LSTM"]))
    direction = draw(st.sampled_from(["forward", "reverse", "bidirectional"]))
    dirs = 2 if direction == "bidirectional" else 1
    c = dict(op=op, direction=direction, dirs=dirs, layout=draw(st.sampled_from([0, 1])),
             seq=draw(st.integers(1, 4)), batch=draw(st.integers(1, 3)),
             input=draw(st.integers(1, 4)), hidden=draw(st.integers(1, 5)),
             seed=draw(st.integers(0, 2**16)))
    attrs = {"direction": direction, "hidden_size": c["hidden"]}
    if draw(st.booleans()):
        names = draw(st.lists(st.sampled_from(ACTIVATIONS), min_size=PER_DIRECTION[op] * dirs,
                              max_size=PER_DIRECTION[op] * dirs))
        attrs["activations"] = names
        if draw(st.booleans()):
            attrs["activation_alpha"] = draw(st.lists(st.floats(0.125, 2.0, width=32), min_size=1, max_size=6))
        if draw(st.booleans()):
            attrs["activation_beta"] = draw(st.lists(st.floats(0.125, 2.0, width=32), min_size=1, max_size=6))
    if draw(st.booleans()):
        attrs["clip"] = draw(st.floats(0.25, 3.0, width=32))
    if op == "LSTM" and draw(st.booleans()):
        attrs["input_forget"] = 1
    if op == "GRU":
        attrs["linear_before_reset"] = draw(st.sampled_from([0, 1]))
    c["attrs"] = attrs
    c["bias"] = draw(st.booleans())
    c["lens"] = draw(st.booleans())
    c["initial_h"] = draw(st.booleans())
    c["initial_c"] = op == "LSTM" and draw(st.booleans())
    c["peephole"] = op == "LSTM" and draw(st.booleans())
    n_out = 3 if op == "LSTM" else 2
    c["outputs"] = draw(st.lists(st.booleans(), min_size=n_out, max_size=n_out).filter(any))
    return c


def make_models(c):
    """(model under test, reference model for onnxruntime, input arrays)."""
    rng = np.random.default_rng(c["seed"])
    T, B, I, H, D, G = c["seq"], c["batch"], c["input"], c["hidden"], c["dirs"], GATES[c["op"]]
    f32 = lambda *shape: rng.standard_normal(shape).astype(np.float32)
    x_shape, state_shape = ([B, T, I], [B, D, H]) if c["layout"] else ([T, B, I], [D, B, H])
    inputs = {"X": f32(*x_shape)}
    inits = [helper.make_tensor("W", TensorProto.FLOAT, [D, G * H, I], f32(D, G * H, I).ravel()),
             helper.make_tensor("R", TensorProto.FLOAT, [D, G * H, H], f32(D, G * H, H).ravel())]
    names = ["X", "W", "R", "", "", "", "", ""]
    if c["bias"]:
        inits.append(helper.make_tensor("B", TensorProto.FLOAT, [D, 2 * G * H], f32(D, 2 * G * H).ravel()))
        names[3] = "B"
    if c["lens"]:
        inputs["sequence_lens"] = rng.integers(1, T + 1, size=B).astype(np.int32)
        names[4] = "sequence_lens"
    if c["initial_h"]:
        inputs["initial_h"] = f32(*state_shape)
        names[5] = "initial_h"
    if c["initial_c"]:
        inputs["initial_c"] = f32(*state_shape)
        names[6] = "initial_c"
    if c["peephole"]:
        inits.append(helper.make_tensor("P", TensorProto.FLOAT, [D, 3 * H], f32(D, 3 * H).ravel()))
        names[7] = "P"
    while names[-1] == "":
        names.pop()
    out_names = [n if keep else "" for n, keep in zip(["Y", "Y_h", "Y_c"], c["outputs"])]
    y_shape = [B, T, D, H] if c["layout"] else [T, D, B, H]
    shapes = {"Y": y_shape, "Y_h": state_shape, "Y_c": state_shape}
    graph_outputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, shapes[n]) for n in out_names if n]
    graph_inputs = [helper.make_tensor_value_info(k, TensorProto.INT32 if k == "sequence_lens" else TensorProto.FLOAT,
                                                  list(v.shape)) for k, v in inputs.items()]

    def model(nodes):
        g = helper.make_graph(nodes, "rnn", graph_inputs, graph_outputs, inits)
        return helper.make_model(g, opset_imports=[helper.make_opsetid("", 14)])

    under_test = model([helper.make_node(c["op"], names, out_names, **c["attrs"], layout=c["layout"])])
    if not c["layout"]:
        return under_test, under_test, list(inputs.values())
    # the layout-0 equivalent: transpose inputs in, outputs out
    pre, ref_names = [], list(names)
    for i, (n, perm) in enumerate([("X", [1, 0, 2]), ("initial_h", [1, 0, 2]), ("initial_c", [1, 0, 2])]):
        if n in names:
            pre.append(helper.make_node("Transpose", [n], [n + "_l0"], perm=perm))
            ref_names[names.index(n)] = n + "_l0"
    post, core_out = [], []
    for n, perm in zip(["Y", "Y_h", "Y_c"], [[2, 0, 1, 3], [1, 0, 2], [1, 0, 2]]):
        if n in out_names:
            post.append(helper.make_node("Transpose", [n + "_l0"], [n], perm=perm))
            core_out.append(n + "_l0")
        else:
            core_out.append("")
    while core_out and core_out[-1] == "":
        core_out.pop()
    core = helper.make_node(c["op"], ref_names, core_out, **c["attrs"])
    return under_test, model(pre + [core] + post), list(inputs.values())


@pytest.mark.parametrize("tgt", ["numpy", "c"])
@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(c=configs())
@example(c={  # h's activation is an affine sum: the NumPy code once multiplied without parentheses
    "op": "LSTM", "direction": "forward", "dirs": 1, "layout": 0, "seq": 1, "batch": 1, "input": 1,
    "hidden": 1, "seed": 0, "attrs": {"direction": "forward", "hidden_size": 1,
                                      "activations": ["Relu", "Relu", "Affine"], "activation_beta": [1.0]},
    "bias": False, "lens": False, "initial_h": False, "initial_c": False, "peephole": False,
    "outputs": [False, True, False]})
def test_recurrent_matches_onnxruntime(tgt, c, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("rnn")
    model, reference, inputs = make_models(c)
    onnx.checker.check_model(model)
    expected = ort_run(save(reference, workdir, "reference"), inputs)
    run = build(save(model, workdir), tgt, workdir / tgt)
    assert_close(run(*inputs), expected, str(c))


@pytest.mark.parametrize("tgt", ["numpy", "c"])
@pytest.mark.parametrize("op,direction,layout", [
    ("RNN", "reverse", 1), ("GRU", "bidirectional", 0), ("LSTM", "forward", 1), ("LSTM", "bidirectional", 0)])
def test_long_sequences_cross_step_blocks(tgt, op, direction, layout, tmp_path):
    """70 steps: the C code projects the inputs 32 steps at a time (ops.recurrent.STEP_BLOCK), so
    blocks of 32, 32 and 6 steps, run forward and backward, with lengths ending inside each."""
    c = dict(op=op, direction=direction, dirs=2 if direction == "bidirectional" else 1, layout=layout,
             seq=70, batch=3, input=5, hidden=7, seed=7, attrs={"direction": direction, "hidden_size": 7},
             bias=True, lens=True, initial_h=True, initial_c=op == "LSTM", peephole=False,
             outputs=[True] * (3 if op == "LSTM" else 2))
    model, reference, inputs = make_models(c)
    expected = ort_run(save(reference, tmp_path, "reference"), inputs)
    run = build(save(model, tmp_path), tgt, tmp_path / tgt)
    assert_close(run(*inputs), expected, str(c))
