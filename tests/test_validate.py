"""Ill-formed and hostile model files (onnx2src/validate.py, frontend dims): each is refused with
one line naming the node, its op and what is wrong, exit status 2 and no file written, in both
targets; a file that is merely out of order, or declares unknown dims the way older exporters
do (-1, "?"), compiles and matches onnxruntime.

The CLI runs in-process here (cli.main), so a traceback would fail the test as an exception."""
import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto as TP
from onnx import helper, numpy_helper

from onnx2src import cli
from onnx2src.validate import MAX_DEPTH, MAX_NODES

from conftest import TARGETS, assert_close, build, ort_run, save

SAMPLE = os.path.join(os.path.dirname(__file__), "..", "samples", "simple_lstm.onnx")


def run_cli(tmp_path, model, target="c", extra=()):
    """(exit status, stderr lines, files written) of `onnx2src MODEL --target T -o OUT`."""
    path = save(model, tmp_path, "m") if not isinstance(model, str) else model
    out = tmp_path / f"out_{target}"
    import contextlib
    import io
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        status = cli.main([path, "--target", target, "-o", str(out), *extra])
    written = sorted(os.listdir(out)) if out.exists() else []
    return status, err.getvalue().splitlines(), written


def assert_refused(tmp_path, model, *fragments):
    for target in TARGETS:
        status, lines, written = run_cli(tmp_path, model, target)
        assert status == 2, (target, lines)
        assert len(lines) == 1 and lines[0].startswith("onnx2src: error: "), lines
        for fragment in fragments:
            assert fragment in lines[0], (fragment, lines[0])
        assert written == [], written


def model_of(nodes, inputs, outputs, inits=(), opset=17, ir=8):
    m = helper.make_model(helper.make_graph(nodes, "g", inputs, outputs, list(inits)),
                          opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = ir
    return m


def tensor(name, shape, dtype=TP.FLOAT):
    return helper.make_tensor_value_info(name, dtype, shape)


def raw_tensor(name, dims, **fields):
    """A float TensorProto as a file may hold it, unchecked (helper.make_tensor checks sizes)."""
    t = onnx.TensorProto(name=name, data_type=TP.FLOAT, dims=dims)
    for field, values in fields.items():
        getattr(t, field).extend(values)
    return t


def relu_model(**kw):
    return model_of([helper.make_node("Relu", ["x"], ["y"], name="r")], [tensor("x", [2, 3])],
                    [tensor("y", [2, 3])], **kw)


def sample():
    return onnx.load(SAMPLE)


def first(model, op):
    return next(n for n in model.graph.node if n.op_type == op)


# -- node arity, attributes, element types -----------------------------------------------------
def with_extra_input(op):
    m = sample()
    node = first(m, op)
    node.input.append(m.graph.input[0].name)
    return m


def with_input_cut(op, index):
    m = sample()
    first(m, op).input[index] = ""
    return m


NODE_CASES = {
    "extra_input_constant": (lambda: with_extra_input("Constant"), ["(Constant)", "at most 0"]),
    "extra_input_gather": (lambda: with_extra_input("Gather"), ["(Gather)", "3 inputs", "at most 2"]),
    "extra_input_shape": (lambda: with_extra_input("Shape"), ["(Shape)", "at most 1"]),
    "cut_gather_data": (lambda: with_input_cut("Gather", 0), ["(Gather)", "required input 0 (data) is missing"]),
    "cut_shape_data": (lambda: with_input_cut("Shape", 0), ["(Shape)", "required input 0 (data)"]),
    "cut_unsqueeze_axes": (lambda: with_input_cut("Unsqueeze", 1), ["(Unsqueeze)", "required input 1 (axes)"]),
    "cut_lstm_w": (lambda: with_input_cut("LSTM", 1), ["(LSTM)", "required input 1 (W)"]),
    "lstm_p_of_wrong_shape": (lambda: with_extra_input("LSTM"), ["(LSTM)", "P has shape"]),
    "slice_without_ends": (lambda: model_of(
        [helper.make_node("Slice", ["x", "s"], ["y"], name="sl")], [tensor("x", [4])], [tensor("y", [2])],
        [numpy_helper.from_array(np.array([1], np.int64), "s")]), ["(Slice)", "required input 2 (ends)"]),
    "output_of_constant_empty": (lambda: model_of(
        [helper.make_node("Constant", [], [""], name="c", value_float=1.0),
         helper.make_node("Relu", ["x"], ["y"], name="r")], [tensor("x", [1])], [tensor("y", [1])]),
        ["(Constant)", "required output 0 (output) is missing"]),
    "missing_required_attribute": (lambda: model_of(
        [helper.make_node("Cast", ["x"], ["y"], name="c")], [tensor("x", [2])], [tensor("y", [2])]),
        ["(Cast)", 'required attribute "to"']),
    "attribute_twice": (lambda: (lambda m: (m.graph.node[0].attribute.append(m.graph.node[0].attribute[0]), m)[1])(
        model_of([helper.make_node("Softmax", ["x"], ["y"], name="s", axis=0)], [tensor("x", [2])], [tensor("y", [2])])),
        ["(Softmax)", 'attribute "axis" is given twice']),
    "element_type_not_allowed": (lambda: model_of(
        [helper.make_node("Sqrt", ["x"], ["y"], name="q")], [tensor("x", [2], TP.INT64)], [tensor("y", [2], TP.INT64)]),
        ["(Sqrt)", "input 0 (X) is int64", "allowed: "]),
    "element_types_differ": (lambda: model_of(
        [helper.make_node("Add", ["x", "k"], ["y"], name="a")], [tensor("x", [2])], [tensor("y", [2])],
        [numpy_helper.from_array(np.array([1, 2], np.int64), "k")]), ["(Add)", "input 1 (B) is int64", "float"]),
    "not_an_operator": (lambda: model_of(
        [helper.make_node("Relu2", ["x"], ["y"], name="r")], [tensor("x", [2])], [tensor("y", [2])]),
        ["Relu2 is not an ONNX operator at opset 17"]),
    "deprecated_operator": (lambda: model_of(
        [helper.make_node("Upsample", ["x", "s"], ["y"], name="u")], [tensor("x", [1, 1, 2, 2])],
        [tensor("y", [1, 1, 4, 4])], [numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "s")]),
        ["(Upsample)", "deprecated"]),
    "lstm_input_size_unknown": (lambda: (lambda m: (
        m.graph.input[0].type.tensor_type.shape.dim[2].__setattr__("dim_param", "*/ x"), m)[1])(sample()),
        ["(LSTM)", "must have sizes known at compile time"]),
    "lstm_of_an_empty_batch": (lambda: (lambda m: (
        m.graph.input[0].type.tensor_type.shape.dim[0].__setattr__("dim_value", 0), m)[1])(sample()),
        ["(LSTM)", "is empty: no recurrence to run"]),
    "constant_of_unread_type": (lambda: model_of(
        [helper.make_node("Constant", [], ["y"], name="c", value=onnx.TensorProto(name="", data_type=TP.FLOAT8E4M3FN, dims=[1],
                                                                                  raw_data=b"\0"))],
        [], [tensor("y", [1])]), ["(Constant)", 'attribute "value" has data type FLOAT8E4M3FN']),
    "gather_from_a_scalar": (lambda: model_of(
        [helper.make_node("Gather", ["k", "i"], ["y"], name="g")], [tensor("i", [2], TP.INT64)], [tensor("y", [2])],
        [numpy_helper.from_array(np.array(1.0, np.float32), "k")]), ["(Gather)", "data is a scalar"]),
    "domain_not_imported": (lambda: (lambda m: (m.graph.node[0].__setattr__("domain", "my.ops"), m)[1])(relu_model()),
                            ['domain "my.ops" is not imported']),
}


@pytest.mark.parametrize("case", sorted(NODE_CASES))
def test_ill_formed_node_is_refused(case, tmp_path):
    make, fragments = NODE_CASES[case]
    assert_refused(tmp_path, make(), *fragments)


# -- graphs ----------------------------------------------------------------------------------
def reordered(order):
    m = sample()
    nodes = list(m.graph.node)
    del m.graph.node[:]
    m.graph.node.extend(order(nodes))
    return m


def cycle():
    m = sample()
    m.graph.node[0].input.append(m.graph.node[-1].output[0])
    return m


def two_producers():
    m = sample()
    m.graph.node[1].output[0] = m.graph.node[0].output[0]
    return m


def output_named(name):
    m = relu_model()
    m.graph.output[0].name = name
    return m


GRAPH_CASES = {
    "cycle": (cycle, ["cycle"]),
    "self_loop": (lambda: model_of([helper.make_node("Add", ["x", "y"], ["y"], name="a")],
                                   [tensor("x", [1])], [tensor("y", [1])]), ['"a" (Add)', "cycle"]),
    "two_producers": (two_producers, ["defined twice"]),
    "input_from_nowhere": (lambda: model_of([helper.make_node("Add", ["x", "ghost"], ["y"], name="a")],
                                            [tensor("x", [1])], [tensor("y", [1])]),
                           ['"a" (Add)', 'input "ghost" is produced by no node']),
    "output_from_nowhere": (lambda: output_named("nowhere"), ['graph output "nowhere" is produced by no node']),
    "output_unnamed": (lambda: output_named(""), ["a graph output has an empty name"]),
    "initializer_short": (lambda: (lambda m: (m.graph.initializer[0].dims.__setitem__(0, 7), m)[1])(sample()),
                          ["initializer", "bytes of data for"]),
    "initializer_negative_dim": (lambda: (lambda m: (m.graph.initializer[0].dims.__setitem__(0, -6), m)[1])(sample()),
                                 ["initializer", "negative dim"]),
    "initializer_huge": (lambda: (lambda m: (m.graph.initializer[0].dims.extend([1 << 20, 1 << 20]), m)[1])(sample()),
                         ["initializer", "more than 2,147,483,647 elements"]),
    "typed_initializer_short": (lambda: model_of(
        [helper.make_node("Add", ["x", "k"], ["y"], name="a")], [tensor("x", [3])], [tensor("y", [3])],
        [raw_tensor("k", [3], float_data=[1.0, 2.0])]), ['initializer "k" holds 2 values']),
    "no_outputs": (lambda: (lambda m: (m.graph.ClearField("output"), m)[1])(relu_model()),
                   ["the model has no outputs"]),
    "name_not_utf8": (lambda: not_utf8(), ["the NodeProto field name holds", "not UTF-8 text"]),
    "opset_99": (lambda: relu_model(opset=99), ["opset 99 is not supported"]),
    "opset_1": (lambda: relu_model(opset=1), ["opset 1 is not supported"]),
    "ir_99": (lambda: relu_model(ir=99), ["IR version 99"]),
    "ir_0": (lambda: relu_model(ir=0), ["IR version 0"]),
    "nested_too_deep": (lambda: nested_if(MAX_DEPTH + 2), [f"nested more than {MAX_DEPTH} deep"]),
    "too_many_nodes": (lambda: chain(MAX_NODES + 1), [f"more than {MAX_NODES:,} nodes"]),
}


def not_utf8(tmp_path_unused=None):
    """A node name that is not UTF-8 (protobuf then gives the field as bytes)."""
    m = relu_model()
    m.graph.node[0].name = "NAME@"
    data = m.SerializeToString().replace(b"NAME@", b"NAM\xff@")
    return onnx.load_from_string(data)


def nested_if(depth):
    """An If whose then-branch holds an If ... `depth` deep; else-branches return x."""
    def leaf(name):
        return helper.make_graph([helper.make_node("Identity", ["x"], [name], name=name)], name, [],
                                 [tensor(name, [1])])

    def branch(level):
        if level == 0:
            return leaf("y0")
        return helper.make_graph([helper.make_node("If", ["c"], [f"y{level}"], name=f"if{level}",
                                                   then_branch=branch(level - 1), else_branch=leaf(f"e{level}"))],
                                 f"b{level}", [], [tensor(f"y{level}", [1])])
    top = branch(depth)
    return model_of(list(top.node), [tensor("x", [1]), tensor("c", [], TP.BOOL)], [tensor(f"y{depth}", [1])])


def chain(count):
    nodes = [helper.make_node("Identity", [f"v{i}"], [f"v{i + 1}"]) for i in range(count)]
    return model_of(nodes, [tensor("v0", [1])], [tensor(f"v{count}", [1])])


@pytest.mark.parametrize("case", sorted(GRAPH_CASES))
def test_ill_formed_graph_is_refused(case, tmp_path):
    make, fragments = GRAPH_CASES[case]
    assert_refused(tmp_path, make(), *fragments)


@pytest.mark.parametrize("target", TARGETS)
def test_nodes_out_of_order_are_sorted(target, tmp_path):
    """Nodes listed in reverse (onnxruntime sorts them too): compiled, same outputs."""
    path = save(reordered(lambda nodes: list(reversed(nodes))), tmp_path, "reversed")
    x = np.random.default_rng(0).standard_normal((1, 7, 10)).astype(np.float32)
    run = build(path, target, tmp_path / target)
    assert_close(run(x), ort_run(SAMPLE, [x]))


# -- external data ---------------------------------------------------------------------------
def external(tmp_path, location, offset=0, length=None, data=b"\0" * 24):
    """A model whose Add reads a [6] float initializer from external data at `location`."""
    folder = tmp_path / "model"
    folder.mkdir(exist_ok=True)
    (folder / "w.bin").write_bytes(data)
    init = raw_tensor("k", [6])
    init.data_location = TP.EXTERNAL
    entries = {"location": location, "offset": str(offset)}
    if length is not None:
        entries["length"] = str(length)
    for key, value in entries.items():
        init.external_data.add(key=key, value=value)
    m = model_of([helper.make_node("Add", ["x", "k"], ["y"], name="a")], [tensor("x", [6])],
                 [tensor("y", [6])], [init])
    path = folder / "m.onnx"
    path.write_bytes(m.SerializeToString())
    return str(path)


EXTERNAL_CASES = {
    "parent": (dict(location="../w.bin"), ["not a file inside the model's folder"]),
    "absolute": (dict(location="/etc/passwd"), ["not a file inside the model's folder"]),
    "missing": (dict(location="nothere.bin"), ["does not exist"]),
    "negative_offset": (dict(location="w.bin", offset=-4), ["offset", "-4"]),
    "past_the_end": (dict(location="w.bin", offset=8, length=24), ["bytes 8..32", "which has 24"]),
    "wrong_length": (dict(location="w.bin", length=20), ["20 bytes of external data for 24 bytes"]),
    "not_a_number": (dict(location="w.bin", offset="x"), ["external-data entry is malformed"]),
}


@pytest.mark.parametrize("case", sorted(EXTERNAL_CASES))
def test_external_data_outside_or_past_its_file_is_refused(case, tmp_path):
    kwargs, fragments = EXTERNAL_CASES[case]
    assert_refused(tmp_path, external(tmp_path, **kwargs), 'tensor "k"', *fragments)


def test_external_data_through_a_symlink_leaving_the_folder_is_refused(tmp_path):
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"\1" * 24)
    path = external(tmp_path, "link.bin")
    os.symlink(secret, tmp_path / "model" / "link.bin")
    assert_refused(tmp_path, path, 'tensor "k"', "leaves the model's folder")


@pytest.mark.parametrize("target", TARGETS)
def test_external_data_inside_the_folder_is_read(target, tmp_path):
    data = np.arange(6, dtype=np.float32)
    path = external(tmp_path, "w.bin", offset=4, length=24, data=b"\0" * 4 + data.tobytes())
    x = np.ones(6, np.float32)
    assert_close(build(path, target, tmp_path / target)(x), [x + data])


# -- dims ------------------------------------------------------------------------------------
def classifier(dims):
    """Conv → GlobalAveragePool → Flatten → Gemm, input declared with `dims` (paddle2onnx's
    [-1, 3, ?, ?] and the like), output [-1, 2]."""
    rng = np.random.default_rng(3)
    x = helper.make_tensor_value_info("x", TP.FLOAT, None)
    for d in dims:
        dim = x.type.tensor_type.shape.dim.add()
        if isinstance(d, int):
            dim.dim_value = d
        elif d is not None:
            dim.dim_param = d
    y = helper.make_tensor_value_info("y", TP.FLOAT, None)
    y.type.tensor_type.shape.dim.add().dim_value = -1
    y.type.tensor_type.shape.dim.add().dim_value = 2
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("GlobalAveragePool", ["c"], ["p"], name="pool"),
             helper.make_node("Flatten", ["p"], ["f"], name="flat"),
             helper.make_node("Gemm", ["f", "fc"], ["y"], name="fc", transB=1)]
    inits = [numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w"),
             numpy_helper.from_array(rng.standard_normal((2, 4)).astype(np.float32), "fc")]
    return model_of(nodes, [x], [y], inits, opset=13)


UNKNOWN_DIMS = {"minus_one": [-1, 3, "?", "?"], "unnamed": [None, 3, "", None]}


@pytest.mark.parametrize("dims", sorted(UNKNOWN_DIMS))
@pytest.mark.parametrize("target", TARGETS)
def test_unknown_dims_become_dims_of_their_own(dims, target, tmp_path):
    """Each unknown dim is a symbolic dim of its own named x_dimAXIS (two "?" are two dims),
    documented in the header / docstring; the code matches onnxruntime at several sizes."""
    path = save(classifier(UNKNOWN_DIMS[dims]), tmp_path, "cls")
    status, lines, written = run_cli(tmp_path, path, target)
    assert status == 0, lines
    text = open(tmp_path / f"out_{target}" / ("cls.h" if target == "c" else "cls.py")).read()
    for axis in (0, 2, 3):
        assert f'x_dim{axis}' in text and f'axis {axis} of "x"' in text
    assert "-1]" not in text and "[-1" not in text
    run = build(path, target, tmp_path / target, max_dims={"x_dim0": 4, "x_dim2": 16, "x_dim3": 16})
    rng = np.random.default_rng(1)
    for shape in [(1, 3, 5, 7), (3, 3, 16, 2)]:
        x = rng.standard_normal(shape).astype(np.float32)
        assert_close(run(x), ort_run(path, [x]), str(shape))


DIM_REFUSALS = {
    "huge": ([1, 3, 1 << 40, 4], ['graph input "x" has dims [1, 3, 1099511627776, 4]', "more than"]),
    "product_too_large": ([1 << 16, 3, 1 << 16, 1 << 16], ["more than 2,147,483,647 elements"]),
}


@pytest.mark.parametrize("case", sorted(DIM_REFUSALS))
def test_dims_no_array_can_hold_are_refused(case, tmp_path):
    dims, fragments = DIM_REFUSALS[case]
    assert_refused(tmp_path, classifier(dims), *fragments)


def test_hostile_names_stay_on_one_line(tmp_path):
    """A node name with a newline, quotes and 10,000 characters: one line, shortened."""
    m = with_input_cut("Gather", 0)
    first(m, "Gather").name = 'evil\n"*/' + "x" * 10_000
    status, lines, _ = run_cli(tmp_path, m)
    assert status == 2 and len(lines) == 1 and len(lines[0]) < 300, lines
    assert '\\n\\"*/xxx' in lines[0]


def test_valid_models_pass_validation():
    """Every ONNX backend node test model (valid by construction) passes the checks, but those
    the compiler can't read at all: opsets before 7, and training ops of ai.onnx.preview.training
    with no default domain. The checks refuse nothing the ONNX spec allows."""
    from onnx.backend.test.case.node import collect_testcases
    from onnx2src import validate
    from onnx2src.ir import CompileError
    refused = []
    for case in collect_testcases():
        opsets = {o.domain: o.version for o in case.model.opset_import}
        if opsets.get("", opsets.get("ai.onnx", 0)) < validate.MIN_OPSET:
            continue
        try:
            validate.check_model(case.model)
        except CompileError as e:
            refused.append(f"{case.name}: {e}")
    assert refused == [], "\n".join(refused)


def test_unsupported_ops_inside_subgraphs_are_listed(tmp_path):
    """The one line listing unsupported operators names those inside an unsupported Loop's body
    too (and inside an If in that body)."""
    inner_if = helper.make_node("If", ["c"], ["z"], name="inner_if",
                                then_branch=helper.make_graph([helper.make_node("Det", ["x"], ["z"], name="det")],
                                                              "t", [], [tensor("z", [])]),
                                else_branch=helper.make_graph([helper.make_node("Det", ["x"], ["z"], name="det2")],
                                                              "e", [], [tensor("z", [])]))
    body = helper.make_graph([helper.make_node("Identity", ["c"], ["c_out"], name="id"),
                              helper.make_node("SequenceEmpty", [], ["s"], name="empty"), inner_if],
                             "body", [tensor("i", [], TP.INT64), tensor("c", [], TP.BOOL)],
                             [tensor("c_out", [], TP.BOOL), tensor("z", [])])
    m = model_of([helper.make_node("Loop", ["n", "cond"], ["zs"], body=body, name="loop")],
                 [tensor("n", [], TP.INT64), tensor("cond", [], TP.BOOL), tensor("x", [2, 2])],
                 [tensor("zs", None)])
    assert_refused(tmp_path, m, "operators not supported: ", "Det-11 ×2", 'Loop-16 ×1 (first: "loop")',
                   'SequenceEmpty-11 ×1 (first: "empty")')
