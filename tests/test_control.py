"""If, and inputs pinned at compile time (--const).

An If whose condition the compiler can compute keeps only its taken branch; silero VAD's If on
its sample-rate input folds once `sr` is pinned. Each model runs in both targets and is
compared with onnxruntime, fed the pinned value; an If whose condition is known only at run
time, and every misuse of --const, is refused with one clear line.
"""
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto as TP
from onnx import helper, numpy_helper

from onnx2src import CompileError, Options, generate

from conftest import assert_close, build, ort_run, save

RNG = np.random.default_rng(7)


def branch(name, nodes, outputs, inits=()):
    return helper.make_graph(nodes, name, [], outputs, list(inits))


def if_model(nested=False):
    """Y = X + 1 (then, with a branch initializer) or X * W (else) on a bool input `cond`;
    `nested` puts a second If on `flip` inside the then branch."""
    one = numpy_helper.from_array(np.ones(3, np.float32), "one")
    w = numpy_helper.from_array(RNG.standard_normal(3).astype(np.float32), "W")
    add = helper.make_node("Add", ["X", "one"], ["then_out"], name="/then/add")
    then_nodes = [add]
    if nested:
        inner_then = branch("inner_then", [helper.make_node("Neg", ["X"], ["neg_out"], name="/neg")],
                            [helper.make_tensor_value_info("neg_out", TP.FLOAT, None)])
        inner_else = branch("inner_else", [helper.make_node("Identity", ["X"], ["same"], name="/same")],
                            [helper.make_tensor_value_info("same", TP.FLOAT, None)])
        then_nodes = [add, helper.make_node("If", ["flip"], ["inner_out"], name="/then/if",
                                            then_branch=inner_then, else_branch=inner_else),
                      helper.make_node("Add", ["then_out", "inner_out"], ["then_sum"], name="/then/sum")]
    then_g = branch("then", then_nodes, [helper.make_tensor_value_info(
        "then_sum" if nested else "then_out", TP.FLOAT, None)], [one])
    else_g = branch("else", [helper.make_node("Mul", ["X", "W"], ["else_out"], name="/else/mul")],
                    [helper.make_tensor_value_info("else_out", TP.FLOAT, None)])
    nodes = [helper.make_node("If", ["cond"], ["Y"], name="/if", then_branch=then_g, else_branch=else_g),
             helper.make_node("Tanh", ["Y"], ["Z"], name="/tanh")]
    inputs = [helper.make_tensor_value_info("X", TP.FLOAT, ["batch", 3]),
              helper.make_tensor_value_info("cond", TP.BOOL, [])]
    if nested:
        inputs.append(helper.make_tensor_value_info("flip", TP.BOOL, []))
    g = helper.make_graph(nodes, "g", inputs, [helper.make_tensor_value_info("Z", TP.FLOAT, ["batch", 3])], [w])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


@pytest.mark.parametrize("cond", [True, False])
def test_if_on_a_pinned_input_keeps_the_taken_branch(cond, target, tmp_path):
    path = save(if_model(), tmp_path)
    run = build(path, target, tmp_path / target, consts={"cond": "true" if cond else "false"})
    for batch in (1, 4):
        x = RNG.standard_normal((batch, 3)).astype(np.float32)
        assert_close(run(x), ort_run(path, [x, np.array(cond)]), f"cond={cond} batch={batch}")


@pytest.mark.parametrize("cond, flip", [(True, True), (True, False), (False, True)])
def test_nested_if(cond, flip, target, tmp_path):
    path = save(if_model(nested=True), tmp_path)
    consts = {"cond": str(cond).lower(), "flip": str(flip).lower()}
    run = build(path, target, tmp_path / target, consts=consts)
    x = RNG.standard_normal((2, 3)).astype(np.float32)
    assert_close(run(x), ort_run(path, [x, np.array(cond), np.array(flip)]))


def test_pinned_inputs_are_documented(tmp_path):
    path = save(if_model(), tmp_path)
    header = generate(path, Options("c", name="m", consts={"cond": "true"}))["m.h"]
    assert "int m_run(int64_t batch, const float *X, float *Z);" in header
    assert '"cond" = true' in header
    module = generate(path, Options("numpy", name="m", consts={"cond": "true"}))["m.py"]
    assert 'fixed  "cond" = true (onnx2src --const)' in module


def test_if_on_a_run_time_condition_runs_the_taken_branch(target, tmp_path):
    """Both branches are generated, each guarded by the condition; nested ones too."""
    path = save(if_model(nested=True), tmp_path)
    run = build(path, target, tmp_path / target)
    for cond in (True, False):
        for flip in (True, False):
            x = RNG.standard_normal((3, 3)).astype(np.float32)
            inputs = [x, np.array(cond), np.array(flip)]
            assert_close(run(*inputs), ort_run(path, inputs), f"cond={cond} flip={flip}")


def test_run_time_branches_are_guarded_in_the_code(tmp_path):
    path = save(if_model(), tmp_path)
    source = generate(path, Options("c", name="m"))["m.c"]
    assert "if (cond[0]) {" in source and "if (!cond[0]) {" in source
    module = generate(path, Options("numpy", name="m"))["m.py"]
    assert "    if cond:" in module and "    if not cond:" in module


def test_branches_of_different_shapes_are_refused_at_run_time_only(target, tmp_path):
    m = if_model()
    else_g = next(a.g for a in m.graph.node[0].attribute if a.name == "else_branch")
    else_g.node.append(helper.make_node("Concat", ["else_out", "else_out"], ["longer"], axis=1, name="/cat"))
    else_g.output[0].name = "longer"
    path = save(m, tmp_path)
    with pytest.raises(CompileError, match="one type and shape.*--const"):
        generate(path, Options(target))
    build(path, target, tmp_path / target, consts={"cond": "true"})  # one branch: fine


@pytest.mark.parametrize("consts, message", [
    ({"sr": "16000"}, "not an input of the model"),
    ({"X": "1"}, "symbolic dims"),
    ({"cond": "[true, false]"}, "2 values for an input of shape"),
    ({"cond": "yes"}, "not a JSON number or list"),
])
def test_bad_const_is_refused(consts, message, tmp_path):
    path = save(if_model(), tmp_path)
    with pytest.raises(CompileError, match=message):
        generate(path, Options("c", consts=consts))


def test_cli_const(tmp_path):
    path = save(if_model(), tmp_path)
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "onnx2src", path, "--target", "c", "-o", str(out),
                           "--const", "cond=false"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert '"cond" = false' in (out / "model.h").read_text()
    done = subprocess.run([sys.executable, "-m", "onnx2src", path, "--target", "c", "-o", str(out),
                           "--const", "cond"], capture_output=True, text=True)
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1, done.stderr


def test_verify_and_bench_take_const(tmp_path):
    """verify and bench build with the pinned value and feed it to onnxruntime themselves."""
    path = save(if_model(nested=True), tmp_path)
    for command in (["verify"], ["bench", "--seconds", "0.05", "--no-numpy"]):
        done = subprocess.run([sys.executable, "-m", "onnx2src", *command, path, "--dim", "batch=2",
                               "--const", "cond=true", "--const", "flip=false"],
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
    assert "PASS" in subprocess.run([sys.executable, "-m", "onnx2src", "verify", path, "--const", "cond=false",
                                     "--const", "flip=true"], capture_output=True, text=True).stdout


def test_constant_if_inside_a_run_time_branch_keeps_its_guard(target, tmp_path):
    """The inner If folds (flip pinned) but its branch still runs only when cond holds."""
    path = save(if_model(nested=True), tmp_path)
    run = build(path, target, tmp_path / target, consts={"flip": "false"})
    for cond in (True, False):
        x = RNG.standard_normal((2, 3)).astype(np.float32)
        assert_close(run(x, np.array(cond)), ort_run(path, [x, np.array(cond), np.array(False)]))


def test_fix_dim(target, tmp_path):
    """--fix-dim makes a symbolic dim a constant: it leaves the C interface."""
    path = save(if_model(), tmp_path)
    run = build(path, target, tmp_path / target, consts={"cond": "true"}, fixed_dims={"batch": 2})
    x = RNG.standard_normal((2, 3)).astype(np.float32)
    assert_close(run(x), ort_run(path, [x, np.array(True)]))
    header = generate(path, Options("c", name="m", fixed_dims={"batch": 2}, consts={"cond": "true"}))["m.h"]
    assert "int m_run(const float *X, float *Z);" in header
    with pytest.raises(CompileError, match="--fix-dim names 'time'"):
        generate(path, Options(target, fixed_dims={"time": 2}))
