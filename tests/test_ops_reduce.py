"""Reductions (ReduceSum, ReduceMean, ReduceMax, ReduceMin, ReduceProd, ReduceL1, ReduceL2,
ReduceSumSquare, ReduceLogSum, ReduceLogSumExp at every opset), ArgMax / ArgMin, CumSum and
LayerNormalization, in both targets.

- The ONNX backend node cases of these ops, against the outputs they carry. Cases giving axes
  (or CumSum's axis) as a graph input must be refused (the output shape would depend on data);
  each is run again with that input made a constant. Cases of unsupported types must be refused.
- Models built here against onnxruntime: every opset version (axes as attribute or input,
  keepdims, noop_with_empty_axes, negative, empty, non-adjacent axes), innermost, middle and outer
  axes (the C code's three loop shapes), every type the spec and onnxruntime share, symbolic dims
  at two sizes, empty reductions, folding of constants and of symbolic sizes, and refusals.
"""
import shutil
import subprocess

import numpy as np
import onnx
import pytest
from onnx import TensorProto as TP
from onnx import helper, numpy_helper
from onnx.backend.test.case.node import collect_testcases

from onnx2src import CompileError, Options, generate
from onnx2src.ir import BY_ONNX, Node
from onnx2src.ops import supported

from conftest import assert_close, build, case_data, ort_run, save, single_op_cases

RNG = np.random.default_rng(20240807)
REDUCE = ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
          "ReduceSumSquare", "ReduceLogSum", "ReduceLogSumExp"]
OPS = set(REDUCE) | {"ArgMax", "ArgMin", "CumSum", "LayerNormalization"}


def const(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def tensor(name, elem_type, shape):
    return helper.make_tensor_value_info(name, elem_type, shape)


def model(nodes, inputs, outputs, inits=(), opset=18):
    graph = helper.make_graph(nodes, "test_graph", inputs, outputs, list(inits))
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8  # outputs are declared without shapes: onnxruntime and onnx2src infer them
    return m


def compare(m, input_sets, target, tmp_path, reference=None):
    """Build m for `target` and compare it with onnxruntime (or `reference`) on every input set."""
    path = save(m, tmp_path)
    run = build(path, target, tmp_path / target)
    for inputs in input_sets:
        expected = ort_run(path, inputs) if reference is None else reference(inputs)
        assert_close(run(*inputs), expected, f"{target} at input shapes {[x.shape for x in inputs]}")
    return path


# -- the ONNX backend node cases ------------------------------------------------------------------

NODE_CASES = single_op_cases(OPS)


def _runtime_inputs(case):
    """Positions of graph inputs that are axes (not data): refused at run time."""
    node = case.model.graph.node[0]
    names = [i.name for i in case.model.graph.input]
    positions = ([1] if node.op_type in REDUCE or node.op_type == "CumSum" else [])
    return [names.index(node.input[p]) for p in positions if p < len(node.input) and node.input[p] in names]


def _unsupported_type(case):
    g = case.model.graph
    return any(vi.type.tensor_type.elem_type not in BY_ONNX for vi in list(g.input) + list(g.output))


def _as_constants(case, positions):
    """The case's model with the graph inputs at `positions` made initializers (their values
    must be the same in every data set), and its data sets without them."""
    m = onnx.ModelProto()
    m.CopyFrom(case.model)
    g = m.graph
    data_sets = case_data(case)
    for p in sorted(positions, reverse=True):
        values = [inputs[p] for inputs, _ in data_sets]
        assert all(np.array_equal(v, values[0]) for v in values)
        g.initializer.append(const(g.input[p].name, values[0]))
        del g.input[p]
        for inputs, _ in data_sets:
            del inputs[p]
    return m, data_sets


@pytest.mark.parametrize("case", NODE_CASES, ids=[c.name for c in NODE_CASES])
def test_node_case(case, target, tmp_path):
    path = save(case.model, tmp_path)
    if _unsupported_type(case):
        with pytest.raises(CompileError, match="not supported"):
            build(path, target, tmp_path / target)
        return
    runtime = _runtime_inputs(case)
    if runtime:
        with pytest.raises(CompileError, match="run time"):
            build(path, target, tmp_path / target)
    m, data_sets = _as_constants(case, runtime)
    run = build(save(m, tmp_path, "constant"), target, tmp_path / target)
    for inputs, expected in data_sets:
        assert_close(run(*inputs), expected, case.name)


def _supported(case):
    """Whether onnx2src has rules for every node of the case (at the model's opset)."""
    opset = case.model.opset_import[0].version
    for n in case.model.graph.node:
        try:
            since = onnx.defs.get_schema(n.op_type, opset, n.domain).since_version
        except onnx.defs.SchemaError:
            return False
        if not supported(Node(n.op_type, n.name, [], [], version=since, domain=n.domain)):
            return False
    return True


# The function bodies of these ops and others (Softmax, LogSoftmax, MeanVarianceNormalization,
# RMSNormalization, ReduceL1 as Abs + ReduceSum, ...) as node cases, when every op they use is one
# onnx2src supports.
EXPANDED_CASES = sorted((c for c in collect_testcases() if len(c.model.graph.node) > 1
                         and any(n.op_type in OPS for n in c.model.graph.node) and _supported(c)),
                        key=lambda c: c.name)


@pytest.mark.parametrize("case", EXPANDED_CASES, ids=[c.name for c in EXPANDED_CASES])
def test_expanded_node_case(case, target, tmp_path):
    g = case.model.graph
    names = [i.name for i in g.input]
    runtime = sorted({names.index(n.input[1]) for n in g.node if n.op_type in REDUCE + ["CumSum"]
                      and len(n.input) > 1 and n.input[1] in names})
    if _unsupported_type(case):
        with pytest.raises(CompileError, match="not supported"):
            build(save(case.model, tmp_path), target, tmp_path / target)
        return
    m, data_sets = _as_constants(case, runtime)
    run = build(save(m, tmp_path), target, tmp_path / target)
    for inputs, expected in data_sets:
        assert_close(run(*inputs), expected, case.name)


def test_node_cases_cover_every_op():
    assert {c.model.graph.node[0].op_type for c in NODE_CASES} == OPS
    assert len(NODE_CASES) >= 140


# -- ReduceX at every opset -----------------------------------------------------------------------

def axes_are_input(op, opset):
    return opset >= (13 if op == "ReduceSum" else 18)


MIN_OPSET = 7  # the oldest opset onnx2src reads: the version-1 schemas are met there


def versions(op):
    """The opsets at which the op's schema changed (onnx.defs), so every registration is met."""
    found = set()
    for opset in range(MIN_OPSET, onnx.defs.onnx_opset_version() + 1):
        found.add(onnx.defs.get_schema(op, opset, "").since_version)
    return sorted(max(v, MIN_OPSET) for v in found)


# (axes, keepdims, noop_with_empty_axes); None leaves it out
VARIANTS = [([-1], 1, None),        # innermost: the scalar (float: lanes) loop
            ([1], 0, None),         # middle: whole rows accumulate
            ([0], 1, None),         # outermost
            ([0, 2], 1, None),      # not adjacent
            ([-2, -1], 0, None),    # negative
            (None, 0, None),        # all
            (None, 1, None)]
INPUT_VARIANTS = [(None, 1, 1),     # no axes, noop: the reduction of one element each
                  ([], 0, 0),       # empty axes: all
                  ([], 1, 1)]       # empty axes, noop


def reduce_model(op, opset, elem_type, shape, variants):
    nodes, inits, outputs = [], [], []
    for k, (axes, keepdims, noop) in enumerate(variants):
        inputs, attrs = ["X"], {}
        if keepdims is not None:
            attrs["keepdims"] = keepdims
        if noop is not None:
            attrs["noop_with_empty_axes"] = noop
        if axes is not None and axes_are_input(op, opset):
            inits.append(const(f"axes{k}", np.array(axes, np.int64)))
            inputs.append(f"axes{k}")
        elif axes is not None:
            attrs["axes"] = axes
        nodes.append(helper.make_node(op, inputs, [f"Y{k}"], name=f"{op}_{k}", **attrs))
        outputs.append(tensor(f"Y{k}", elem_type, None))
    return model(nodes, [tensor("X", elem_type, shape)], outputs, inits, opset)


def reduce_data(op, shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        if op in ("ReduceLogSum", "ReduceProd"):
            return rng.uniform(0.5, 1.5, shape).astype(dtype)
        scale = 40 if op == "ReduceLogSumExp" else 1  # exp(x) overflows without the max shift
        return (scale * rng.standard_normal(shape)).astype(dtype)
    if np.dtype(dtype) == np.bool_:
        return rng.integers(0, 2, shape).astype(bool)
    low = 1 if op in ("ReduceLogSum", "ReduceL2", "ReduceLogSumExp") else -2
    low = max(low, np.iinfo(dtype).min)
    return rng.integers(low, 3, shape).astype(dtype)


REDUCE_CASES = [(op, opset) for op in REDUCE for opset in versions(op)]


@pytest.mark.parametrize("op,opset", REDUCE_CASES, ids=[f"{op}-{v}" for op, v in REDUCE_CASES])
def test_reduce_every_opset(op, opset, target, tmp_path):
    """Symbolic batch and seq at two sizes; 20 features, so the innermost reduction uses lanes
    and a remainder."""
    variants = VARIANTS + (INPUT_VARIANTS if axes_are_input(op, opset) else [])
    m = reduce_model(op, opset, TP.FLOAT, ["batch", "seq", 20], variants)
    sets = [[reduce_data(op, (2, 3, 20), np.float32)], [reduce_data(op, (1, 5, 20), np.float32, 1)]]
    compare(m, sets, target, tmp_path)


INT_TYPES = {"ReduceMax": [np.int32, np.int64, np.int8, np.uint8], "ReduceMin": [np.int32, np.int64, np.int8, np.uint8]}
TYPE_CASES = [(op, t) for op in REDUCE for t in [np.float64, np.int32, np.int64] + INT_TYPES.get(op, [])
              if op != "ReduceLogSumExp" or t == np.float64]  # integers refused, see below


@pytest.mark.parametrize("op,dtype", TYPE_CASES, ids=[f"{op}-{np.dtype(t).name}" for op, t in TYPE_CASES])
def test_reduce_types(op, dtype, target, tmp_path):
    """Integer sums, means (truncated), products, norms and logs as onnxruntime computes them."""
    opset = 13 if op == "ReduceSum" else 18
    elem = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    m = reduce_model(op, opset, elem, ["batch", 3, 4], VARIANTS)
    sets = [[reduce_data(op, (2, 3, 4), dtype)], [reduce_data(op, (1, 3, 4), dtype, 1)]]
    compare(m, sets, target, tmp_path)


@pytest.mark.parametrize("op", ["ReduceMax", "ReduceMin"])
def test_reduce_bool(op, target, tmp_path):
    """Opset 20: Max is any, Min is all."""
    m = reduce_model(op, 20, TP.BOOL, ["batch", 3, 4], VARIANTS)
    x = np.zeros((2, 3, 4), bool)
    x[0, 1, 2] = True
    sets = [[x], [~x], [reduce_data(op, (1, 3, 4), np.bool_, 2)]]
    compare(m, sets, target, tmp_path)


@pytest.mark.parametrize("op", REDUCE)
def test_reduce_long_rows(op, target, tmp_path):
    """An innermost axis of 1000 (lanes over 125 steps) and a middle one of 300, float: sums in
    the input type stay within tolerance of onnxruntime."""
    m = reduce_model(op, 18 if op != "ReduceSum" else 13, TP.FLOAT, ["batch", 300, 1000],
                     [([-1], 0, None), ([1], 1, None)])
    x = reduce_data(op, (2, 300, 1000), np.float32)
    if op == "ReduceProd":
        x = (1 + (x - 1) / 100).astype(np.float32)  # products of 1000 elements stay finite
    compare(m, [[x]], target, tmp_path)


@pytest.mark.parametrize("shape,sizes", [([1, 256], [(1, 256)]), ([3, 24], [(3, 24)]), ([1, 260], [(1, 260)]),
                                         ([2, 23], [(2, 23)]), (["batch", "n"], [(1, 128), (2, 23), (3, 17)])],
                         ids=["1x256", "3x24", "1x260", "2x23", "symbolic"])
def test_reduce_and_layer_norm_lane_runs(shape, sizes, target, tmp_path):
    """Float rows in groups of eight lanes: a whole number of groups known at compile time (no
    scalar tail is emitted: loops.lane_split), a tail of 4 or 7 after them, and rows whose length
    is known only at run time; ReduceMean, ReduceSumSquare, ReduceMax and LayerNormalization."""
    nodes = [helper.make_node(op, ["X"], [f"Y{k}"], axes=[-1]) for k, op in
             enumerate(("ReduceMean", "ReduceSumSquare", "ReduceMax"))]
    nodes.append(helper.make_node("LayerNormalization", ["X", "Scale", "B"], ["Y3"], axis=-1))
    f = shape[-1] if isinstance(shape[-1], int) else 1
    inits = [const("Scale", np.linspace(0.5, 1.5, f, dtype=np.float32)), const("B", np.full(f, 0.25, np.float32))]
    m = model(nodes, [tensor("X", TP.FLOAT, shape)], [tensor(f"Y{k}", TP.FLOAT, None) for k in range(4)], inits, 17)
    compare(m, [[reduce_data("ReduceMean", s, np.float32, k)] for k, s in enumerate(sizes)], target, tmp_path)


@pytest.mark.parametrize("op", REDUCE)
def test_reduce_empty_set(op, target, tmp_path):
    """Reducing an axis of size 0 gives the identity (sum 0, product 1, max -inf, min +inf, mean
    0, log-sums -inf); keeping an axis of size 0 gives an empty output."""
    opset = 13 if op == "ReduceSum" else 18
    m = reduce_model(op, opset, TP.FLOAT, [2, 0, 4], [([1], 1, None), ([1], 0, None), ([2], 1, None)])
    compare(m, [[np.zeros((2, 0, 4), np.float32)]], target, tmp_path)


def test_reduce_scalar_input(target, tmp_path):
    nodes = [helper.make_node(op, ["X"] + ([""] if op == "ReduceSum" else []), [f"Y{k}"], keepdims=k % 2)
             for k, op in enumerate(REDUCE)]  # ReduceSum-13: the axes input left out
    m = model(nodes, [tensor("X", TP.FLOAT, [])], [tensor(f"Y{k}", TP.FLOAT, None) for k in range(len(REDUCE))],
              opset=13)
    compare(m, [[np.array(1.5, np.float32)], [np.array(-0.5, np.float32)]], target, tmp_path)


def test_reduce_size_one_axes(target, tmp_path):
    """Reducing only axes of size 1 is the elementwise part of the op (ReduceL2: |x|); a size-1
    axis after the reduced one leaves the reduction innermost."""
    nodes = [helper.make_node("ReduceL2", ["X", "a1"], ["Y0"]),
             helper.make_node("ReduceLogSumExp", ["X", "a1"], ["Y1"], keepdims=0),
             helper.make_node("ReduceMean", ["X", "a02"], ["Y2"]),
             helper.make_node("ReduceSum", ["X", "a2"], ["Y3"])]
    inits = [const("a1", np.array([1], np.int64)), const("a02", np.array([0, 2], np.int64)),
             const("a2", np.array([2], np.int64))]
    m = model(nodes, [tensor("X", TP.FLOAT, ["batch", 1, 17, 1])],
              [tensor(f"Y{k}", TP.FLOAT, None) for k in range(4)], inits)
    compare(m, [[reduce_data("ReduceSum", (3, 1, 17, 1), np.float32)]], target, tmp_path)


def _reference(m):
    from onnx.reference import ReferenceEvaluator
    ev = ReferenceEvaluator(m)
    return lambda inputs: ev.run(None, {i.name: x for i, x in zip(m.graph.input, inputs)})


def test_types_onnxruntime_lacks(target, tmp_path):
    """uint32 / uint64 sums and maxima, and int16 / uint16 ArgMax, which the spec allows and
    onnxruntime does not implement, against onnx.reference."""
    nodes = [helper.make_node("ReduceSum", ["A", "axes"], ["S"], keepdims=0),
             helper.make_node("ReduceMax", ["B", "axes"], ["M"]),
             helper.make_node("ArgMax", ["C"], ["I"], axis=1, select_last_index=1),
             helper.make_node("ArgMin", ["D"], ["J"], axis=0, keepdims=0)]
    m = model(nodes, [tensor("A", TP.UINT32, [3, 5]), tensor("B", TP.UINT64, [3, 5]),
                      tensor("C", TP.INT16, [3, 5]), tensor("D", TP.UINT16, [3, 5])],
              [tensor("S", TP.UINT32, None), tensor("M", TP.UINT64, None), tensor("I", TP.INT64, None),
               tensor("J", TP.INT64, None)], [const("axes", np.array([1], np.int64))])
    x = RNG.integers(0, 4, (3, 5))
    sets = [[x.astype(np.uint32), (x * 2**40).astype(np.uint64), (x - 2).astype(np.int16), x.astype(np.uint16)]]
    compare(m, sets, target, tmp_path, reference=_reference(m))


# -- ArgMax / ArgMin ------------------------------------------------------------------------------

ARG_VARIANTS = [(0, 1, 0), (1, 0, 0), (2, 1, 0), (-1, 0, 0), (-2, 1, 1), (2, 0, 1), (0, 0, 1)]


def arg_model(op, opset, elem_type, shape):
    nodes, outputs = [], []
    for k, (axis, keepdims, last) in enumerate(ARG_VARIANTS):
        if opset < 11 and axis < 0:
            continue
        attrs = {"axis": axis, "keepdims": keepdims}
        if last and opset >= 12:
            attrs["select_last_index"] = last
        nodes.append(helper.make_node(op, ["X"], [f"Y{k}"], **attrs))
        outputs.append(tensor(f"Y{k}", TP.INT64, None))
    nodes.append(helper.make_node(op, ["X"], ["Yd"]))  # axis 0, keepdims 1
    outputs.append(tensor("Yd", TP.INT64, None))
    return model(nodes, [tensor("X", elem_type, shape)], outputs, opset=opset)


@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
@pytest.mark.parametrize("opset", [MIN_OPSET, 11, 12, 13])
def test_arg_every_opset(op, opset, target, tmp_path):
    """Ties everywhere (values in 0..3), so the first / last index matters."""
    m = arg_model(op, opset, TP.FLOAT, ["batch", "seq", 6])
    sets = [[RNG.integers(0, 4, (2, 3, 6)).astype(np.float32)], [RNG.integers(0, 4, (1, 5, 6)).astype(np.float32)],
            [RNG.standard_normal((3, 1, 6)).astype(np.float32)]]
    compare(m, sets, target, tmp_path)


@pytest.mark.parametrize("dtype", [np.float64, np.int32, np.int64, np.int8, np.uint8])
def test_arg_types(dtype, target, tmp_path):
    m = arg_model("ArgMax", 13, helper.np_dtype_to_tensor_dtype(np.dtype(dtype)), ["batch", 4, 5])
    sets = [[RNG.integers(0, 3, (2, 4, 5)).astype(dtype)], [RNG.integers(0, 100, (3, 4, 5)).astype(dtype)]]
    compare(m, sets, target, tmp_path)


# -- CumSum ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("opset", [11, 14])
@pytest.mark.parametrize("axis_type", [np.int32, np.int64])
def test_cumsum(opset, axis_type, target, tmp_path):
    """Every axis (first, middle, last, negative), each of exclusive x reverse."""
    nodes, inits, outputs = [], [], []
    for axis in (0, 1, 2, -1, -3):
        inits.append(const(f"axis{axis + 3}", np.array(axis, axis_type)))
        for exclusive in (0, 1):
            for reverse in (0, 1):
                out = f"Y{axis + 3}{exclusive}{reverse}"
                nodes.append(helper.make_node("CumSum", ["X", f"axis{axis + 3}"], [out], exclusive=exclusive,
                                              reverse=reverse))
                outputs.append(tensor(out, TP.FLOAT, None))
    m = model(nodes, [tensor("X", TP.FLOAT, ["batch", "seq", 5])], outputs, inits, opset)
    sets = [[RNG.standard_normal((2, 3, 5)).astype(np.float32)], [RNG.standard_normal((1, 4, 5)).astype(np.float32)]]
    compare(m, sets, target, tmp_path)


@pytest.mark.parametrize("dtype", [np.float64, np.int32, np.int64])
def test_cumsum_types(dtype, target, tmp_path):
    elem = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    nodes = [helper.make_node("CumSum", ["X", "a1"], ["Y0"]),
             helper.make_node("CumSum", ["X", "a0"], ["Y1"], exclusive=1, reverse=1),
             helper.make_node("CumSum", ["X", "a1"], ["Y2"], exclusive=1)]
    m = model(nodes, [tensor("X", elem, ["batch", 7])], [tensor(f"Y{k}", elem, None) for k in range(3)],
              [const("a0", np.array(0, np.int64)), const("a1", np.array(1, np.int32))], 14)
    sets = [[RNG.integers(-5, 6, (3, 7)).astype(dtype)], [RNG.integers(-5, 6, (1, 7)).astype(dtype)]]
    compare(m, sets, target, tmp_path)


def test_cumsum_axis_of_one(target, tmp_path):
    nodes = [helper.make_node("CumSum", ["X", "a"], ["Y0"]),
             helper.make_node("CumSum", ["X", "a"], ["Y1"], exclusive=1, reverse=1)]
    m = model(nodes, [tensor("X", TP.FLOAT, [2, 1, 3])], [tensor("Y0", TP.FLOAT, None), tensor("Y1", TP.FLOAT, None)],
              [const("a", np.array(1, np.int64))], 14)
    compare(m, [[RNG.standard_normal((2, 1, 3)).astype(np.float32)]], target, tmp_path)


# -- LayerNormalization ---------------------------------------------------------------------------

def layer_norm_model(x_shape, axis, scale, bias, outputs=("Y", "Mean", "InvStdDev"), elem=TP.FLOAT, **attrs):
    inits = [const("Scale", scale)] + ([const("B", bias)] if bias is not None else [])
    node = helper.make_node("LayerNormalization", ["X", "Scale"] + (["B"] if bias is not None else []),
                            list(outputs), axis=axis, **attrs)
    outs = [tensor(o, elem if k == 0 else TP.FLOAT, None) for k, o in enumerate(outputs) if o]
    return model([node], [tensor("X", elem, x_shape)], outs, inits, 17)


def weights(*shape, dtype=np.float32):
    return RNG.standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("axis", [-1, 1, -2, 2])
def test_layer_norm(axis, target, tmp_path):
    """Rows of the axes from `axis` on; Mean and InvStdDev of shape [batch, (seq,) 1, ...]."""
    norm = [6, 16][axis % 3 - 1:]
    m = layer_norm_model(["batch", 6, 16], axis, weights(*norm), weights(*norm))
    sets = [[(3 + 2 * RNG.standard_normal((2, 6, 16))).astype(np.float32)], [weights(1, 6, 16)]]
    compare(m, sets, target, tmp_path)


def test_layer_norm_symbolic_rows_no_bias_some_outputs(target, tmp_path):
    """PyTorch's nn.LayerNorm(bias=False) over [batch, seq, 32]; Mean left out."""
    m = layer_norm_model(["batch", "seq", 32], -1, weights(32), None, ("Y", "", "InvStdDev"), epsilon=1e-3)
    sets = [[weights(2, 3, 32)], [weights(1, 7, 32)]]
    compare(m, sets, target, tmp_path)


def test_layer_norm_only_y_double(target, tmp_path):
    """double X: computed in double; Mean and InvStdDev would be float (stash_type 1)."""
    m = layer_norm_model(["batch", 10], -1, weights(10, dtype=np.float64), weights(10, dtype=np.float64),
                         ("Y",), elem=TP.DOUBLE)
    compare(m, [[weights(4, 10, dtype=np.float64)], [weights(1, 10, dtype=np.float64)]], target, tmp_path)
    m = layer_norm_model(["batch", 10], -1, weights(10, dtype=np.float64), None, elem=TP.DOUBLE)
    (tmp_path / "stats").mkdir()
    compare(m, [[weights(4, 10, dtype=np.float64)]], target, tmp_path / "stats")


def test_layer_norm_scale_broadcast(target, tmp_path):
    """Scale [1, 16] and B [16] (onnxruntime), and Scale / B varying along the rows' axes too
    (unidirectional broadcasting to X, as the spec allows; onnx.reference)."""
    m = layer_norm_model(["batch", 4, 16], -1, weights(1, 16), weights(16))
    compare(m, [[weights(2, 4, 16)]], target, tmp_path)
    m = layer_norm_model([3, 4, 16], 2, weights(4, 1), weights(3, 1, 16))
    (tmp_path / "reference").mkdir()
    compare(m, [[weights(3, 4, 16)]], target, tmp_path / "reference", reference=_reference(m))


def test_layer_norm_two_pass_variance(target, tmp_path):
    """x = 10 + 0.1 * noise: the mean of squared deviations stays accurate where E[x^2] - E[x]^2
    cancels in float; compared with a float64 computation of the spec's formula."""
    m = layer_norm_model(["batch", 64], -1, np.ones(64, np.float32), np.zeros(64, np.float32))
    x = (10 + 0.1 * RNG.standard_normal((4, 64))).astype(np.float32)

    def exact(inputs):
        v = inputs[0].astype(np.float64)
        mean = v.mean(-1, keepdims=True)
        inv = 1 / np.sqrt(((v - mean) ** 2).mean(-1, keepdims=True) + 1e-5)
        return [((v - mean) * inv).astype(np.float32), mean.astype(np.float32), inv.astype(np.float32)]
    compare(m, [[x]], target, tmp_path, reference=exact)


# -- folding --------------------------------------------------------------------------------------

def test_constant_reductions_fold(target, tmp_path):
    """Reductions, ArgMax, CumSum and LayerNormalization of constants are computed at compile
    time: the generated code holds their results, not the ops."""
    c = RNG.standard_normal((3, 4)).astype(np.float32)
    nodes = [helper.make_node("ReduceMean", ["C", "ax"], ["m"]),
             helper.make_node("ReduceLogSumExp", ["C"], ["l"], keepdims=0),
             helper.make_node("ArgMax", ["C"], ["i"], axis=1),
             helper.make_node("CumSum", ["C", "ax0"], ["s"], exclusive=1),
             helper.make_node("LayerNormalization", ["C", "one", "zero"], ["n"]),
             helper.make_node("Add", ["X", "m"], ["Y0"]),
             helper.make_node("Mul", ["X", "s"], ["Y1"]),
             helper.make_node("Add", ["X", "n"], ["Y2"]),
             helper.make_node("Add", ["l", "l"], ["Y3"]),
             helper.make_node("Identity", ["i"], ["Y4"])]
    inits = [const("C", c), const("ax", np.array([1], np.int64)), const("ax0", np.array(0, np.int64)),
             const("one", np.ones(4, np.float32)), const("zero", np.zeros(4, np.float32))]
    m = model(nodes, [tensor("X", TP.FLOAT, [3, 4])],
              [tensor(f"Y{k}", TP.FLOAT, None) for k in range(4)] + [tensor("Y4", TP.INT64, None)], inits)
    path = compare(m, [[RNG.standard_normal((3, 4)).astype(np.float32)]], target, tmp_path)
    text = "".join(generate(path, Options(target, name="model")).values())
    for op in ("ReduceMean", "ReduceLogSumExp", "ArgMax", "CumSum", "LayerNormalization"):
        assert f"{op} \"" not in text, op


def test_sizes_fold(target, tmp_path):
    """x.flatten(1) as some exporters write it: Reshape(x, [batch, ReduceProd(Shape(x)[1:])]), and
    a ReduceSum / ReduceMax of sizes: resolved at compile time in terms of seq."""
    nodes = [helper.make_node("Shape", ["X"], ["shape"]),
             helper.make_node("Slice", ["shape", "one", "big"], ["tail"]),
             helper.make_node("ReduceProd", ["tail", "zero"], ["numel"]),
             helper.make_node("Slice", ["shape", "zero", "one"], ["head"]),
             helper.make_node("Concat", ["head", "numel"], ["target"], axis=0),
             helper.make_node("Reshape", ["X", "target"], ["Y"]),
             helper.make_node("ReduceSum", ["tail", "zero"], ["total"]),
             helper.make_node("ReduceMax", ["tail"], ["most"]),
             helper.make_node("ConstantOfShape", ["total"], ["Z"], value=helper.make_tensor("v", TP.FLOAT, [1], [1])),
             helper.make_node("Cast", ["most"], ["mostf"], to=TP.FLOAT),
             helper.make_node("Mul", ["Z", "mostf"], ["W"])]
    inits = [const("one", np.array([1], np.int64)), const("zero", np.array([0], np.int64)),
             const("big", np.array([2**62], np.int64))]
    m = model(nodes, [tensor("X", TP.FLOAT, ["batch", "seq", 3])], [tensor("Y", TP.FLOAT, None), tensor("W", TP.FLOAT, None)],
              inits)
    sets = [[RNG.standard_normal((2, 4, 3)).astype(np.float32)], [RNG.standard_normal((1, 2, 3)).astype(np.float32)]]
    compare(m, sets, target, tmp_path)


# -- refused --------------------------------------------------------------------------------------

def _refused(m, tmp_path, match):
    path = save(m, tmp_path)
    for target in ("numpy", "c"):
        with pytest.raises(CompileError, match=match):
            generate(path, Options(target))


@pytest.mark.parametrize("axes,match", [([0, 0], "repeat"), ([3], "out of range"), ([-4], "out of range")])
def test_invalid_axes_refused(axes, match, tmp_path):
    m = model([helper.make_node("ReduceMean", ["X"], ["Y"], axes=axes)], [tensor("X", TP.FLOAT, [2, 3, 4])],
              [tensor("Y", TP.FLOAT, None)], opset=13)
    _refused(m, tmp_path, match)


def test_runtime_axes_refused(tmp_path):
    m = model([helper.make_node("ReduceSum", ["X", "axes"], ["Y"])],
              [tensor("X", TP.FLOAT, [2, 3]), tensor("axes", TP.INT64, [1])], [tensor("Y", TP.FLOAT, None)], opset=13)
    _refused(m, tmp_path, "axes given at run time")


def test_types_the_spec_does_not_allow_refused(tmp_path):
    m = model([helper.make_node("ReduceSum", ["X", "axes"], ["Y"])], [tensor("X", TP.BOOL, [2, 3])],
              [tensor("Y", TP.BOOL, None)], [const("axes", np.array([1], np.int64))], opset=13)
    path = save(m, tmp_path)
    with pytest.raises(CompileError, match="is bool, which ReduceSum does not take"):
        generate(path, Options("c"))


def test_integer_log_sum_exp_refused(tmp_path):
    """onnxruntime takes exp(x - max) of integers as an integer (0 but at the max), the spec's
    function body casts to float first: rather than pick one, refuse."""
    m = reduce_model("ReduceLogSumExp", 18, TP.INT32, [2, 3], [([1], 1, None)])
    _refused(m, tmp_path, "cast to float")


def test_float16_refused(tmp_path):
    m = model([helper.make_node("ReduceMax", ["X"], ["Y"])], [tensor("X", TP.FLOAT16, [2, 3])],
              [tensor("Y", TP.FLOAT16, None)], opset=18)
    _refused(m, tmp_path, "not supported")


def test_layer_norm_refusals(tmp_path):
    m = layer_norm_model([2, 3, 4], -1, weights(3), None)
    _refused(m, tmp_path, "broadcast")
    m = layer_norm_model([2, 3, 4], -1, weights(4), None, stash_type=TP.DOUBLE)
    (tmp_path / "stash").mkdir()
    _refused(m, tmp_path / "stash", "stash_type")


def test_arg_of_empty_axis_refused(tmp_path):
    m = model([helper.make_node("ArgMax", ["X"], ["Y"], axis=1)], [tensor("X", TP.FLOAT, [2, 0])],
              [tensor("Y", TP.INT64, None)], opset=13)
    _refused(m, tmp_path, "size 0")


# -- the generated C --------------------------------------------------------------------------

def every_shape_model():
    """One model meeting every loop shape of the three IR ops."""
    nodes = [helper.make_node("ReduceSum", ["X", "last"], ["a"]),          # lanes
             helper.make_node("ReduceMax", ["X", "mid"], ["b"]),           # rows
             helper.make_node("ReduceLogSumExp", ["X", "mid"], ["c"]),     # two passes
             helper.make_node("ReduceL1", ["Xi", "last"], ["d"]),          # int scalar
             helper.make_node("ReduceMin", ["Xu", "mid"], ["e"]),          # unsigned rows
             helper.make_node("ArgMin", ["X"], ["f"], axis=1, select_last_index=1),
             helper.make_node("CumSum", ["X", "one"], ["g"], exclusive=1, reverse=1),
             helper.make_node("CumSum", ["X", "two"], ["h"]),
             helper.make_node("LayerNormalization", ["Xd", "scale"], ["i", "j", "k"], axis=1)]
    inits = [const("last", np.array([-1], np.int64)), const("mid", np.array([1], np.int64)),
             const("one", np.array(1, np.int64)), const("two", np.array(2, np.int64)),
             const("scale", np.ones((5, 20)))]
    outs = [tensor(o, t, None) for o, t in [("a", TP.FLOAT), ("b", TP.FLOAT), ("c", TP.FLOAT), ("d", TP.INT32),
                                            ("e", TP.UINT8), ("f", TP.INT64), ("g", TP.FLOAT), ("h", TP.FLOAT),
                                            ("i", TP.DOUBLE), ("j", TP.FLOAT), ("k", TP.FLOAT)]]
    ins = [tensor("X", TP.FLOAT, ["batch", 5, 20]), tensor("Xi", TP.INT32, ["batch", 5, 20]),
           tensor("Xu", TP.UINT8, ["batch", 5, 20]), tensor("Xd", TP.DOUBLE, ["batch", 5, 20])]
    return model(nodes, ins, outs, inits, 18)


def _compile(cmd):
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0 and not done.stderr.strip(), f"{' '.join(map(str, cmd))}\n{done.stderr}"


@pytest.mark.parametrize("compiler", [["g++", "-x", "c++", "-std=c++17", "-Wall", "-Wextra", "-Werror"],
                                      ["clang", "-std=c99", "-Wall", "-Wextra", "-pedantic", "-Werror"]])
def test_c_compiles_as_cplusplus_and_with_clang(compiler, tmp_path):
    if shutil.which(compiler[0]) is None:
        pytest.skip(f"{compiler[0]} is not installed")
    path = save(every_shape_model(), tmp_path)
    for fname, text in generate(path, Options("c", name="model")).items():
        (tmp_path / fname).write_text(text)
    _compile(compiler + ["-O2", "-c", str(tmp_path / "model.c"), "-o", str(tmp_path / "model.o")])


def test_every_shape_model_matches(target, tmp_path):
    m = every_shape_model()
    x = RNG.standard_normal((2, 5, 20))
    sets = [[x.astype(np.float32), (10 * x).astype(np.int32), RNG.integers(0, 256, (2, 5, 20)).astype(np.uint8),
             x]]
    compare(m, sets, target, tmp_path)


def test_c_loops_stay_contiguous(tmp_path):
    """The innermost loop of a middle-axis reduction walks the contiguous inner axis; an
    innermost float reduction accumulates in lanes."""
    path = save(every_shape_model(), tmp_path)
    text = generate(path, Options("c", name="model"))["model.c"]
    block = text[text.index('ReduceMax "'):text.index('ReduceLogSumExp "')]
    assert "X[_i0*100 + _i1*20 + _i2]" in block and "for (int64_t _i2 = 0; _i2 < 20; _i2++)" in block
    block = text[text.index('ReduceSum "'):text.index('ReduceMax "')]
    assert "float _acc[8]" in block
