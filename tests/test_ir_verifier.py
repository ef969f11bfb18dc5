"""The IR verifier (onnx2src/ir_verifier.py) and the frontend's attribute type checks.

The verifier accepts every bundled model after the frontend and after every pass, and rejects
hand-broken graphs with a message naming the pass and the node. The CLI runs it with
--check-ir (a failure is a compiler bug: exit 3). A model whose attribute has the wrong type is
the model's fault: a CompileError, exit 2, one line, no files.
"""
import glob
import os
import subprocess
import sys
import types

import numpy as np
import onnx
import pytest
from onnx import TensorProto as TP
from onnx import helper, numpy_helper

from onnx2src import Options, cli, frontend, ir_verifier, passes
from onnx2src.dims import Dim
from onnx2src.ir import FLOAT, CompileError, InternalError, Value

ROOT = os.path.join(os.path.dirname(__file__), "..")
MODELS = sorted(glob.glob(os.path.join(ROOT, "samples", "*.onnx")) +
                glob.glob(os.path.join(ROOT, "samples", "bench", "*.onnx")) +
                glob.glob(os.path.join(ROOT, "tests", "exports", "*.onnx")))


def stage(p) -> str:
    return p.__name__.rsplit(".", 1)[-1]


def load(path_or_model):
    g = frontend.load(path_or_model) if isinstance(path_or_model, str) else frontend.from_model(path_or_model)
    g.options = Options("c", max_dims={s: 16 for s in g.symbols()})
    return g


C_PIPELINE = passes.PIPELINE + passes.TARGET_PASSES["c"]


def run_until(g, last: str):
    """Run the pipeline up to and including the first pass called `last`."""
    for p in C_PIPELINE:
        p.run(g)
        if stage(p) == last:
            return g
    raise AssertionError(f"no pass {last}")


def small_model(**gemm_attrs):
    """X[batch, 4] → Relu → r → Gemm(W, B) → y → Tanh → Y[batch, 3]."""
    rng = np.random.default_rng(0)
    nodes = [helper.make_node("Relu", ["X"], ["r"], name="relu"),
             helper.make_node("Gemm", ["r", "W", "B"], ["y"], name="fc", transB=1, **gemm_attrs),
             helper.make_node("Tanh", ["y"], ["Y"], name="tanh")]
    inits = [numpy_helper.from_array(rng.standard_normal((3, 4)).astype(np.float32), "W"),
             numpy_helper.from_array(rng.standard_normal(3).astype(np.float32), "B")]
    graph = helper.make_graph(nodes, "small", [helper.make_tensor_value_info("X", TP.FLOAT, ["batch", 4])],
                              [helper.make_tensor_value_info("Y", TP.FLOAT, ["batch", 3])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def node_named(g, name, op_type=None):
    return next(n for n in g.nodes if n.name == name and (op_type is None or n.op_type == op_type))


def assert_rejected(g, after, *fragments):
    with pytest.raises(InternalError) as info:
        ir_verifier.check(g, after)
    text = str(info.value)
    assert text.startswith(f"IR check after {after}: "), text
    for fragment in fragments:
        assert fragment in text, text
    return text


# -- every bundled model, after every stage --------------------------------------------------------

@pytest.mark.parametrize("path", MODELS, ids=lambda p: os.path.relpath(p, ROOT))
def test_verifier_accepts_every_model_after_every_pass(path):
    g = load(path)
    ir_verifier.check(g, "frontend")
    for p in C_PIPELINE:
        p.run(g)
        ir_verifier.check(g, stage(p))
    assert g.nodes and all(n.domain == "onnx2src" for n in g.nodes)


def test_models_were_found():
    assert len(MODELS) >= 40, MODELS


def test_run_all_checks_after_the_frontend_and_each_pass(monkeypatch):
    seen = []
    monkeypatch.setattr(ir_verifier, "check", lambda g, after: seen.append(after))
    monkeypatch.delenv("ONNX2SRC_CHECK_IR", raising=False)
    passes.run_all(load(small_model()))
    assert seen == []
    passes.run_all(load(small_model()), Options("c", check_ir=True))
    assert seen == ["frontend"] + [stage(p) for p in C_PIPELINE]
    seen.clear()
    monkeypatch.setenv("ONNX2SRC_CHECK_IR", "1")
    passes.run_all(load(small_model()), Options("numpy"))
    assert seen == ["frontend"] + [stage(p) for p in passes.PIPELINE]


def test_untyped_outputs_are_fine_before_shape_inference():
    g = load(small_model())
    assert node_named(g, "relu").outputs[0].dtype is None
    ir_verifier.check(g, "frontend")
    assert_rejected(g, "fold_constants", 'node "relu" (Relu): output "r" has no dtype')


# -- hand-broken graphs ------------------------------------------------------------------------------

def test_missing_dtype():
    g = run_until(load(small_model()), "infer_shapes")
    node_named(g, "fc").outputs[0].dtype = None
    assert_rejected(g, "infer_shapes", 'node "fc" (Gemm): output "y" has no dtype')


def test_missing_shape_of_an_input():
    g = run_until(load(small_model()), "infer_shapes")
    g.inputs[0].shape = None
    assert_rejected(g, "infer_shapes", 'graph input "X" has no shape')


@pytest.mark.parametrize("dim,shown", [(-1, "dim -1 (int)"), (np.int64(3), "dim 3 (int64)"),
                                       (2.0, "dim 2.0 (float)"), (True, "dim True (bool)")])
def test_bad_dim(dim, shown):
    g = run_until(load(small_model()), "lower")
    y = node_named(g, "fc").outputs[0]
    y.shape = (y.shape[0], dim)
    assert_rejected(g, "lower", 'node "fc" (Gemm): output "y" has ' + shown, "int >= 0 or a dims.Dim")


def test_a_symbolic_dim_is_fine():
    g = run_until(load(small_model()), "lower")
    assert isinstance(node_named(g, "fc").outputs[0].shape[0], Dim)
    ir_verifier.check(g, "lower")


def test_constant_data_must_match_its_shape_and_dtype():
    g = run_until(load(small_model()), "infer_shapes")
    w = node_named(g, "fc").inputs[1]
    w.data = w.data.astype(np.float64)
    assert_rejected(g, "infer_shapes", 'input "W" holds float64 data but has dtype float')
    w.data = w.data.astype(np.float32).reshape(-1)
    assert_rejected(g, "infer_shapes", 'input "W" holds data of shape (12,) but has shape (3, 4)')


def test_reading_a_value_no_node_produces():
    g = run_until(load(small_model()), "infer_shapes")
    tanh = node_named(g, "tanh")
    tanh.inputs[0] = Value("ghost", FLOAT, tanh.inputs[0].shape)
    assert_rejected(g, "infer_shapes", 'node "tanh" (Tanh): reads "ghost", which is no graph input, '
                                       "no constant and produced by no node")


def test_nodes_out_of_order():
    g = run_until(load(small_model()), "lower")
    g.nodes.reverse()  # tanh first: it reads y before fc writes it
    assert_rejected(g, "lower", 'reads "y" before node "fc" produces it', "not in topological order")


def test_a_value_produced_twice():
    g = run_until(load(small_model()), "infer_shapes")
    relu, fc = node_named(g, "relu"), node_named(g, "fc")
    fc.outputs[0] = relu.outputs[0]
    assert_rejected(g, "infer_shapes", 'node "relu" (Relu): value "r" is produced by two nodes: '
                                       'this one and "fc" (Gemm)')


def test_a_node_writing_a_graph_input():
    g = run_until(load(small_model()), "infer_shapes")
    node_named(g, "relu").outputs[0] = g.inputs[0]
    assert_rejected(g, "infer_shapes", 'node "relu" (Relu): writes graph input "X"')


def test_a_graph_output_nothing_produces():
    g = run_until(load(small_model()), "plan_memory")
    g.outputs.append(Value("nowhere", FLOAT, (2,)))
    text = assert_rejected(g, "plan_memory", 'graph output "nowhere" is produced by no node')
    assert "node \"" not in text  # it is the graph's fault, not a node's
    g.outputs[-1] = g.inputs[0]   # an input listed as an output is fine (lower copies it)
    ir_verifier.check(g, "plan_memory")


def test_onnx_and_ir_nodes_mixed():
    g = run_until(load(small_model()), "infer_shapes")
    from onnx2src.ops import lookup
    relu = node_named(g, "relu")
    g.nodes[0:1] = lookup(relu).lower(relu, g)
    assert_rejected(g, "infer_shapes", 'node "fc" (Gemm): the graph mixes ONNX nodes with lowered IR nodes')


# -- IR attributes -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,value,message", [
    ("alpha", 1, 'IR attribute "alpha" must be float, not int 1'),
    ("trans_b", 1, 'IR attribute "trans_b" must be bool, not int 1'),
    ("M", "batch", 'IR attribute "M" must be int or Dim, not str \'batch\''),
    ("a_strides", (4, 1.0), 'IR attribute "a_strides" must be a list of (int or Dim), not tuple (4, 1.0)'),
    ("c_strides", 0, 'IR attribute "c_strides" must be a list of (int or Dim) or None, not int 0'),
    ("panel", True, 'IR attribute "panel" must be int, not bool True'),
    ("packed", {"B": np.zeros(3)}, 'IR attribute "packed" must be a dict of str to Value'),
    ("onnx_op", None, 'IR attribute "onnx_op" must be str, not NoneType None'),
])
def test_wrong_ir_attribute_type(name, value, message):
    g = run_until(load(small_model()), "plan_memory")
    ir_verifier.check(g, "plan_memory")
    node_named(g, "fc", "Gemm").attrs[name] = value
    assert_rejected(g, "plan_memory", 'node "fc" (Gemm): ' + message)


def test_missing_and_unknown_ir_attributes():
    g = run_until(load(small_model()), "lower")
    gemm = node_named(g, "fc", "Gemm")
    gemm.attrs["trans_A"] = gemm.attrs.pop("trans_a")
    assert_rejected(g, "lower", 'node "fc" (Gemm): IR attribute "trans_a" is missing')
    gemm.attrs["trans_a"] = False
    assert_rejected(g, "lower", 'IR attribute "trans_A" is not one of Gemm\'s')
    del gemm.attrs["trans_A"]
    ir_verifier.check(g, "lower")  # packed and panel are optional (pack_weights adds them)
    gemm.op_type = "Gem"
    assert_rejected(g, "lower", 'node "fc" (Gem): Gem is not an IR op')


def test_nested_ir_attributes():
    g = run_until(load(small_model()), "lower")
    relu = node_named(g, "relu", "Elementwise")
    relu.attrs["kind"] = b"Relu"
    assert_rejected(g, "lower", 'IR attribute "kind" must be str, not bytes')
    relu.attrs["kind"] = "Relu"
    gemm = node_named(g, "fc", "Gemm")
    gemm.attrs["batch"] = [(2, 0, 4, "8")]
    assert_rejected(g, "lower", 'IR attribute "batch" must be Nest, not list')


def test_every_ir_op_created_is_in_the_table():
    """The ops the lowering rules create (found in the source by `ir("Op", ...)`) are in IR_OPS."""
    import re
    found = set()
    for path in glob.glob(os.path.join(ROOT, "onnx2src", "*", "*.py")):
        with open(path, encoding="utf-8") as f:
            found |= set(re.findall(r'\bir\("(\w+)"', f.read()))
    assert found and found <= set(ir_verifier.IR_OPS), found - set(ir_verifier.IR_OPS)


def test_internal_error_is_not_a_compile_error():
    assert not issubclass(InternalError, CompileError)


# -- command line --------------------------------------------------------------------------------------

def onnx2src(*args, env=None):
    return subprocess.run([sys.executable, "-m", "onnx2src"] + [str(a) for a in args],
                          capture_output=True, text=True, timeout=120, env=env)


@pytest.mark.parametrize("target", ["c", "numpy"])
def test_cli_check_ir_on_a_sample(target, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "ONNX2SRC_CHECK_IR"}
    done = onnx2src(os.path.join(ROOT, "samples", "simple_gru.onnx"), "--target", target,
                    "-o", tmp_path, "--check-ir", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ("" if target == "numpy" else done.stderr.splitlines()[0] + "\n")
    assert done.stderr.startswith("" if target == "numpy" else "memory: ")
    assert sorted(os.listdir(tmp_path)) == (["simple_gru.c", "simple_gru.h", "simple_gru_weights.c"] if target == "c"
                                            else ["simple_gru.py"])


def test_cli_failed_check_is_one_line_exit_3_no_files(tmp_path, monkeypatch, capsys):
    def corrupt(g):
        node_named(g, "fc", "Gemm").attrs["alpha"] = "2"

    broken = types.SimpleNamespace(__name__="onnx2src.passes.corrupt", run=corrupt)
    monkeypatch.setattr(passes, "PIPELINE", passes.PIPELINE + [broken])
    monkeypatch.delenv("ONNX2SRC_CHECK_IR", raising=False)
    path = tmp_path / "m.onnx"
    onnx.save(small_model(), str(path))
    assert cli.main([str(path), "--target", "c", "-o", str(tmp_path / "out"), "--check-ir"]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("onnx2src: error: internal error, a bug in onnx2src"), err
    assert 'IR check after corrupt: node "fc" (Gemm): IR attribute "alpha" must be float, not str' in err
    assert not (tmp_path / "out").exists()


# -- the frontend: attribute types against the operator's schema ---------------------------------

def one_node_model(node, opset=17):
    graph = helper.make_graph([node], "bad", [helper.make_tensor_value_info("X", TP.FLOAT, [2, 3])],
                              [helper.make_tensor_value_info("Y", TP.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


BAD_ATTRIBUTES = [
    (helper.make_node("Softmax", ["X"], ["Y"], name="sm", axis="1"),
     'node "sm" (Softmax): attribute "axis" has type STRING, but Softmax expects INT'),
    (helper.make_node("Concat", ["X", "X"], ["Y"], name="cat", axis=[1.0]),
     'node "cat" (Concat): attribute "axis" has type FLOATS, but Concat expects INT'),
    (helper.make_node("LeakyRelu", ["X"], ["Y"], name="lr", alpha=1),
     'node "lr" (LeakyRelu): attribute "alpha" has type INT, but LeakyRelu expects FLOAT'),
    (helper.make_node("Transpose", ["X"], ["Y"], name="tr", perm=1),
     'node "tr" (Transpose): attribute "perm" has type INT, but Transpose expects INTS'),
    (helper.make_node("Relu", ["X"], ["Y"], name="relu", alpha=0.5),
     'node "relu" (Relu): attribute "alpha" is not an attribute of Relu (opset 14; its attributes: none)'),
    (helper.make_node("Gather", ["X", "X"], ["Y"], name="g", axes=0),
     'attribute "axes" is not an attribute of Gather (opset 13; its attributes: axis)'),
]


@pytest.mark.parametrize("node,message", BAD_ATTRIBUTES, ids=lambda x: getattr(x, "name", None))
def test_frontend_refuses_wrong_attribute_types(node, message):
    with pytest.raises(CompileError) as info:
        frontend.from_model(one_node_model(node))
    assert str(info.value).startswith(message) or message in str(info.value), str(info.value)


def test_frontend_refuses_an_attribute_without_a_type():
    node = helper.make_node("Softmax", ["X"], ["Y"], name="sm")
    node.attribute.add(name="axis", i=1)  # type left UNDEFINED
    with pytest.raises(CompileError, match='attribute "axis" has type UNDEFINED, but Softmax expects INT'):
        frontend.from_model(one_node_model(node))


@pytest.mark.parametrize("node,message", BAD_ATTRIBUTES[:2], ids=["string", "floats"])
def test_cli_wrong_attribute_type_is_exit_2_one_line_no_files(node, message, tmp_path):
    path = tmp_path / "bad.onnx"
    onnx.save(one_node_model(node), str(path))
    out = tmp_path / "out"
    done = onnx2src(path, "--target", "c", "-o", out, "--check-ir")
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith("onnx2src: error: " + message), done.stderr
    assert not out.exists()


def test_cli_error_stays_one_line_with_a_hostile_attribute_name(tmp_path):
    node = helper.make_node("Relu", ["X"], ["Y"], name="relu")
    node.attribute.add(name="evil\nname\r\x1b[2J", type=onnx.AttributeProto.INT, i=1)
    path = tmp_path / "bad.onnx"
    onnx.save(one_node_model(node), str(path))
    done = onnx2src(path, "--target", "numpy", "-o", tmp_path / "out")
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert "\r" not in done.stderr and "\x1b" not in done.stderr
    assert 'attribute "evil\\nname\\r\\x1b[2J" is not an attribute of Relu' in done.stderr
    assert not (tmp_path / "out").exists()
