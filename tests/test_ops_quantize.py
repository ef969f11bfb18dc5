"""Quantization ops (ops/quantize.py), in both targets.

- every ONNX backend node case of QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear,
  MatMulInteger and ConvInteger against the outputs the cases carry; the cases in types
  onnx2src does not support (float8, int4, int2, float4) must be refused with a CompileError
  naming the type;
- models compared with onnxruntime: QuantizeLinear / DequantizeLinear at opsets 10, 13, 19 and
  21, per tensor, per axis and blocked, int8, uint8, int16 and uint16, with and without a zero
  point, halfway cases (round half to even), saturation and infinities; DynamicQuantizeLinear
  (an all-zero input: scale 1); MatMulInteger with zero points per tensor, per row of A and per
  column of B, batched; ConvInteger 1-D and 2-D with padding, strides, groups and a zero point
  per output channel;
- a DequantizeLinear of a constant int8 weight is not folded: the generated code holds the int8
  data and not the float weight; an int32 one (a bias) folds;
- invalid or unsupported models refused with a CompileError.
"""
import warnings

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T, helper as h, numpy_helper

from onnx2src import CompileError, Options, generate

from conftest import assert_close, build, check_node_case, ort_options, ort_or_onnx_reference, ort_run, save, single_op_cases

OPS = {"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "MatMulInteger", "ConvInteger"}
CASES = single_op_cases(OPS)
REFUSED_TYPES = ("FLOAT8", "INT4", "UINT4", "INT2", "UINT2", "FLOAT4")


def _refused_type(case):
    """The type name of a case onnx2src must refuse, or None."""
    g = case.model.graph
    for vi in list(g.input) + list(g.output):
        name = T.DataType.Name(vi.type.tensor_type.elem_type)
        if name.startswith(REFUSED_TYPES):
            return name
    return None


def test_node_case_count():
    assert len(CASES) == 33, [c.name for c in CASES]
    assert sum(_refused_type(c) is not None for c in CASES) == 16


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_node_case(case, target, tmp_path):
    refused = _refused_type(case)
    error = check_node_case(case, target, tmp_path, refused=refused is not None)
    if refused:
        assert refused in str(error) and "not supported" in str(error), str(error)


# -- helpers ---------------------------------------------------------------------------------------

NP = {T.FLOAT: np.float32, T.INT8: np.int8, T.UINT8: np.uint8, T.INT16: np.int16, T.UINT16: np.uint16,
      T.INT32: np.int32}


def make(nodes, inputs, outputs, opset, initializers=()):
    """A model: inputs and outputs are (name, elem type, shape)."""
    graph = h.make_graph(nodes, "g", [h.make_tensor_value_info(n, t, s) for n, t, s in inputs],
                         [h.make_tensor_value_info(n, t, s) for n, t, s in outputs],
                         initializer=list(initializers))
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", opset)])
    model.ir_version = 8
    if all(s is not None for _, _, s in outputs):
        onnx.checker.check_model(model, full_check=True)
    return model


def const(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def ort_as_written(path, inputs):
    """onnxruntime running the model as written: its basic graph optimizations only. From the
    extended level on it fuses a DequantizeLinear of an int8 weight with its MatMul into
    com.microsoft.MatMulNBits, which quantizes the activations to int8 on the fly: 0.056 off on
    test_quantized_weight_is_not_folded's outputs of magnitude 5, not what the model says."""
    import onnxruntime as ort
    sess = ort.InferenceSession(path, ort_options(ort.GraphOptimizationLevel.ORT_ENABLE_BASIC),
                                providers=["CPUExecutionProvider"])
    return sess.run(None, dict(zip([i.name for i in sess.get_inputs()], inputs)))


def reference(path, inputs):
    """onnxruntime's outputs; onnx.reference's where onnxruntime's CPU kernel refuses what the
    spec allows (ConvInteger with a zero point per output channel)."""
    return ort_or_onnx_reference(path, inputs, "IsScalarOr1ElementVector")


def check(model, feeds, target, tmp_path):
    """Both targets' outputs equal the reference's (integers exactly, floats to rtol 1e-4)."""
    path = save(model, tmp_path)
    run = build(path, target, tmp_path / target)
    for inputs in feeds:
        assert_close(run(*inputs), reference(path, inputs), f"{target} {[x.shape for x in inputs]}")


def _per_element(scale, layout, shape, axis):
    """The scale of each element of x."""
    if layout == "tensor":
        return np.broadcast_to(scale, shape)
    if layout == "axis":
        return np.broadcast_to(scale.reshape((-1,) + (1,) * (len(shape) - axis - 1)), shape)
    return np.repeat(scale, 2, axis=axis)  # blocks of 2


# -- QuantizeLinear / DequantizeLinear against onnxruntime -----------------------------------------

# (opset, dtype, layout): int16 / uint16 from opset 21
LINEAR = [(10, T.UINT8, "tensor"), (10, T.INT8, "tensor"), (13, T.INT8, "axis"), (13, T.UINT8, "axis"),
          (19, T.INT8, "tensor"), (19, T.UINT8, "axis"), (21, T.INT16, "axis"), (21, T.UINT16, "tensor"),
          (21, T.INT8, "block"), (21, T.UINT8, "block")]


def _params(layout, dtype, shape, axis, zero=True):
    rng = np.random.default_rng(1)
    info = np.iinfo(NP[dtype])
    n = {"tensor": (), "axis": (shape[axis],), "block": shape[:axis] + (shape[axis] // 2,) + shape[axis + 1:]}[layout]
    scale = (rng.uniform(0.01, 0.1, n)).astype(np.float32)
    mid = (int(info.min) + int(info.max)) // 2
    zero_point = rng.integers(mid - 20, mid + 20, n).astype(NP[dtype]) if zero else None
    return scale, zero_point


# without a zero point QuantizeLinear gives uint8, or (opset 21+) output_dtype
LINEAR_ZP = [(o, d, l, z) for o, d, l in LINEAR for z in (True, False) if z or d == T.UINT8 or o >= 21]


@pytest.mark.parametrize("opset,dtype,layout,zero", LINEAR_ZP,
                         ids=[f"{o}-{T.DataType.Name(d).lower()}-{l}-{'zp' if z else 'no_zp'}" for o, d, l, z in LINEAR_ZP])
def test_quantize_dequantize(opset, dtype, layout, zero, target, tmp_path):
    """x → QuantizeLinear → q (an output) → DequantizeLinear → y, the parameters as initializers;
    x reaches beyond the type's range (saturation), with infinities and near-halfway values."""
    shape, axis = (2, 4, 6), 1
    scale, zero_point = _params(layout, dtype, shape, axis, zero)
    attrs = {} if opset < 13 else {"axis": axis}
    if layout == "block":
        attrs["block_size"] = 2
    q_attrs = dict(attrs)
    if not zero and dtype != T.UINT8:
        q_attrs["output_dtype"] = dtype
    names = ["x", "scale"] + (["zero_point"] if zero else [])
    inits = [const("scale", scale)] + ([const("zero_point", zero_point)] if zero else [])
    model = make([h.make_node("QuantizeLinear", names, ["q"], **q_attrs),
                  h.make_node("DequantizeLinear", ["q"] + names[1:], ["y"], **attrs)],
                 [("x", T.FLOAT, shape)], [("q", dtype, shape), ("y", T.FLOAT, shape)], opset, inits)
    steps = _per_element(scale, layout, shape, axis)
    info = np.iinfo(NP[dtype])
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(shape) * steps * (float(info.max) - float(info.min)) / 4).astype(np.float32)
    # (k + 1/2) steps: halfway cases, up to the rounding of x / scale (exact ones:
    # test_quantize_runtime_parameters)
    x2 = ((np.arange(np.prod(shape)).reshape(shape) % 9 - 4 + 0.5) * steps).astype(np.float32)
    x3 = x.copy()
    x3.flat[:4] = [np.inf, -np.inf, 3e38, -3e38]
    check(model, [[x], [x2], [x3]], target, tmp_path)


@pytest.mark.parametrize("dtype", [T.INT8, T.UINT8, T.INT32])
def test_dequantize_runtime_parameters(dtype, target, tmp_path):
    """DequantizeLinear with scale and zero point given at run time, per axis (int32: per tensor,
    zero point 0, as for a quantized bias)."""
    per_axis = dtype != T.INT32
    n = (3,) if per_axis else ()
    model = make([h.make_node("DequantizeLinear", ["x", "s", "z"], ["y"], axis=1)],
                 [("x", dtype, (2, 3, 5)), ("s", T.FLOAT, n), ("z", dtype, n)], [("y", T.FLOAT, (2, 3, 5))], 13)
    rng = np.random.default_rng(2)
    info = np.iinfo(NP[dtype])
    lo, hi = (info.min, info.max) if dtype != T.INT32 else (-2 ** 30, 2 ** 30)
    x = rng.integers(lo, hi, (2, 3, 5), dtype=NP[dtype], endpoint=True)
    s = rng.uniform(0.001, 2, n).astype(np.float32)
    z = rng.integers(info.min, info.max, n).astype(NP[dtype]) if per_axis else np.zeros((), NP[dtype])
    check(model, [[x, s, z]], target, tmp_path)


def test_quantize_runtime_parameters(target, tmp_path):
    """QuantizeLinear-19 with scale and zero point given at run time: halfway cases to even,
    saturation, infinities, and NaN (the lowest value, as onnxruntime's kernel gives); x / scale
    overflowing saturates too."""
    model = make([h.make_node("QuantizeLinear", ["x", "s", "z"], ["y"])],
                 [("x", T.FLOAT, (10,)), ("s", T.FLOAT, ()), ("z", T.INT8, ())], [("y", T.INT8, (10,))], 19)
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, 1e30, -1e30, np.inf, -np.inf, np.nan], np.float32)
    path = save(model, tmp_path)
    run = build(path, target, tmp_path / target)
    feeds = [x, np.array(1.0, np.float32), np.array(3, np.int8)]
    got = run(*feeds)
    np.testing.assert_array_equal(got[0], np.array([3, 5, 5, 3, 1, 127, -128, 127, -128, -128], np.int8))
    assert_close(got, ort_run(path, feeds), target)
    # x / scale overflowing to an infinity saturates, without a warning from the NumPy module
    feeds[1] = np.array(1e-3, np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = run(*feeds)
    np.testing.assert_array_equal(got[0], np.array([127, 127, 127, -128, -128, 127, -128, 127, -128, -128], np.int8))
    assert_close(got, ort_run(path, feeds), target)


# -- DynamicQuantizeLinear ---------------------------------------------------------------------------

def test_dynamic_quantize(target, tmp_path):
    model = make([h.make_node("DynamicQuantizeLinear", ["x"], ["y", "s", "z"])], [("x", T.FLOAT, ("n", 5))],
                 [("y", T.UINT8, ("n", 5)), ("s", T.FLOAT, ()), ("z", T.UINT8, ())], 11)
    rng = np.random.default_rng(3)
    feeds = [[rng.standard_normal((3, 5)).astype(np.float32) * 4], [np.zeros((2, 5), np.float32)],
             [np.abs(rng.standard_normal((4, 5))).astype(np.float32)],
             [-np.abs(rng.standard_normal((1, 5))).astype(np.float32)]]
    check(model, feeds, target, tmp_path)


# -- MatMulInteger / ConvInteger ---------------------------------------------------------------------

MATMUL = [  # (A type, B type, A shape, B shape, a zero point shape, b zero point shape); None: absent
    (T.UINT8, T.INT8, (5, 40), (40, 7), (), (7,)),
    (T.UINT8, T.UINT8, (5, 40), (40, 7), (5,), ()),
    (T.INT8, T.INT8, (2, 3, 300), (300, 9), None, (9,)),
    (T.INT8, T.UINT8, (3, 8), (2, 8, 4), (1,), None),
]


@pytest.mark.parametrize("ta,tb,sa,sb,za,zb", MATMUL, ids=["u8s8", "u8u8_rows", "s8s8_batched", "s8u8_bbatch"])
def test_matmul_integer(ta, tb, sa, sb, za, zb, target, tmp_path):
    """Run-time A and zero point of A, constant B and zero point of B (a weight), exact int32 (the
    K = 300 case sums 300 products of up to 255 * 255: beyond float's 2^24)."""
    rng = np.random.default_rng(4)
    b = rng.integers(np.iinfo(NP[tb]).min, np.iinfo(NP[tb]).max, sb, dtype=NP[tb], endpoint=True)
    names, inputs, inits = ["A", "B"], [("A", ta, sa)], [const("B", b)]
    if za is not None:
        inputs.append(("a_zp", ta, za))
    names.append("a_zp" if za is not None else "")
    if zb is not None:
        inits.append(const("b_zp", rng.integers(0, 100, zb).astype(NP[tb])))
    names.append("b_zp" if zb is not None else "")
    while names[-1] == "":
        names.pop()
    out = np.matmul(np.zeros(sa), np.zeros(sb)).shape
    model = make([h.make_node("MatMulInteger", names, ["Y"])], inputs, [("Y", T.INT32, out)], 10, inits)
    a = rng.integers(np.iinfo(NP[ta]).min, np.iinfo(NP[ta]).max, sa, dtype=NP[ta], endpoint=True)
    feeds = [a] + ([rng.integers(0, 100, za).astype(NP[ta])] if za is not None else [])
    if za != (5,):
        check(model, [feeds], target, tmp_path)
        return
    # onnxruntime takes only one zero point for A (and onnx.reference broadcasts a per-row one
    # along K); the spec's formula, in int64 numpy:
    path = save(model, tmp_path)
    run = build(path, target, tmp_path / target)
    b_zp = numpy_helper.to_array(inits[1]).astype(np.int64) if zb is not None else 0
    want = (a.astype(np.int64) - feeds[1].astype(np.int64)[:, None]) @ (b.astype(np.int64) - b_zp)
    assert_close(run(*feeds), [want.astype(np.int32)], target)


CONV = [  # (x shape, w shape, attrs, w zero point per channel)
    ((2, 3, 20), (4, 3, 3), {"pads": [1, 1]}, True),
    ((1, 4, 9), (6, 2, 2), {"group": 2, "strides": [2]}, False),
    ((1, 2, 6, 7), (3, 2, 3, 3), {"pads": [1, 0, 1, 2], "dilations": [1, 2]}, True),
]


@pytest.mark.parametrize("xt", [T.UINT8, T.INT8])
@pytest.mark.parametrize("xs,ws,attrs,per_channel", CONV, ids=["conv1d_pad", "conv1d_groups", "conv2d"])
def test_conv_integer(xs, ws, attrs, per_channel, xt, target, tmp_path):
    """ConvInteger with a run-time zero point of x (padding reads it: it contributes 0) and a
    constant int8 weight with its zero point per output channel or per tensor."""
    rng = np.random.default_rng(5)
    w = rng.integers(-128, 127, ws, dtype=np.int8, endpoint=True)
    wz = rng.integers(-5, 5, (ws[0],) if per_channel else ()).astype(np.int8)
    model = make([h.make_node("ConvInteger", ["x", "w", "xz", "wz"], ["y"], **attrs)],
                 [("x", xt, xs), ("xz", xt, ())], [("y", T.INT32, None)], 10, [const("w", w), const("wz", wz)])
    info = np.iinfo(NP[xt])
    x = rng.integers(info.min, info.max, xs, dtype=NP[xt], endpoint=True)
    xz = np.array(info.min + 100, NP[xt])
    if not per_channel:
        check(model, [[x, xz]], target, tmp_path)
        return
    # onnxruntime's ConvInteger takes one zero point for w (onnx.reference only 2-D ones): its
    # float Conv on x - xz and w - wz instead, exact here (every sum is below 2^24)
    path = save(model, tmp_path)
    run = build(path, target, tmp_path / target)
    conv = make([h.make_node("Conv", ["x", "w"], ["y"], **attrs)], [("x", T.FLOAT, xs)], [("y", T.FLOAT, None)], 11,
                [const("w", (w.astype(np.int32) - wz.reshape(-1, *[1] * (len(ws) - 1))).astype(np.float32))])
    want = ort_run(save(conv, tmp_path, "float_conv"), [(x.astype(np.int32) - int(xz)).astype(np.float32)])[0]
    assert np.abs(want).max() < 2 ** 24
    assert_close(run(x, xz), [want.astype(np.int32)], target)


# -- quantized weights stay quantized ------------------------------------------------------------------

def _weight_model(x_type):
    """y = x @ DequantizeLinear(W) with W a constant [64, 32] of x_type, per-column scales."""
    rng = np.random.default_rng(6)
    info = np.iinfo(NP[x_type])
    w = rng.integers(info.min, info.max, (64, 32), dtype=NP[x_type], endpoint=True)
    scale = rng.uniform(0.001, 0.01, 32).astype(np.float32)
    zp = np.zeros(32, NP[x_type])
    model = make([h.make_node("DequantizeLinear", ["W", "scale", "zp"], ["Wf"], axis=1),
                  h.make_node("MatMul", ["x", "Wf"], ["y"])],
                 [("x", T.FLOAT, ("batch", 64))], [("y", T.FLOAT, ("batch", 32))], 13,
                 [const("W", w), const("scale", scale), const("zp", zp)])
    return model, w


def test_quantized_weight_is_not_folded(target, tmp_path):
    """The int8 weight W [64][32] is in the generated code as int8 (2048 bytes, not 8192 of
    floats), its 32 scales and zero points beside it, and is dequantized when the model runs;
    the result matches onnxruntime."""
    model, w = _weight_model(T.INT8)
    path = save(model, tmp_path)
    summary = {}
    files = generate(path, Options(target, name="m"), summary=summary)
    if target == "c":
        weights = files["m_weights.c"]
        # one int8 block (W, then the zero points) and one float block (the scales only)
        assert "int8_t values[2080]" in weights and '/* "W" [64][32] from 0 */' in weights
        assert "float values[32]" in weights and "float values[2048]" not in weights
        assert summary["weight_bytes"] == 2048 + 32 + 4 * 32, summary
        assert '/* DequantizeLinear "DequantizeLinear_0" (opset 13) */' in files["m.c"]
    else:
        code = files["m.py"]
        assert '# "W": int8 (64, 32)' in code and "# \"scale\": float (32,)" in code
        assert code.count("# \"") == 3  # W, scale and zp: no float copy of W
        assert "# DequantizeLinear" in code
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 64)).astype(np.float32)
    run = build(path, target, tmp_path / target)
    assert_close(run(x), ort_as_written(path, [x]), target)


def test_quantized_bias_folds(target, tmp_path):
    """An int32 DequantizeLinear of a constant (a quantized bias) folds to float: nothing to
    save, and no work at run time."""
    bias = np.array([100, -2000, 3], np.int32)
    model = make([h.make_node("DequantizeLinear", ["b", "s"], ["bf"]), h.make_node("Add", ["x", "bf"], ["y"])],
                 [("x", T.FLOAT, (2, 3))], [("y", T.FLOAT, (2, 3))], 13,
                 [const("b", bias), const("s", np.array(0.125, np.float32))])
    path = save(model, tmp_path)
    code = "".join(generate(path, Options(target, name="m")).values())
    assert "DequantizeLinear" not in code and "int32" not in code
    x = np.ones((2, 3), np.float32)
    run = build(path, target, tmp_path / target)
    assert_close(run(x), ort_run(path, [x]), target)


# -- refused -----------------------------------------------------------------------------------------

def _refusal(model, tmp_path, *words):
    tmp_path.mkdir(parents=True)
    with pytest.raises(CompileError) as error:
        generate(save(model, tmp_path), Options("c"))
    for word in words:
        assert word in str(error.value), str(error.value)


def test_refused(tmp_path):
    x = ("x", T.FLOAT, (4, 6))
    # a partial last block
    _refusal(make([h.make_node("QuantizeLinear", ["x", "s"], ["y"], axis=1, block_size=4)], [x],
                  [("y", T.UINT8, (4, 6))], 21, [const("s", np.ones((4, 2), np.float32))]),
             tmp_path / "a", "block_size 4 does not divide")
    # QuantizeLinear of an integer tensor
    _refusal(make([h.make_node("QuantizeLinear", ["x", "s"], ["y"])], [("x", T.INT32, (4,))],
                  [("y", T.UINT8, (4,))], 13, [const("s", np.float32(1))]),
             tmp_path / "b", "QuantizeLinear of int32")
    # a scale per axis whose length is not the axis's
    _refusal(make([h.make_node("DequantizeLinear", ["q", "s"], ["y"], axis=0)], [("q", T.INT8, (4, 6))],
                  [("y", T.FLOAT, (4, 6))], 13, [const("s", np.ones(6, np.float32))]),
             tmp_path / "c", "6 elements")
    # MatMulInteger with a 2-D zero point of B
    _refusal(make([h.make_node("MatMulInteger", ["a", "b", "", "bz"], ["y"])],
                  [("a", T.UINT8, (2, 3)), ("b", T.UINT8, (3, 4)), ("bz", T.UINT8, (1, 4))],
                  [("y", T.INT32, (2, 4))], 10), tmp_path / "d", "zero point of shape [1, 4]")
