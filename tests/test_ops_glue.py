"""Size, Tile, Range and Einsum (ops/glue.py, ops/einsum.py), in both targets.

The ONNX backend node cases of the four ops, compared with the outputs they carry; hand-made
models with symbolic dims (each run at two sizes) at every opset version of each op, compared
with onnxruntime (with np.einsum for ellipses of different ranks, which onnxruntime refuses);
and the refusals: Einsum equations outside the supported set (named in the error), run-time
arguments that disagree with a declared shape. (Tile-1, opsets 1 to 5, is older than the
opset 7 the frontend accepts.)
"""
import numpy as np
import pytest
from onnx import TensorProto as T, helper, numpy_helper

from onnx2src import Options, generate
from onnx2src.ir import BY_ONNX, CompileError

from conftest import assert_close, build, check_node_case, ort_run, save, single_op_cases

OPS = {"Size", "Tile", "Range", "Einsum"}
ESHAPE = 3  # NAME_ESHAPE: run-time arguments disagree with the declared shape
RNG = np.random.default_rng(8)


CASES = single_op_cases(OPS)


def _equation(case):
    node = case.model.graph.node[0]
    return next((helper.get_attribute_value(a).decode() for a in node.attribute if a.name == "equation"), None)


def unsupported_reason(case):
    g = case.model.graph
    if any(vi.type.tensor_type.elem_type not in BY_ONNX for vi in list(g.input) + list(g.output)):
        return "data type"
    eq = _equation(case)
    if eq is not None and eq.replace(" ", "").split("->")[0].count("ii"):
        return "equation"  # a diagonal: an index repeated within one operand
    return None


def test_node_case_count():
    assert len(CASES) == 17  # Size 2, Tile 2, Range 4, Einsum 9
    assert sum(unsupported_reason(c) is None for c in CASES) == 11


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_node_case(case, target, tmp_path):
    reason = unsupported_reason(case)
    error = check_node_case(case, target, tmp_path, refused=reason is not None)
    if reason == "equation":
        assert f'"{_equation(case)}"' in str(error)


# -- hand-made models -----------------------------------------------------------------------------

def model(nodes, inputs, outputs, opset=17, inits=()):
    """A model; inputs/outputs are (name, elem type, shape or None)."""
    vi = helper.make_tensor_value_info
    g = helper.make_graph(nodes, "g", [vi(*i) for i in inputs],
                          [vi(*o) for o in outputs], list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8 if opset <= 17 else 10
    return m


def const(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def check(m, target, tmp_path, feeds, reference=None):
    """Compile `m`, run every input set in `feeds`, compare with onnxruntime (or `reference`)."""
    path = save(m, tmp_path)
    run = build(path, target, tmp_path / target)
    for inputs in feeds:
        expected = reference(*inputs) if reference else ort_run(path, inputs)
        assert_close(run(*inputs), [np.asarray(e) for e in expected], str(inputs[0].shape))
    return run


def rand(*shape, dtype=np.float32):
    return np.asarray(RNG.standard_normal(shape), dtype=dtype)


# -- Size -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("opset", [7, 13, 19, 21, 23, 24, 25])
def test_size_symbolic(opset, target, tmp_path):
    """Size of [batch, seq, 4] is 4*batch*seq: written at run time, and usable as a shape."""
    unsqueeze = (helper.make_node("Unsqueeze", ["n"], ["n1"], axes=[0]) if opset < 13 else
                 helper.make_node("Unsqueeze", ["n", "zero"], ["n1"]))
    m = model([helper.make_node("Size", ["x"], ["n"]), unsqueeze,
               helper.make_node("Reshape", ["x", "n1"], ["flat"])],
              [("x", T.FLOAT, ["batch", "seq", 4])], [("n", T.INT64, []), ("flat", T.FLOAT, None)],
              opset, inits=[const("zero", np.array([0], np.int64))] if opset >= 13 else [])
    check(m, target, tmp_path, [[rand(2, 3, 4)], [rand(1, 5, 4)]])


def test_size_static_folds(target, tmp_path):
    """Size of a static shape is a constant: Size * x needs no Size code at run time."""
    m = model([helper.make_node("Size", ["x"], ["n"]), helper.make_node("Cast", ["n"], ["nf"], to=T.FLOAT),
               helper.make_node("Mul", ["x", "nf"], ["y"])],
              [("x", T.FLOAT, [2, 3])], [("y", T.FLOAT, [2, 3])])
    check(m, target, tmp_path, [[rand(2, 3)]])
    text = next(iter(generate(save(m, tmp_path), Options(target, name="model")).values()))
    assert "Size" not in text.split("def run" if target == "numpy" else "_run(")[1]


def test_size_empty(target, tmp_path):
    m = model([helper.make_node("Size", ["x"], ["n"])], [("x", T.FLOAT, ["batch", 0])], [("n", T.INT64, [])])
    check(m, target, tmp_path, [[rand(3, 0)]])


# -- Tile -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("opset", [7, 13])
@pytest.mark.parametrize("repeats", [[1, 2, 3], [2, 1, 1], [1, 1, 1], [3, 2, 2], [1, 0, 2]])
def test_tile_symbolic(opset, repeats, target, tmp_path):
    m = model([helper.make_node("Tile", ["x", "r"], ["y"])], [("x", T.FLOAT, ["batch", "seq", 3])],
              [("y", T.FLOAT, None)], opset, inits=[const("r", np.array(repeats, np.int64))])
    check(m, target, tmp_path, [[rand(2, 5, 3)], [rand(1, 1, 3)]])


@pytest.mark.parametrize("dtype", [np.int64, np.uint8, np.bool_, np.double])
def test_tile_types(dtype, target, tmp_path):
    m = model([helper.make_node("Tile", ["x", "r"], ["y"])],
              [("x", helper.np_dtype_to_tensor_dtype(np.dtype(dtype)), [2, 3])], [("y", helper.np_dtype_to_tensor_dtype(np.dtype(dtype)), None)],
              13, inits=[const("r", np.array([2, 2], np.int64))])
    check(m, target, tmp_path, [[(rand(2, 3) * 10).astype(dtype)]])


def test_tile_scalar(target, tmp_path):
    m = model([helper.make_node("Tile", ["x", "r"], ["y"])], [("x", T.FLOAT, [])], [("y", T.FLOAT, None)],
              13, inits=[const("r", np.zeros([0], np.int64))])
    check(m, target, tmp_path, [[np.array(1.5, np.float32)]])


def test_tile_repeats_from_shape(target, tmp_path):
    """repeats = [batch, 1] from a Shape chain: a symbolic repeat count."""
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Slice", ["s", "zero", "one"], ["b"]),
             helper.make_node("Concat", ["b", "one"], ["r"], axis=0),
             helper.make_node("Tile", ["w", "r"], ["y"]),
             helper.make_node("Add", ["y", "x"], ["z"])]
    m = model(nodes, [("x", T.FLOAT, ["batch", 3])], [("z", T.FLOAT, None)], 13,
              inits=[const("zero", np.array([0], np.int64)), const("one", np.array([1], np.int64)),
                     const("w", rand(1, 3))])
    check(m, target, tmp_path, [[rand(4, 3)], [rand(1, 3)]])


def test_tile_of_shape_folds(target, tmp_path):
    """Tile of a Shape output folds to symbolic sizes, written at run time."""
    m = model([helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Tile", ["s", "r"], ["y"])],
              [("x", T.FLOAT, ["batch", "seq"])], [("y", T.INT64, None)], 13,
              inits=[const("r", np.array([2], np.int64))])
    check(m, target, tmp_path, [[rand(2, 5)], [rand(3, 1)]])
    text = next(iter(generate(save(m, tmp_path), Options(target, name="model")).values()))
    assert "np.tile" not in text and "_i0" not in text.split("_run(")[-1]


def test_tile_runtime_repeats_mismatch(target, tmp_path):
    """Repeats at run time must be those the declared output shape implies."""
    m = model([helper.make_node("Tile", ["x", "r"], ["y"])], [("x", T.FLOAT, [2, 3]), ("r", T.INT64, [2])],
              [("y", T.FLOAT, [4, 3])], 13)
    run = check(m, target, tmp_path, [[rand(2, 3), np.array([2, 1], np.int64)]])
    bad = [rand(2, 3), np.array([1, 2], np.int64)]
    if target == "c":
        assert run.call(*bad)[0] == ESHAPE
    else:
        with pytest.raises(ValueError, match="repeats"):
            run(*bad)


def test_tile_refusals(tmp_path):
    cases = {"negative": ([("x", T.FLOAT, [2])], [const("r", np.array([-1], np.int64))], "negative"),
             "rank": ([("x", T.FLOAT, [2])], [const("r", np.array([1, 2], np.int64))], "rank"),
             "undeclared": ([("x", T.FLOAT, [2]), ("r", T.INT64, [1])], [], "declares no shape")}
    for name, (inputs, inits, message) in cases.items():
        m = model([helper.make_node("Tile", ["x", "r"], ["y"])], inputs, [("y", T.FLOAT, None)], 13, inits=inits)
        with pytest.raises(CompileError, match=message):
            generate(save(m, tmp_path, name), Options("c", name="model"))


# -- Range ----------------------------------------------------------------------------------------

def _shape_range(start, delta, opset=17):
    """Range(start, seq, delta) with seq from Shape(x): a symbolic length."""
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Gather", ["s", "one"], ["seq"], axis=0),
             helper.make_node("Range", ["start", "seq", "delta"], ["y"])]
    return model(nodes, [("x", T.FLOAT, ["batch", "seq", 2])], [("y", T.INT64, None)], opset,
                 inits=[const("one", np.array(1, np.int64)), const("start", np.array(start, np.int64)),
                        const("delta", np.array(delta, np.int64))])


@pytest.mark.parametrize("start,delta", [(0, 1), (0, 2), (1, 3), (2, 1), (-3, 2)])
def test_range_symbolic_limit(start, delta, target, tmp_path):
    check(_shape_range(start, delta), target, tmp_path, [[rand(2, 5, 2)], [rand(1, 6, 2)], [rand(1, 1, 2)]])


def test_range_position_embedding(target, tmp_path):
    """x + table[arange(seq)]: the positional embedding PyTorch exports as Range → Gather."""
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Gather", ["s", "one"], ["seq"], axis=0),
             helper.make_node("Range", ["zero", "seq", "one"], ["pos"]),
             helper.make_node("Gather", ["table", "pos"], ["emb"], axis=0),
             helper.make_node("Add", ["x", "emb"], ["y"])]
    m = model(nodes, [("x", T.FLOAT, ["batch", "seq", 4])], [("y", T.FLOAT, None)], 17,
              inits=[const("one", np.array(1, np.int64)), const("zero", np.array(0, np.int64)),
                     const("table", rand(16, 4))])
    check(m, target, tmp_path, [[rand(2, 5, 4)], [rand(1, 16, 4)]])


def test_range_reverse_positions(target, tmp_path):
    """Range(seq - 1, -1, -1): positions counted down from a symbolic start."""
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Gather", ["s", "one"], ["seq"], axis=0),
             helper.make_node("Sub", ["seq", "one"], ["last"]),
             helper.make_node("Range", ["last", "minus_one", "minus_one"], ["pos"]),
             helper.make_node("Cast", ["pos"], ["posf"], to=T.FLOAT),
             helper.make_node("Unsqueeze", ["posf", "axes"], ["p"]),
             helper.make_node("Add", ["x", "p"], ["y"])]
    m = model(nodes, [("x", T.FLOAT, ["batch", "seq", 1])], [("y", T.FLOAT, None), ("pos", T.INT64, None)], 17,
              inits=[const("one", np.array(1, np.int64)), const("minus_one", np.array(-1, np.int64)),
                     const("axes", np.array([1], np.int64))])
    check(m, target, tmp_path, [[rand(2, 5, 1)], [rand(3, 2, 1)]])


@pytest.mark.parametrize("dtype,start,limit,delta", [
    (np.float32, 0.5, 3.2, 0.3), (np.float64, 10.0, -2.0, -1.5), (np.int32, 3, 20, 4),
    (np.int64, 5, -7, -2), (np.int16, 0, 5, 1), (np.int64, 5, 5, 1), (np.int64, 5, 1, 1)])
def test_range_constant_folds(dtype, start, limit, delta, target, tmp_path):
    t = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    m = model([helper.make_node("Range", ["a", "b", "c"], ["y"]), helper.make_node("Add", ["y", "x"], ["z"])],
              [("x", t, [])], [("z", t, None)], 17,
              inits=[const(n, np.array(v, dtype)) for n, v in zip("abc", (start, limit, delta))])
    check(m, target, tmp_path, [[np.array(1, dtype)]])
    text = next(iter(generate(save(m, tmp_path), Options(target, name="model")).values()))
    assert "start + i * delta" not in text and "np.arange" not in text  # folded


@pytest.mark.parametrize("opset", [11, 27])
@pytest.mark.parametrize("dtype,args", [(np.float32, (1.0, 5.5, 0.5)), (np.float64, (-1.0, 1.0, 0.25)),
                                        (np.int32, (10, 6, -3)), (np.int64, (0, 9, 3)), (np.int16, (-4, 4, 3))])
def test_range_runtime(opset, dtype, args, target, tmp_path):
    """start, limit and delta given at run time, with the output length the model declares."""
    t = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    n = len(np.arange(*args))
    m = model([helper.make_node("Range", ["a", "b", "c"], ["y"])], [(k, t, []) for k in "abc"],
              [("y", t, [n])], opset)
    feeds = [[np.array(v, dtype) for v in args]]
    run = check(m, target, tmp_path, feeds)
    bad = [np.array(v, dtype) for v in (args[0], args[1], args[2] * 2)]   # a different length
    zero = [np.array(v, dtype) for v in (args[0], args[1], 0)]
    for inputs in (bad, zero):
        if target == "c":
            assert run.call(*inputs)[0] == ESHAPE
        else:
            with pytest.raises(ValueError, match="Range gives"):
                run(*inputs)


def test_range_refusals(tmp_path):
    cases = {
        "delta0": (np.int64, (0, 5, 0), "delta is 0"),
        "undeclared": (np.int64, None, "declares no shape"),
        "bool": (np.bool_, (0, 1, 1), "is bool, which Range does not take"),
        "infinite": (np.float32, (0, np.inf, 1), "no finite length"),
    }
    for name, (dtype, args, message) in cases.items():
        t = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
        inits = [const(k, np.array(v, dtype)) for k, v in zip("abc", args)] if args else []
        m = model([helper.make_node("Range", ["a", "b", "c"], ["y"])], [] if args else [(k, t, []) for k in "abc"],
                  [("y", t, None)], 17, inits=inits)
        with pytest.raises(CompileError, match=message):
            generate(save(m, tmp_path, name), Options("c", name="model"))
    # a symbolic limit needs a delta known at compile time
    m = _shape_range(0, 1)
    m.graph.initializer.pop()
    m.graph.input.append(helper.make_tensor_value_info("delta", T.INT64, []))
    with pytest.raises(CompileError, match="declares no shape"):
        generate(save(m, tmp_path, "rt_delta"), Options("c", name="model"))


# -- Einsum ---------------------------------------------------------------------------------------

# equation, operand shapes (symbolic dims named), index of the operand given as a weight or None
EINSUMS = [
    ("bij,bjk->bik", [["batch", 3, 4], ["batch", 4, 5]], None),
    ("btf,fo->bto", [["batch", "seq", 6], [6, 5]], 1),
    ("btf,of->bto", [["batch", "seq", 6], [5, 6]], 1),
    ("of,btf->bto", [[5, 6], ["batch", "seq", 6]], 0),
    ("btf,fo->bot", [["batch", "seq", 6], [6, 5]], 1),
    ("ij,jk->ik", [["batch", 4], [4, 3]], None),
    ("ij,jk", [[3, 4], [4, "batch"]], 0),
    ("bhid,bhjd->bhij", [["batch", 2, 5, 4], ["batch", 2, 3, 4]], None),
    ("bhij,bhjd->bhid", [["batch", 2, 5, 3], ["batch", 2, 3, 4]], None),
    ("bhid,bhjd->bhij", [["batch", 2, "seq", 4], ["batch", 2, 3, 4]], None),
    ("...ij,...jk->...ik", [["batch", 2, 3, 4], ["batch", 2, 4, 5]], None),
    ("bti,bti->bt", [["batch", "seq", 4], ["batch", "seq", 4]], None),
    ("bi,bj->bij", [["batch", 3], ["batch", 4]], None),
    ("i,j->ij", [["batch"], [4]], None),
    ("i,i", [[5], [5]], None),
    ("btd,td->b", [["batch", 3, 4], [3, 4]], 1),
    ("bij,bjk->bk", [["batch", 3, 4], ["batch", 4, 2]], None),
    ("ij->ji", [["batch", 4]], None),
    ("bij->bji", [["batch", "seq", 4]], None),
    ("ij->i", [["batch", 4]], None),
    ("bti->bi", [["batch", "seq", 4]], None),
    ("bti->", [["batch", "seq", 4]], None),
    ("ij", [["batch", 4]], None),
    ("ji", [["batch", 4]], None),
    ("->", [[]], None),
    ("B t F , F O -> B t O", [["batch", 3, 4], [4, 2]], 1),
]


def einsum_model(equation, shapes, weight, dtype=np.float32, opset=17):
    t = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    names = ["x", "w"] if len(shapes) == 2 else ["x"]
    inputs, inits = [], []
    for k, (name, shape) in enumerate(zip(names, shapes)):
        if k == weight:
            inits.append(const(name, (rand(*shape) * 3).astype(dtype)))
        else:
            inputs.append((name, t, shape))
    return model([helper.make_node("Einsum", names, ["y"], equation=equation, name="einsum")], inputs,
                 [("y", t, None)], opset, inits=inits)


def _feeds(shapes, weight, dtype=np.float32):
    feeds = []
    for sizes in ({"batch": 2, "seq": 3}, {"batch": 1, "seq": 5}):
        feeds.append([np.asarray(rand(*[sizes.get(d, d) for d in shape]) * 3).astype(dtype)
                      for k, shape in enumerate(shapes) if k != weight])
    return feeds


@pytest.mark.parametrize("equation,shapes,weight", EINSUMS, ids=[e[0] for e in EINSUMS])
def test_einsum(equation, shapes, weight, target, tmp_path):
    m = einsum_model(equation, shapes, weight)
    check(m, target, tmp_path, _feeds(shapes, weight))


# Ellipses of different ranks broadcast as in NumPy (the spec and onnxruntime want equal ranks)
BROADCASTS = [("...ij,...jk->...ik", [["batch", 2, 3, 4], [4, 5]], 1),
              ("...ij,...jk->...ik", [["batch", 1, 3, 4], [2, 4, 5]], None),
              ("...ij,jk", [["batch", "seq", 4], [4, 5]], 1),
              ("...ij,...j->...i", [[1, 3, 4], [2, 4]], None),
              ("...ij,...k->...jk", [["batch", 1, 3, 4], [5, 2]], None)]


@pytest.mark.parametrize("equation,shapes,weight", BROADCASTS, ids=[e[0] for e in BROADCASTS])
def test_einsum_ellipsis_broadcast(equation, shapes, weight, target, tmp_path):
    m = einsum_model(equation, shapes, weight)
    w = [numpy_helper.to_array(t) for t in m.graph.initializer]
    ref = (lambda x: [np.einsum(equation, *((w[0], x) if weight == 0 else (x, w[0])))]) if w else \
        (lambda *xs: [np.einsum(equation, *xs)])
    check(m, target, tmp_path, _feeds(shapes, weight), reference=ref)


def test_einsum_symbolic_n(target, tmp_path):
    """An attention-style product whose output columns (seq) are a symbolic size."""
    shapes = [["batch", 2, "seq", 4], ["batch", 2, "seq", 4]]
    check(einsum_model("bhid,bhjd->bhij", shapes, None), target, tmp_path, _feeds(shapes, None))


@pytest.mark.parametrize("dtype", [np.float64, np.int32, np.int64])
def test_einsum_types(dtype, target, tmp_path):
    shapes = [["batch", 3, 4], ["batch", 4, 5]]
    check(einsum_model("bij,bjk->bik", shapes, None, dtype), target, tmp_path, _feeds(shapes, None, dtype))


@pytest.mark.parametrize("equation,shapes", [("bij,bjk->bik", [[2, 3, 4], [2, 4, 5]]), ("ij->i", [[3, 4]]),
                                             ("i,i", [[0], [0]]), ("bi,bj->bij", [[0, 3], [0, 2]]),
                                             ("bij,bjk->bik", [[2, 3, 4], [2, 4, 0]]),
                                             ("...ij,...jk->...ik", [[2, 1, 3, 4], [1, 2, 4, 5]])])
def test_einsum_opset_28(equation, shapes, target, tmp_path):
    """Einsum-28 (it adds bfloat16, which is refused), and empty operands."""
    check(einsum_model(equation, shapes, None, opset=28), target, tmp_path, _feeds(shapes, None))


def test_einsum_constant_folds(target, tmp_path):
    m = model([helper.make_node("Einsum", ["a", "b"], ["p"], equation="ij,jk->ik"),
               helper.make_node("Add", ["x", "p"], ["y"])], [("x", T.FLOAT, [2, 3])], [("y", T.FLOAT, None)],
              17, inits=[const("a", rand(2, 4)), const("b", rand(4, 3))])
    check(m, target, tmp_path, [[rand(2, 3)]])
    text = next(iter(generate(save(m, tmp_path), Options(target, name="model")).values()))
    assert "matmul" not in text and "o2s_gemm" not in text


def test_einsum_weight_packed_once(tmp_path):
    """The weight of a projection takes B's role: packed at compile time, never at run time."""
    m = einsum_model("of,btf->bto", [[5, 6], ["batch", "seq", 6]], 0)
    text = generate(save(m, tmp_path), Options("c", name="model"))["model.c"]
    body = text.split(" int o2s_forward(")[1]  # the model's code, which every run function calls
    assert "o2s_gemm_float(" in body and "o2s_pack_float(" not in body


@pytest.mark.parametrize("equation,shapes,why", [
    ("ii->i", [[3, 3]], "diagonal"),
    ("ii", [[3, 3]], "diagonal"),
    ("bii->b", [[2, 3, 3]], "diagonal"),
    ("...ii->...i", [[2, 3, 3]], "diagonal"),
    ("ij,jk,kl->il", [[2, 3], [3, 4], [4, 5]], "more than two operands"),
    ("ij->iji", [[2, 3]], "in the output"),
    ("ij->ik", [[2, 3]], "no operand has"),
    ("ij,jk->ik", [[2, 3], [4, 5]], "sizes 3 and 4"),
    ("ijk->ij", [[2, 3]], "rank"),
    ("i.j->ij", [[2, 3]], "no index letter"),
    ("ij->i->j", [[2, 3]], "more than one"),
    ("ij,jk->ik", [[2, 3]], "operand"),
])
def test_einsum_refusals(equation, shapes, why, tmp_path):
    names = [f"x{k}" for k in range(len(shapes))]
    m = model([helper.make_node("Einsum", names, ["y"], equation=equation)],
              [(n, T.FLOAT, s) for n, s in zip(names, shapes)], [("y", T.FLOAT, None)], 17)
    with pytest.raises(CompileError, match=why) as err:
        generate(save(m, tmp_path), Options("c", name="model"))
    assert f'Einsum equation "{equation}"' in str(err.value)
    assert len(str(err.value).splitlines()) == 1


def test_einsum_refusal_escapes_equation(tmp_path):
    """The equation comes from the model: quoted, escaped and cut in the one-line error."""
    equation = 'ii"\\' + "x" * 100
    m = model([helper.make_node("Einsum", ["x"], ["y"], equation=equation)], [("x", T.FLOAT, [3, 3])],
              [("y", T.FLOAT, None)], 17)
    with pytest.raises(CompileError) as err:
        generate(save(m, tmp_path), Options("c", name="model"))
    assert 'Einsum equation "ii\\"\\\\xxx' in str(err.value) and "x" * 80 not in str(err.value)
