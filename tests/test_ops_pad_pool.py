"""Pad, MaxPool, AveragePool, GlobalMaxPool and GlobalAveragePool in both targets.

- The ONNX backend node cases of these ops, against the outputs they carry.
- Seeded random configurations (ranks, pads that crop, every mode; kernels, strides, dilations,
  pads, ceil_mode, count_include_pad, auto_pad, Indices with both storage orders; every opset
  form and data type), each either run by onnxruntime and matched by both targets, or refused
  by onnxruntime and by onnx2src alike. Many nodes share one model so the C compiles once.
- Symbolic batch / time axes at two sizes or more, SAME padding whose pads depend on the size,
  inputs shorter than the window, folding, and the refusals with their messages.
"""
import json
import shutil
import subprocess

import numpy as np
import pytest
from onnx import TensorProto as TP
from onnx import helper, numpy_helper

from onnx2src import CompileError, Options, generate
from onnx2src.ir import BY_ONNX

from conftest import assert_close, build, case_data, ort_run, save, single_op_cases

OPS = {"Pad", "MaxPool", "AveragePool", "GlobalMaxPool", "GlobalAveragePool"}
NP_TO_ONNX = {np.dtype(k): v for k, v in [(np.float32, TP.FLOAT), (np.float64, TP.DOUBLE),
                                          (np.int32, TP.INT32), (np.int64, TP.INT64), (np.int8, TP.INT8),
                                          (np.uint8, TP.UINT8), (np.bool_, TP.BOOL)]}


def tensor(name, elem_type, shape):
    return helper.make_tensor_value_info(name, elem_type, shape)


def model(nodes, inputs, outputs, inits=(), opset=19):
    graph = helper.make_graph(nodes, "test_graph", inputs, outputs, list(inits))
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8  # outputs may leave their shape undeclared (the checker would want one)
    return m


def both(m, tmp_path, input_sets, name="model"):
    """Compare both targets with onnxruntime on every input set."""
    path = save(m, tmp_path, name)
    for target in ("numpy", "c"):
        run = build(path, target, tmp_path / target, name=name)
        for inputs in input_sets:
            assert_close(run(*inputs), ort_run(path, inputs), f"{target} {[x.shape for x in inputs]}")


def refused(m, tmp_path, match):
    path = save(m, tmp_path, "refused")
    for target in ("numpy", "c"):
        with pytest.raises(CompileError, match=match):
            generate(path, Options(target))


def ort_accepts(m, inputs) -> bool:
    import onnxruntime as ort
    try:
        sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
        sess.run(None, dict(zip([i.name for i in sess.get_inputs()], inputs)))
        return True
    except Exception:  # onnxruntime refuses the configuration (at load or run time)
        return False


def we_accept(m, tmp_path) -> bool:
    try:
        generate(save(m, tmp_path, "probe"), Options("numpy"))
        return True
    except CompileError:
        return False


# -- the ONNX backend node cases ------------------------------------------------------------------

CASES = single_op_cases(OPS)


def test_node_cases_present():
    assert len(CASES) == 49, [c.name for c in CASES]


ROUNDED = {"test_averagepool_2d_ceil_last_window_starts_on_pad"}  # expected outputs carry 4 decimals


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_node_case(case, target, tmp_path):
    """Pad's cases give pads (and axes) as run-time inputs, which onnx2src refuses (the output
    shape would depend on them); they run with those inputs pinned to the cases' values."""
    path = save(case.model, tmp_path)
    g = case.model.graph
    if any(vi.type.tensor_type.elem_type not in BY_ONNX for vi in list(g.input) + list(g.output)):
        with pytest.raises(CompileError):
            build(path, target, tmp_path / target)
        return
    node = g.node[0]
    pinned = {}
    if node.op_type == "Pad":
        with pytest.raises(CompileError, match="known at compile time"):
            build(path, target, tmp_path / target)
        pinned = {node.input[i]: i for i in (1, 3) if len(node.input) > i and node.input[i]}
    for inputs, expected in case_data(case):
        names = [vi.name for vi in g.input]
        consts = {name: json.dumps(inputs[names.index(name)].tolist()) for name in pinned}
        run = build(path, target, tmp_path / target, consts=consts)
        if case.name in ROUNDED:
            expected = ort_run(path, inputs)
        assert_close(run(*[x for name, x in zip(names, inputs) if name not in pinned]), expected, case.name)


# -- random configurations against onnxruntime ---------------------------------------------------

def values(rng, shape, dtype):
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return rng.integers(0, 2, shape).astype(bool)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return rng.integers(max(info.min, -100), min(info.max, 100) + 1, shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def grouped(configs, tmp_path, opset, name):
    """One model holding every accepted config's node; `configs` are (node, inputs, outputs,
    inits, arrays) with names unique across configs. Returns how many ran."""
    nodes, inputs, outputs, inits, arrays = [], [], [], [], []
    for node, ins, outs, its, arrs in configs:
        nodes.append(node), inputs.extend(ins), outputs.extend(outs), inits.extend(its), arrays.extend(arrs)
    both(model(nodes, inputs, outputs, inits, opset=opset), tmp_path, [arrays], name)
    return len(configs)


def pad_config(rng, k, opset):
    """A random Pad node (names suffixed with k) at `opset`, and its input arrays."""
    rank = int(rng.integers(1, 5))
    shape = [int(d) for d in rng.integers(1, 6, rank)]
    modes = ["constant", "reflect", "edge"] + (["wrap"] if opset >= 19 else [])
    mode = modes[rng.integers(len(modes))]
    dtypes = [np.float32] if opset < 11 else [np.float32, np.float64, np.int32, np.int64, np.int8, np.uint8]
    if opset >= 13 and mode in ("constant", "edge"):
        dtypes.append(np.bool_)
    dtype = np.dtype(dtypes[rng.integers(len(dtypes))])
    axes = list(range(rank))
    if opset >= 18 and rng.random() < 0.5:
        axes = sorted(rng.choice(rank, int(rng.integers(1, rank + 1)), replace=False).tolist())
        axes = [a - rank if rng.random() < 0.5 else a for a in axes]
    pads = [int(p) for p in rng.integers(-2, 4, 2 * len(axes))]
    x, y = f"x{k}", f"y{k}"
    data = values(rng, shape, dtype)
    ins, inits, arrays = [tensor(x, NP_TO_ONNX[dtype], shape)], [], [data]
    attrs = {"mode": mode} if mode != "constant" or rng.random() < 0.5 else {}
    if opset < 11:
        if mode == "constant" and rng.random() < 0.7:
            attrs["value"] = float(rng.integers(-5, 5))
        node = helper.make_node("Pad", [x], [y], pads=pads, **attrs)
        return node, ins, [tensor(y, NP_TO_ONNX[dtype], None)], inits, arrays
    names = [x, f"pads{k}"]
    inits.append(numpy_helper.from_array(np.array(pads, np.int64), f"pads{k}"))
    if mode == "constant" and rng.random() < 0.7:
        value = values(rng, [], dtype)
        names.append(f"value{k}")
        if rng.random() < 0.5:
            inits.append(numpy_helper.from_array(value, f"value{k}"))
        else:  # known only at run time
            ins.append(tensor(f"value{k}", NP_TO_ONNX[dtype], []))
            arrays.append(value)
    if axes != list(range(rank)):
        names += [""] * (3 - len(names)) + [f"axes{k}"]
        inits.append(numpy_helper.from_array(np.array(axes, np.int64), f"axes{k}"))
    node = helper.make_node("Pad", names, [y], **attrs)
    return node, ins, [tensor(y, NP_TO_ONNX[dtype], None)], inits, arrays


@pytest.mark.parametrize("opset", [7, 11, 13, 18, 19, 21])  # 7: Pad-2 (attributes)
def test_pad_random(opset, tmp_path):
    rng = np.random.default_rng(opset)
    accepted, refused_both = [], 0
    for k in range(40):
        node, ins, outs, inits, arrays = config = pad_config(rng, k, opset)
        alone = model([node], ins, outs, inits, opset=opset)
        ours, theirs = we_accept(alone, tmp_path), ort_accepts(alone, arrays)
        assert ours == theirs, f"onnx2src {'accepts' if ours else 'refuses'}, onnxruntime does not: {node}"
        if ours:
            accepted.append(config)
        else:
            refused_both += 1
    assert len(accepted) >= 20 and refused_both >= 1
    grouped(accepted, tmp_path, opset, f"pad{opset}")


def test_pad_values_and_sizes(tmp_path):
    """Constant values at the ends of their types' ranges and NaN, True, an output cropped to
    nothing and an empty input."""
    specs = [("x0", TP.INT64, [2], [1, 1], np.array(-2**63)),
             ("x1", TP.UINT64, [2], [1, 1], np.array(2**64 - 1, np.uint64)),
             ("x2", TP.DOUBLE, [2], [1, 1], np.array(np.nan)),
             ("x3", TP.BOOL, [2, 3], [1, 0, 0, 2], np.array(True)),
             ("x4", TP.FLOAT, [2, 3], [0, -3, 0, 0], None), ("x5", TP.FLOAT, [0, 3], [1, 0, 1, 0], None),
             ("x6", TP.INT8, [3], [2, 1], np.array(-128, np.int8))]
    nodes, inits, ins, outs, arrays = [], [], [], [], []
    rng = np.random.default_rng(10)
    for k, (x, elem, shape, pads, value) in enumerate(specs):
        inits.append(numpy_helper.from_array(np.array(pads, np.int64), f"p{k}"))
        if value is not None:
            inits.append(numpy_helper.from_array(value, f"v{k}"))
        nodes.append(helper.make_node("Pad", [x, f"p{k}"] + ([f"v{k}"] if value is not None else []), [f"y{k}"]))
        ins.append(tensor(x, elem, shape))
        outs.append(tensor(f"y{k}", elem, None))
        arrays.append(values(rng, shape, helper.tensor_dtype_to_np_dtype(elem)))
    both(model(nodes, ins, outs, inits), tmp_path, [arrays])


def pool_config(rng, k, op, opset, rank=None, dtype=np.float32, indices=False):
    """A random MaxPool / AveragePool node over [2, 3, spatial...] and its input."""
    r = rank or int(rng.integers(1, 3))
    spatial = [int(d) for d in rng.integers(1, 9, r)]
    kernel = [int(v) for v in rng.integers(1, 4, r)]
    attrs = {"kernel_shape": kernel}
    if rng.random() < 0.7:
        attrs["strides"] = [int(v) for v in rng.integers(1, 4, r)]
    dilated = (op == "MaxPool" and opset >= 10) or (op == "AveragePool" and opset >= 19)
    auto = ["NOTSET", "NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"][rng.integers(5)]
    if auto != "NOTSET":
        attrs["auto_pad"] = auto
    elif rng.random() < 0.7:
        attrs["pads"] = [int(rng.integers(0, kv)) for kv in kernel * 2]
    if dilated and auto == "NOTSET" and rng.random() < 0.5:
        attrs["dilations"] = [int(v) for v in rng.integers(1, 3, r)]
    if opset >= 10 and auto == "NOTSET" and rng.random() < 0.5:
        attrs["ceil_mode"] = 1
    if op == "AveragePool" and opset >= 7 and rng.random() < 0.5:
        attrs["count_include_pad"] = 1
    outs = [f"y{k}"]
    if indices:
        outs.append(f"i{k}")
        if rng.random() < 0.5:
            attrs["storage_order"] = 1
    shape = [2, 3] + spatial
    node = helper.make_node(op, [f"x{k}"], outs, **attrs)
    outputs = [tensor(f"y{k}", NP_TO_ONNX[np.dtype(dtype)], None)] + (
        [tensor(f"i{k}", TP.INT64, None)] if indices else [])
    return node, [tensor(f"x{k}", NP_TO_ONNX[np.dtype(dtype)], shape)], outputs, [], [values(rng, shape, dtype)]


POOL_RUNS = [("MaxPool", 7, np.float32, False), ("MaxPool", 8, np.float32, True),
             ("MaxPool", 10, np.float32, True), ("MaxPool", 11, np.float64, False),
             ("MaxPool", 12, np.int8, False), ("MaxPool", 12, np.uint8, True),
             ("MaxPool", 22, np.float32, True), ("AveragePool", 7, np.float32, False),
             ("AveragePool", 10, np.float32, False),
             ("AveragePool", 11, np.float32, False), ("AveragePool", 19, np.float32, False),
             ("AveragePool", 22, np.float32, False)]


@pytest.mark.parametrize("op, opset, dtype, indices", POOL_RUNS,
                         ids=[f"{op}-{opset}-{np.dtype(t).name}{'-indices' if i else ''}"
                              for op, opset, t, i in POOL_RUNS])
def test_pool_random(op, opset, dtype, indices, tmp_path):
    rng = np.random.default_rng(opset * 7 + len(op) + indices)
    accepted = []
    for k in range(40):
        node, ins, outs, inits, arrays = config = pool_config(rng, k, op, opset, dtype=dtype, indices=indices)
        alone = model([node], ins, outs, inits, opset=opset)
        a = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        deliberate = a.get("auto_pad", b"NOTSET") == b"VALID" and a.get("ceil_mode")
        if not we_accept(alone, tmp_path):
            continue  # those onnxruntime takes too are tested as refusals below
        assert ort_accepts(alone, arrays), f"onnx2src accepts what onnxruntime refuses: {node}"
        assert not deliberate
        accepted.append(config)
    assert len(accepted) >= 20
    grouped(accepted, tmp_path, opset, "pool")


def test_pool_3d(tmp_path):
    rng = np.random.default_rng(3)
    configs = [pool_config(rng, k, op, 19, rank=3) for k, op in enumerate(["MaxPool", "AveragePool"] * 4)]
    configs = [c for c in configs if we_accept(model([c[0]], c[1], c[2], opset=19), tmp_path)]
    assert len(configs) >= 4
    grouped(configs, tmp_path, 19, "pool3d")


def test_global_pools(tmp_path):
    nodes = [helper.make_node(op, [f"x{k}"], [f"y{k}"]) for k, op in
             enumerate(["GlobalMaxPool", "GlobalAveragePool"] * 3)]
    shapes = [[2, 3, 5], [2, 3, 5], [1, 2, 3, 4], [1, 2, 3, 4], [1, 1, 2, 2, 3], [1, 1, 2, 2, 3]]
    types = [TP.FLOAT] * 6
    m = model(nodes, [tensor(f"x{k}", t, s) for k, (s, t) in enumerate(zip(shapes, types))],
              [tensor(f"y{k}", t, None) for k, t in enumerate(types)], opset=22)
    rng = np.random.default_rng(0)
    both(m, tmp_path, [[values(rng, s, np.float32 if t == TP.FLOAT else np.float64)
                        for s, t in zip(shapes, types)]])


def test_double_pools(tmp_path):
    """AveragePool, GlobalAveragePool and GlobalMaxPool in double, which onnxruntime has no
    kernels for: compared with onnxruntime on the same model in float."""
    rng = np.random.default_rng(8)
    configs = [pool_config(rng, k, "AveragePool", 19, dtype=np.float64) for k in range(12)]
    configs = [c for c in configs if we_accept(model([c[0]], c[1], c[2], opset=19), tmp_path)]
    nodes = [c[0] for c in configs] + [helper.make_node("GlobalAveragePool", ["g"], ["ga"]),
                                       helper.make_node("GlobalMaxPool", ["g"], ["gm"])]
    names = [c[1][0].name for c in configs] + ["g"]
    shapes = [[d.dim_value for d in c[1][0].type.tensor_type.shape.dim] for c in configs] + [[2, 3, 4, 5]]
    outs = [o.name for c in configs for o in c[2]] + ["ga", "gm"]
    arrays = [c[4][0] for c in configs] + [values(rng, (2, 3, 4, 5), np.float64)]
    for elem, name in [(TP.DOUBLE, "doubles"), (TP.FLOAT, "floats")]:
        m = model(nodes, [tensor(n, elem, s) for n, s in zip(names, shapes)],
                  [tensor(o, elem, None) for o in outs])
        save(m, tmp_path, name)
    expected = ort_run(str(tmp_path / "floats.onnx"), [a.astype(np.float32) for a in arrays])
    for target in ("numpy", "c"):
        got = build(str(tmp_path / "doubles.onnx"), target, tmp_path / target, name="doubles")(*arrays)
        assert_close(got, [e.astype(np.float64) for e in expected], target)


def test_max_infinities_and_ties(tmp_path):
    """Max is the first largest element of the window: -inf stays -inf, ties (uint8 zeros, int8
    -128) give the first index, as onnxruntime's kernel with Indices computes them."""
    nodes = [helper.make_node("MaxPool", ["x"], ["y", "i"], kernel_shape=[2], strides=[2]),
             helper.make_node("MaxPool", ["x2"], ["y2", "i2"], kernel_shape=[2, 2], pads=[1, 1, 0, 0]),
             helper.make_node("MaxPool", ["u"], ["yu", "iu"], kernel_shape=[3], pads=[1, 1]),
             helper.make_node("MaxPool", ["s"], ["ys", "is"], kernel_shape=[3], pads=[2, 1], storage_order=1)]
    m = model(nodes, [tensor("x", TP.FLOAT, [1, 1, 6]), tensor("x2", TP.FLOAT, [1, 1, 2, 2]),
                      tensor("u", TP.UINT8, [1, 2, 4]), tensor("s", TP.INT8, [1, 1, 5])],
              [tensor(n, t, None) for n, t in [("y", TP.FLOAT), ("i", TP.INT64), ("y2", TP.FLOAT),
                                               ("i2", TP.INT64), ("yu", TP.UINT8), ("iu", TP.INT64),
                                               ("ys", TP.INT8), ("is", TP.INT64)]])
    x = np.array([[[-np.inf, -np.inf, np.inf, 1, -3, -np.inf]]], np.float32)
    x2 = np.array([[[[-np.inf, -np.inf], [-np.inf, 2]]]], np.float32)
    u = np.array([[[0, 0, 0, 5], [0, 0, 0, 0]]], np.uint8)
    s = np.array([[[-128, -128, -128, 5, -128]]], np.int8)
    both(m, tmp_path, [[x, x2, u, s], [np.full((1, 1, 6), -np.inf, np.float32), x2, u * 0, s]])


def test_max_nan_skipped(tmp_path):
    """NaN elements are skipped (onnxruntime's kernels disagree among themselves on NaN, so the
    targets are compared with each other and with numpy.fmax)."""
    m = model([helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2], strides=[1]),
               helper.make_node("GlobalMaxPool", ["x"], ["g"])],
              [tensor("x", TP.FLOAT, [1, 1, 5])], [tensor("y", TP.FLOAT, None), tensor("g", TP.FLOAT, None)])
    path = save(m, tmp_path)
    x = np.array([[[np.nan, 1, np.nan, np.nan, 3]]], np.float32)
    for target in ("numpy", "c"):
        y, g = build(path, target, tmp_path / target)(x)
        np.testing.assert_array_equal(y, [[[1, 1, np.nan, 3]]])
        np.testing.assert_array_equal(g, [[[3]]])


# -- symbolic dims ---------------------------------------------------------------------------------

def test_pad_symbolic(tmp_path):
    """Pads on a time axis of symbolic size, in every mode, and crops of it."""
    specs = [("constant", [0, 2, 0, 0, 3, 0]), ("constant", [0, -1, 1, 0, 2, 0]),
             ("edge", [0, 3, 0, 0, 2, 1]), ("reflect", [0, 1, 0, 0, 1, 0]),
             ("wrap", [1, 4, 0, 0, 5, 2]), ("edge", [0, 0, -1, 0, 2, 1]), ("reflect", [0, 1, 2, 0, 0, 2])]
    nodes, inits, outs = [], [], []
    for k, (mode, pads) in enumerate(specs):
        inits.append(numpy_helper.from_array(np.array(pads, np.int64), f"p{k}"))
        nodes.append(helper.make_node("Pad", ["x", f"p{k}"], [f"y{k}"], mode=mode))
        outs.append(tensor(f"y{k}", TP.FLOAT, None))
    m = model(nodes, [tensor("x", TP.FLOAT, ["batch", "seq", 3])], outs, inits)
    rng = np.random.default_rng(1)
    both(m, tmp_path, [[values(rng, (1, 2, 3), np.float32)], [values(rng, (3, 7, 3), np.float32)]])


def test_pad_symbolic_crop_to_empty(tmp_path):
    """Cropping 3 from an axis of size seq: seq - 3 elements, clamped at 0 as a slice is
    (onnxruntime refuses a negative size; only sizes it takes are compared)."""
    m = model([helper.make_node("Pad", ["x", "p", "v"], ["y"])],
              [tensor("x", TP.INT64, ["seq", 2])], [tensor("y", TP.INT64, None)],
              [numpy_helper.from_array(np.array([-2, 1, -1, 0], np.int64), "p"),
               numpy_helper.from_array(np.array(7, np.int64), "v")])
    both(m, tmp_path, [[np.arange(6, dtype=np.int64).reshape(3, 2)],
                       [np.arange(12, dtype=np.int64).reshape(6, 2)]])
    path = save(m, tmp_path)
    for target in ("numpy", "c"):
        (y,) = build(path, target, tmp_path / f"short_{target}")(np.arange(4, dtype=np.int64).reshape(2, 2))
        assert y.shape == (0, 3)


def test_pool_symbolic(tmp_path):
    """Pooling over a time axis of symbolic size: explicit pads, ceil mode, dilations, and SAME
    padding whose pads depend on the size (written at run time for NumPy)."""
    specs = [("MaxPool", dict(kernel_shape=[3], strides=[2], pads=[1, 1])),
             ("MaxPool", dict(kernel_shape=[2], strides=[2], ceil_mode=1)),
             ("MaxPool", dict(kernel_shape=[3], strides=[1], dilations=[2], pads=[2, 2])),
             ("AveragePool", dict(kernel_shape=[4], strides=[2], auto_pad="SAME_UPPER")),
             ("AveragePool", dict(kernel_shape=[4], strides=[3], auto_pad="SAME_LOWER", count_include_pad=1)),
             ("MaxPool", dict(kernel_shape=[3], strides=[2], auto_pad="SAME_LOWER")),
             ("AveragePool", dict(kernel_shape=[3], strides=[2], pads=[1, 2], ceil_mode=1, count_include_pad=1)),
             ("MaxPool", dict(kernel_shape=[2], strides=[1], auto_pad="VALID")),
             ("GlobalAveragePool", {}), ("GlobalMaxPool", {})]
    nodes = [helper.make_node(op, ["x"], [f"y{k}"], **a) for k, (op, a) in enumerate(specs)]
    nodes.append(helper.make_node("MaxPool", ["x"], ["m", "mi"], kernel_shape=[3], strides=[2], pads=[1, 1]))
    nodes.append(helper.make_node("MaxPool", ["x"], ["s", "si"], kernel_shape=[3], strides=[2],
                                  auto_pad="SAME_LOWER"))
    m = model(nodes, [tensor("x", TP.FLOAT, ["batch", 2, "seq"])],
              [tensor(f"y{k}", TP.FLOAT, None) for k in range(len(specs))] +
              [tensor("m", TP.FLOAT, None), tensor("mi", TP.INT64, None),
               tensor("s", TP.FLOAT, None), tensor("si", TP.INT64, None)])
    rng = np.random.default_rng(2)
    both(m, tmp_path, [[values(rng, (1, 2, n), np.float32)] for n in (2, 5, 7, 8, 12)])


def test_pool_2d_symbolic(tmp_path):
    nodes = [helper.make_node("MaxPool", ["x"], ["y0"], kernel_shape=[2, 3], strides=[2, 2], pads=[0, 1, 1, 1]),
             helper.make_node("AveragePool", ["x"], ["y1"], kernel_shape=[3, 2], strides=[2, 2],
                              auto_pad="SAME_UPPER", count_include_pad=1),
             helper.make_node("MaxPool", ["x"], ["y2", "i2"], kernel_shape=[2, 2], strides=[1, 2],
                              storage_order=1)]
    m = model(nodes, [tensor("x", TP.FLOAT, ["n", 1, "h", "w"])],
              [tensor("y0", TP.FLOAT, None), tensor("y1", TP.FLOAT, None), tensor("y2", TP.FLOAT, None),
               tensor("i2", TP.INT64, None)])
    rng = np.random.default_rng(4)
    both(m, tmp_path, [[values(rng, (1, 1, 4, 5), np.float32)], [values(rng, (2, 1, 7, 6), np.float32)]])


def test_pool_shorter_than_window(tmp_path):
    """A time axis shorter than the window (by less than the stride) gives one partial window,
    as onnxruntime computes it."""
    m = model([helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[4], strides=[3]),
               helper.make_node("AveragePool", ["x"], ["a"], kernel_shape=[4], strides=[3], ceil_mode=1)],
              [tensor("x", TP.FLOAT, [1, 1, "seq"])], [tensor("y", TP.FLOAT, None), tensor("a", TP.FLOAT, None)])
    rng = np.random.default_rng(5)
    both(m, tmp_path, [[values(rng, (1, 1, n), np.float32)] for n in (2, 3, 4, 9)])


# -- folding ---------------------------------------------------------------------------------------

def test_pad_folds_on_constants(tmp_path):
    """A Pad of a constant is computed at compile time: no Pad code is generated."""
    m = model([helper.make_node("Pad", ["w", "p"], ["wp"], mode="reflect"),
               helper.make_node("Add", ["x", "wp"], ["y"])],
              [tensor("x", TP.FLOAT, [2, 6])], [tensor("y", TP.FLOAT, None)],
              [numpy_helper.from_array(np.arange(8, dtype=np.float32).reshape(2, 4), "w"),
               numpy_helper.from_array(np.array([0, 1, 0, 1], np.int64), "p")])
    path = save(m, tmp_path)
    for target in ("numpy", "c"):
        assert "Pad" not in "".join(generate(path, Options(target)).values())
    both(m, tmp_path, [[values(np.random.default_rng(6), (2, 6), np.float32)]])


# -- refusals -----------------------------------------------------------------------------------------

REFUSED_POOLS = [
    ("MaxPool", dict(kernel_shape=[2], auto_pad="SAME_UPPER", dilations=[2]), "dilations"),
    ("MaxPool", dict(kernel_shape=[2], auto_pad="VALID", ceil_mode=1), "ceil_mode"),
    ("AveragePool", dict(kernel_shape=[2], pads=[2, 0]), "smaller than the kernel"),
    ("MaxPool", dict(kernel_shape=[2], pads=[-1, 0]), "at least 0"),
    ("MaxPool", dict(kernel_shape=[1], strides=[3], auto_pad="SAME_UPPER"), "negative pad"),
    ("MaxPool", dict(kernel_shape=[9]), "larger than the padded input"),
    ("MaxPool", dict(kernel_shape=[2, 2]), "2 values for 1 spatial axes"),
    ("MaxPool", dict(kernel_shape=[2], strides=[0]), "at least 1"),
    ("MaxPool", dict(kernel_shape=[0]), "at least 1"),
    ("MaxPool", dict(kernel_shape=[2**40], pads=[2**40 - 1, 0]), "beyond 2\\^31"),
    ("MaxPool", dict(), "\"kernel_shape\" is missing"),
    ("MaxPool", dict(kernel_shape=[2], auto_pad="FOO"), "auto_pad"),
    ("AveragePool", dict(kernel_shape=[2], count_include_pad=2), "0 or 1"),
]


@pytest.mark.parametrize("op, attrs, match", REFUSED_POOLS, ids=[m for _, _, m in REFUSED_POOLS])
def test_pool_refused(op, attrs, match, tmp_path):
    m = helper.make_model(helper.make_graph(
        [helper.make_node(op, ["x"], ["y"], **attrs)], "g", [tensor("x", TP.FLOAT, [1, 2, 5])],
        [tensor("y", TP.FLOAT, None)]), opset_imports=[helper.make_opsetid("", 19)])
    refused(m, tmp_path, match)


def test_pool_refused_types(tmp_path):
    for op, opset, elem in [("MaxPool", 11, TP.INT8), ("AveragePool", 19, TP.INT32),
                            ("GlobalMaxPool", 1, TP.INT64), ("MaxPool", 12, TP.INT32)]:
        m = helper.make_model(helper.make_graph(
            [helper.make_node(op, ["x"], ["y"], **({} if op.startswith("Global") else {"kernel_shape": [2]}))],
            "g", [tensor("x", elem, [1, 2, 5])], [tensor("y", elem, None)]),
            opset_imports=[helper.make_opsetid("", opset)])
        refused(m, tmp_path, "is not supported|does not take there")  # the op, or the spec's types


def test_indices_without_y_refused(tmp_path):
    m = model([helper.make_node("MaxPool", ["x"], ["y", "i"], kernel_shape=[2])],
              [tensor("x", TP.FLOAT, [1, 1, 4])], [tensor("i", TP.INT64, None)])
    refused(m, tmp_path, "Indices are used but not its output Y")


def test_pool_symbolic_same_refused(tmp_path):
    """SAME with a kernel smaller than the stride needs a negative pad for some sizes."""
    m = model([helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[1], strides=[2], auto_pad="SAME_UPPER")],
              [tensor("x", TP.FLOAT, [1, 1, "seq"])], [tensor("y", TP.FLOAT, None)])
    refused(m, tmp_path, "negative pad")


REFUSED_PADS = [
    ("reflect", [4, 0], [4], None, "exceed"),
    ("edge", [-2, -2], [4], None, "at least one element"),
    ("constant", [-3, -2], [4], None, "with size -1"),
    ("wrap", [1, 1], [4], 18, "not supported"),
    ("foo", [1, 1], [4], None, "not supported"),
    ("constant", [1, 1, 1], [4], None, "two per axis"),
    ("constant", [], [], None, "no axis to pad"),
    ("edge", [0, 2**63 - 1], [4], None, "beyond"),
    ("reflect", [1, 0], ["seq"], None, None),  # accepted: the reflection continues periodically
    ("edge", [0, -2], ["seq"], None, "at least one element"),
]


@pytest.mark.parametrize("mode, pads, shape, opset, match", REFUSED_PADS, ids=[str(p[:3]) for p in REFUSED_PADS])
def test_pad_refused(mode, pads, shape, opset, match, tmp_path):
    m = helper.make_model(helper.make_graph(
        [helper.make_node("Pad", ["x", "p"], ["y"], mode=mode)], "g", [tensor("x", TP.FLOAT, shape)],
        [tensor("y", TP.FLOAT, None)], [numpy_helper.from_array(np.array(pads, np.int64), "p")]),
        opset_imports=[helper.make_opsetid("", opset or 19)])
    if match is None:
        for target in ("numpy", "c"):
            generate(save(m, tmp_path), Options(target))
    else:
        refused(m, tmp_path, match)


def test_pad_runtime_pads_refused(tmp_path):
    m = model([helper.make_node("Pad", ["x", "p"], ["y"])],
              [tensor("x", TP.FLOAT, [4]), tensor("p", TP.INT64, [2])], [tensor("y", TP.FLOAT, None)])
    refused(m, tmp_path, "known at compile time")


def test_reflect_beyond_length_is_periodic(tmp_path):
    """With a symbolic length, reflect pads longer than the axis less one continue the
    reflection (numpy.pad's rule; onnxruntime refuses such inputs): 1 2 3 with 4 before."""
    m = model([helper.make_node("Pad", ["x", "p"], ["y"], mode="reflect")],
              [tensor("x", TP.FLOAT, ["n"])], [tensor("y", TP.FLOAT, None)],
              [numpy_helper.from_array(np.array([4, 1], np.int64), "p")])
    path = save(m, tmp_path)
    x = np.array([1, 2, 3], np.float32)
    for target in ("numpy", "c"):
        (y,) = build(path, target, tmp_path / target)(x)
        np.testing.assert_array_equal(y, np.pad(x, (4, 1), mode="reflect"))
        (y,) = build(path, target, tmp_path / f"{target}1")(x[:1])
        np.testing.assert_array_equal(y, np.full(6, 1, np.float32))


# -- portability of the generated C -------------------------------------------------------------------

def test_c_compiles_with_clang_and_as_cpp(tmp_path):
    """Every branch of the two C templates, warning-free under clang and as C++."""
    pads = {"p0": [0, 0, 2, 0, 0, -1], "p1": [0, 1, 1, 0, -1, 2], "p2": [0, 0, 0, 0, 0, 3],
            "p3": [0, 1, 1, 0, 0, 2],
            "p4": [0, 0, 2, 1, 0, 0, 1, -1]}
    nodes = [helper.make_node("MaxPool", ["x"], ["y0", "i0"], kernel_shape=[3], strides=[2],
                              auto_pad="SAME_UPPER"),
             helper.make_node("AveragePool", ["x"], ["y1"], kernel_shape=[4], strides=[2], auto_pad="SAME_LOWER"),
             helper.make_node("AveragePool", ["x"], ["y2"], kernel_shape=[3], pads=[1, 2], ceil_mode=1,
                              count_include_pad=1),
             helper.make_node("GlobalAveragePool", ["x"], ["y3"]),
             helper.make_node("GlobalMaxPool", ["x"], ["y4"]),
             helper.make_node("MaxPool", ["q"], ["y5", "i5"], kernel_shape=[3, 2], strides=[2, 1],
                              pads=[1, 1, 0, 0], storage_order=1),
             helper.make_node("Pad", ["x", "p0"], ["z0"]), helper.make_node("Pad", ["x", "p1", "v"], ["z1"]),
             helper.make_node("Pad", ["x", "p3"], ["z2"], mode="reflect"),
             helper.make_node("Pad", ["x", "p3"], ["z3"], mode="edge"),
             helper.make_node("Pad", ["x", "p2"], ["z4"], mode="wrap"),
             helper.make_node("Pad", ["q", "p4"], ["z5"], mode="reflect")]
    outs = [("y0", TP.FLOAT), ("i0", TP.INT64), ("y1", TP.FLOAT), ("y2", TP.FLOAT), ("y3", TP.FLOAT),
            ("y4", TP.FLOAT), ("y5", TP.INT8), ("i5", TP.INT64)] + [(f"z{k}", TP.FLOAT) for k in range(5)] + [
            ("z5", TP.INT8)]
    m = model(nodes, [tensor("x", TP.FLOAT, ["batch", 2, "seq"]), tensor("q", TP.INT8, [1, 2, 5, 4]),
                      tensor("v", TP.FLOAT, [])], [tensor(n, t, None) for n, t in outs],
              [numpy_helper.from_array(np.array(p, np.int64), k) for k, p in pads.items()])
    files = generate(save(m, tmp_path), Options("c", name="pp"))
    for fname, text in files.items():
        (tmp_path / fname).write_text(text)
    commands = [["clang", "-std=c99", "-Wall", "-Wextra", "-pedantic", "-Werror"],
                ["g++", "-x", "c++", "-std=c++17", "-Wall", "-Wextra", "-Werror"]]
    for cmd in commands:
        if shutil.which(cmd[0]) is None:
            pytest.skip(f"{cmd[0]} is not installed")
        done = subprocess.run(cmd + ["-c", str(tmp_path / "pp.c"), "-o", str(tmp_path / "pp.o")],
                              capture_output=True, text=True)
        assert done.returncode == 0 and not done.stderr, done.stderr
    rng = np.random.default_rng(9)
    both(m, tmp_path, [[values(rng, (2, 2, n), np.float32), values(rng, (1, 2, 5, 4), np.int8),
                        np.array(2.5, np.float32)] for n in (3, 7)])
