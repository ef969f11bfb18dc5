"""Conv, ConvTranspose (opsets 1, 11, 22) and BatchNormalization (opsets 7, 9, 14, 15), in both
targets: the ONNX backend node cases of the three ops (against the outputs they carry), and
hand-made models against onnxruntime, at two sizes of every symbolic dim: Conv1d stacks over a
symbolic time axis, depthwise and grouped convolutions, dilations, strides, every auto_pad,
asymmetric pads, pointwise convolutions (both orientations of the product), weights given at run
time, double, 3-D; ConvTranspose with strides, output_padding, output_shape, groups and
depthwise; BatchNormalization on its own and folded into the Conv, ConvTranspose or Gemm before
it (passes/fold_batchnorm.py, checked to remove the node). Invalid or unsupported attributes are
refused with a CompileError.
"""
import numpy as np
import onnx
import pytest
from onnx import TensorProto as TP
from onnx import helper, numpy_helper

from onnx2src import Options, frontend, passes
from onnx2src.ir import CompileError

from conftest import assert_close, build, check_node_case, ort_run, save, single_op_cases
from test_node_cases import unsupported_reason

OPS = ("Conv", "ConvTranspose", "BatchNormalization")
RNG = np.random.default_rng(20240611)


# -- the ONNX backend node cases -----------------------------------------------------------------

NODE_CASES = single_op_cases(OPS)


def test_node_case_count():
    """6 Conv, 11 ConvTranspose and 4 BatchNormalization cases (2 in training mode)."""
    assert len(NODE_CASES) == 21


@pytest.mark.parametrize("case", NODE_CASES, ids=[c.name for c in NODE_CASES])
def test_node_case(case, target, tmp_path):
    """Every case compiles and matches, but BatchNormalization in training mode is refused."""
    training = "training_mode" in case.name
    error = check_node_case(case, target, tmp_path, refused=training or unsupported_reason(case) is not None)
    if training:
        assert "training" in str(error)


# -- model builders ------------------------------------------------------------------------------

def floats(shape, dtype=np.float32, seed=None):
    rng = RNG if seed is None else np.random.default_rng(seed)
    return rng.standard_normal(shape).astype(dtype)


def make_model(nodes, inputs, outputs, inits=(), opset=17):
    graph = helper.make_graph(nodes, "conv_test", inputs, outputs, list(inits))
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def single(op, x_shape, w_shape, bias=True, opset=17, dtype=TP.FLOAT, runtime_weights=False, **attrs):
    """One Conv / ConvTranspose node; W (and B) initializers, or graph inputs."""
    np_type = helper.tensor_dtype_to_np_dtype(dtype)
    groups = attrs.get("group", 1)
    out_channels = w_shape[0] if op == "Conv" else w_shape[1] * groups
    params = [("W", floats(w_shape, np_type))] + ([("B", floats((out_channels,), np_type))] if bias else [])
    node = helper.make_node(op, ["X"] + [n for n, _ in params], ["Y"], name="the_conv", **attrs)
    inputs = [helper.make_tensor_value_info("X", dtype, x_shape)]
    inits = []
    if runtime_weights:
        inputs += [helper.make_tensor_value_info(n, dtype, list(a.shape)) for n, a in params]
    else:
        inits = [numpy_helper.from_array(a, n) for n, a in params]
    m = make_model([node], inputs, [helper.make_tensor_value_info("Y", dtype, None)], inits, opset)
    return m, [a for _, a in params] if runtime_weights else []


def check(model, input_sets, target, tmp_path, name="model", reference=ort_run):
    """Every input set through the target and through onnxruntime (or `reference`)."""
    path = save(model, tmp_path, name)
    run = build(path, target, tmp_path / target)
    for inputs in input_sets:
        assert_close(run(*inputs), reference(path, inputs), name)


def onnx_reference(path, inputs):
    """onnx's reference implementation: for what onnxruntime lacks (Conv on double, SAME
    padding with dilations)."""
    from onnx.reference import ReferenceEvaluator
    model = onnx.load(path)
    names = [i.name for i in model.graph.input]
    return [np.asarray(y) for y in ReferenceEvaluator(model).run(None, dict(zip(names, inputs)))]


def concrete(shape, sizes):
    return tuple(sizes[d] if isinstance(d, str) else d for d in shape)


# -- Conv ---------------------------------------------------------------------------------------
# (id, X shape (symbolic names allowed), W shape, attributes, sizes of the symbols per run)
CONVS = [
    ("1d_pad", ["N", 4, "T"], [6, 4, 3], dict(pads=[1, 1]), [dict(N=2, T=9), dict(N=1, T=1)]),
    ("1d_no_bias_valid", ["N", 4, "T"], [5, 4, 3], dict(auto_pad="VALID", bias=False),
     [dict(N=1, T=3), dict(N=3, T=20)]),
    ("1d_dilated_strided", [2, 3, "T"], [4, 3, 3], dict(dilations=[3], strides=[2], pads=[2, 1]),
     [dict(T=7), dict(T=40)]),
    ("1d_same_upper_stride2", ["N", 3, "T"], [4, 3, 4], dict(auto_pad="SAME_UPPER", strides=[2]),
     [dict(N=1, T=7), dict(N=2, T=10), dict(N=1, T=1)]),
    ("1d_same_lower_stride3", [1, 3, "T"], [4, 3, 3], dict(auto_pad="SAME_LOWER", strides=[3]),
     [dict(T=8), dict(T=9), dict(T=2)]),
    ("1d_same_upper_dilated", [1, 3, "T"], [4, 3, 3], dict(auto_pad="SAME_UPPER", dilations=[2]),
     [dict(T=5), dict(T=12)]),
    ("1d_stft_like", [1, 1, 640], [33, 1, 64], dict(strides=[32], bias=False), [{}]),
    ("1d_pointwise", ["N", 8, "T"], [12, 8, 1], {}, [dict(N=2, T=5), dict(N=1, T=40)]),
    ("1d_grouped", [1, 6, "T"], [9, 2, 3], dict(group=3, pads=[1, 1]), [dict(T=4), dict(T=33)]),
    ("2d_pad", [1, 3, 7, 8], [5, 3, 3, 3], dict(pads=[1, 1, 1, 1]), [{}]),
    ("2d_asymmetric", [2, 3, 6, 7], [4, 3, 2, 3], dict(pads=[0, 2, 1, 0], strides=[2, 1]), [{}]),
    ("2d_dilated", [1, 4, 9, 10], [6, 4, 3, 3], dict(dilations=[2, 3], pads=[2, 3, 2, 3]), [{}]),
    ("2d_same_lower_strided", ["N", 3, 8, "W"], [4, 3, 3, 2],
     dict(auto_pad="SAME_LOWER", strides=[2, 3]), [dict(N=1, W=7), dict(N=2, W=11)]),
    ("2d_same_upper_strided", [1, 2, 9, 9], [3, 2, 4, 4], dict(auto_pad="SAME_UPPER", strides=[2, 2]),
     [{}]),
    ("2d_few_channels_many_positions", [1, 1, "T", 24], [16, 1, 3, 3], dict(pads=[1, 1, 1, 1]),
     [dict(T=3), dict(T=5)]),
    ("2d_frequency_kernel", ["N", 4, "T", 12], [8, 4, 1, 3], dict(pads=[0, 1, 0, 1], strides=[1, 2]),
     [dict(N=1, T=1), dict(N=2, T=6)]),
    ("2d_pointwise", [2, 8, 5, 6], [16, 8, 1, 1], {}, [{}]),
    ("2d_pointwise_few_positions", ["N", 8, 2, 3], [16, 8, 1, 1], {}, [dict(N=1), dict(N=3)]),
    ("2d_pointwise_strided", [1, 8, 6, 6], [4, 8, 1, 1], dict(strides=[2, 2]), [{}]),
    ("2d_grouped", [2, 4, 7, 8], [6, 2, 3, 3], dict(group=2, strides=[2, 1], dilations=[1, 2],
                                                   pads=[1, 2, 0, 1]), [{}]),
    ("2d_grouped_many_positions", [1, 8, 8, 8], [8, 4, 3, 3], dict(group=2, pads=[1, 1, 1, 1]), [{}]),
    ("2d_grouped_pointwise", [1, 8, 4, 8], [8, 2, 1, 1], dict(group=4), [{}]),
    ("2d_grouped_few_positions", ["N", 4, 3, 4], [6, 2, 3, 3], dict(group=2, pads=[0, 1, 0, 0]),
     [dict(N=1), dict(N=2)]),
    ("2d_pointwise_one_entry_few_positions", [1, 8, 2, 3], [5, 8, 1, 1], {}, [{}]),
    ("2d_depthwise", ["N", 8, "H", 9], [8, 1, 3, 3], dict(group=8, pads=[1, 1, 1, 1]),
     [dict(N=1, H=4), dict(N=2, H=7)]),
    ("2d_depthwise_multiplier", [1, 4, 6, 7], [12, 1, 3, 2],
     dict(group=4, strides=[2, 2], dilations=[1, 2], pads=[0, 1, 2, 0]), [{}]),
    ("2d_depthwise_same", [1, 6, 5, "W"], [6, 1, 1, 3], dict(group=6, auto_pad="SAME_UPPER", strides=[1, 2]),
     [dict(W=9), dict(W=16)]),
    ("3d", [1, 2, 4, 5, 6], [3, 2, 2, 3, 2], dict(pads=[1, 0, 1, 0, 1, 0], strides=[1, 2, 1]), [{}]),
    ("3d_depthwise", [1, 2, 4, 5, 6], [2, 1, 3, 3, 3], dict(group=2, pads=[1, 1, 1, 1, 1, 1]), [{}]),
]


def _conv_case(x_shape, w_shape, attrs, op="Conv", **kw):
    attrs = dict(attrs)
    bias = attrs.pop("bias", True)
    return single(op, x_shape, w_shape, bias=bias, **attrs, **kw)


@pytest.mark.parametrize("case", CONVS, ids=[c[0] for c in CONVS])
def test_conv(case, target, tmp_path):
    _, x_shape, w_shape, attrs, sizes = case
    model, _ = _conv_case(x_shape, w_shape, attrs)
    # onnxruntime refuses SAME padding with dilations
    reference = onnx_reference if "same" in case[0] and "dilations" in attrs else ort_run
    check(model, [[floats(concrete(x_shape, s))] for s in sizes], target, tmp_path, reference=reference)


@pytest.mark.parametrize("case", [c for c in CONVS if c[0] in (
    "1d_pad", "1d_pointwise", "2d_pointwise", "2d_pointwise_few_positions", "2d_grouped",
    "2d_grouped_few_positions", "2d_pointwise_one_entry_few_positions",
    "2d_grouped_many_positions", "2d_depthwise", "2d_few_channels_many_positions")],
    ids=lambda c: c[0])
def test_conv_runtime_weights(case, target, tmp_path):
    """W and B as graph inputs: packed (or transposed) by the generated code at run time."""
    _, x_shape, w_shape, attrs, sizes = case
    model, params = _conv_case(x_shape, w_shape, attrs, runtime_weights=True)
    check(model, [[floats(concrete(x_shape, s))] + params for s in sizes], target, tmp_path)


@pytest.mark.parametrize("opset", [1, 11, 22])
def test_conv_opsets(opset, target, tmp_path):
    """Conv-1 (a model of opset 7..10), Conv-11 and Conv-22."""
    model, _ = single("Conv", [1, 2, "T"], [3, 2, 3], opset=10 if opset == 1 else opset, pads=[1, 0])
    check(model, [[floats((1, 2, 5))], [floats((1, 2, 8))]], target, tmp_path)


def test_conv_double(target, tmp_path):
    model, _ = single("Conv", ["N", 3, 6, "W"], [4, 3, 2, 2], dtype=TP.DOUBLE, pads=[1, 0, 0, 1])
    check(model, [[floats((1, 3, 6, 5), np.float64)], [floats((2, 3, 6, 9), np.float64)]], target, tmp_path,
          reference=onnx_reference)


def test_conv_kernel_longer_than_input(target, tmp_path):
    """Along a symbolic axis shorter than the kernel there are no windows: an empty output
    (onnxruntime refuses such an input; the shape formula clamps at 0)."""
    model, _ = single("Conv", [1, 2, "T"], [3, 2, 4])
    path = save(model, tmp_path)
    run = build(path, target, tmp_path / target)
    (y,) = run(floats((1, 2, 2)))
    assert y.shape == (1, 3, 0)
    x = floats((1, 2, 6))
    assert_close(run(x), ort_run(path, [x]))


def ir_ops(model, tmp_path):
    graph = frontend.load(save(model, tmp_path, "lowered"))
    passes.run_all(graph, Options("c", max_dims={s: 8 for s in graph.symbols()}))
    return [n.op_type for n in graph.nodes]


@pytest.mark.parametrize("x_shape, w_shape, attrs, expected", [
    # many positions, pointwise: the product reads X in place and writes Y in place
    ([2, 8, 5, 6], [16, 8, 1, 1], {}, ["View", "Gemm", "View"]),
    # a 3-tap Conv1d over a symbolic time axis (maybe 1 frame): positions are the rows
    (["N", 8, "T"], [16, 8, 3], dict(pads=[1, 1]), ["Im2col", "Gemm", "ChannelsFirst"]),
    # a first layer on one channel: the columns, fewer than the output channels, are packed
    ([1, 1, "T", 32], [16, 1, 3, 3], dict(pads=[1, 1, 1, 1]), ["Im2col", "Gemm", "View"]),
    ([1, 8, 5, 6], [8, 1, 3, 3], dict(group=8), ["DepthwiseConv"]),
])
def test_lowering(x_shape, w_shape, attrs, expected, tmp_path):
    """Which IR nodes a Conv becomes (ops/conv.py: the orientation of the product)."""
    model, _ = single("Conv", x_shape, w_shape, **attrs)
    assert [op for op in ir_ops(model, tmp_path) if op != "Copy"] == expected


def test_conv1d_stack_symbolic_time(target, tmp_path):
    """A TCN-like stack over [batch, channels, time]: padded, dilated and strided layers, ReLUs,
    a pointwise projection; at several lengths including 1."""
    specs = [(16, 4, 3, dict(pads=[1, 1])), (16, 16, 3, dict(dilations=[2], pads=[2, 2])),
             (24, 16, 5, dict(strides=[2], pads=[2, 2])), (8, 24, 1, {})]
    nodes, inits, prev = [], [], "X"
    for i, (cout, cin, k, attrs) in enumerate(specs):
        nodes.append(helper.make_node("Conv", [prev, f"w{i}", f"b{i}"], [f"c{i}"], name=f"/conv{i}", **attrs))
        inits += [numpy_helper.from_array(floats((cout, cin, k)) * 0.3, f"w{i}"),
                  numpy_helper.from_array(floats((cout,)), f"b{i}")]
        last = i == len(specs) - 1
        nodes.append(helper.make_node("Relu", [f"c{i}"], ["Y" if last else f"r{i}"]))
        prev = f"r{i}"
    model = make_model(nodes, [helper.make_tensor_value_info("X", TP.FLOAT, ["batch", 4, "time"])],
                       [helper.make_tensor_value_info("Y", TP.FLOAT, None)], inits)
    check(model, [[floats((2, 4, 50))], [floats((1, 4, 1))], [floats((3, 4, 7))]], target, tmp_path)


# -- ConvTranspose ------------------------------------------------------------------------------
CONV_TRANSPOSES = [
    ("1d_stride2_output_padding", ["N", 4, "T"], [4, 3, 3], dict(strides=[2], pads=[1, 1], output_padding=[1]),
     [dict(N=2, T=9), dict(N=1, T=1)]),
    ("1d_dilated_no_bias", [1, 3, "T"], [3, 2, 3], dict(dilations=[2], strides=[3], bias=False),
     [dict(T=4), dict(T=11)]),
    ("1d_same_upper", [1, 2, "T"], [2, 3, 4], dict(auto_pad="SAME_UPPER", strides=[3]),
     [dict(T=5), dict(T=6)]),
    ("1d_same_lower", [1, 2, "T"], [2, 3, 4], dict(auto_pad="SAME_LOWER", strides=[2]),
     [dict(T=5), dict(T=2)]),
    ("1d_output_shape_smaller", [1, 2, 5], [2, 3, 4], dict(output_shape=[5]), [{}]),
    ("1d_output_shape_same_upper", [1, 2, 5], [2, 3, 4], dict(output_shape=[5], auto_pad="SAME_UPPER"), [{}]),
    ("1d_output_shape_larger", [1, 2, 5], [2, 3, 4], dict(output_shape=[13], strides=[2]), [{}]),
    ("2d_groups", [2, 4, 3, 5], [4, 3, 3, 2], dict(group=2, strides=[2, 3], pads=[1, 0, 0, 1]), [{}]),
    ("2d_group_2_dilated", [1, 4, 4, 4], [4, 2, 2, 3], dict(group=2, dilations=[2, 1], output_padding=[1, 0],
                                                           strides=[2, 1]), [{}]),
    ("2d_depthwise", ["N", 6, "T", 8], [6, 1, 1, 3], dict(group=6, strides=[1, 2], pads=[0, 1, 0, 1],
                                                         output_padding=[0, 1]), [dict(N=1, T=1), dict(N=2, T=5)]),
    ("2d_depthwise_multiplier", [1, 3, 4, 5], [3, 2, 3, 3], dict(group=3, strides=[2, 2], pads=[1, 1, 1, 1]),
     [{}]),
    ("2d_one_position", ["N", 8, 1, 1], [8, 4, 2, 2], {}, [dict(N=1), dict(N=3)]),
]


@pytest.mark.parametrize("case", CONV_TRANSPOSES, ids=[c[0] for c in CONV_TRANSPOSES])
def test_conv_transpose(case, target, tmp_path):
    _, x_shape, w_shape, attrs, sizes = case
    model, _ = _conv_case(x_shape, w_shape, attrs, op="ConvTranspose")
    check(model, [[floats(concrete(x_shape, s))] for s in sizes], target, tmp_path)


@pytest.mark.parametrize("case", [c for c in CONV_TRANSPOSES if c[0] in (
    "1d_stride2_output_padding", "2d_groups", "2d_depthwise")], ids=lambda c: c[0])
def test_conv_transpose_runtime_weights(case, target, tmp_path):
    _, x_shape, w_shape, attrs, sizes = case
    model, params = _conv_case(x_shape, w_shape, attrs, op="ConvTranspose", runtime_weights=True)
    check(model, [[floats(concrete(x_shape, s))] + params for s in sizes], target, tmp_path)


@pytest.mark.parametrize("opset", [1, 11, 22])
def test_conv_transpose_opsets(opset, target, tmp_path):
    model, _ = single("ConvTranspose", [1, 2, "T"], [2, 3, 3], opset=10 if opset == 1 else opset, strides=[2])
    check(model, [[floats((1, 2, 4))], [floats((1, 2, 7))]], target, tmp_path)


def test_conv_transpose_double(target, tmp_path):
    model, _ = single("ConvTranspose", [1, 3, 4, 5], [3, 2, 2, 3], dtype=TP.DOUBLE, strides=[2, 1])
    check(model, [[floats((1, 3, 4, 5), np.float64)]], target, tmp_path, reference=onnx_reference)


# -- BatchNormalization ---------------------------------------------------------------------------

def batchnorm(x_shape, opset, constant=True, dtype=TP.FLOAT, channels=None, **attrs):
    np_type = helper.tensor_dtype_to_np_dtype(dtype)
    channels = channels or x_shape[1]
    params = [("scale", floats(channels, np_type)), ("bias", floats(channels, np_type)),
              ("mean", floats(channels, np_type)), ("var", np.abs(floats(channels, np_type)) + 0.1)]
    node = helper.make_node("BatchNormalization", ["X"] + [n for n, _ in params], ["Y"], name="bn", **attrs)
    inputs = [helper.make_tensor_value_info("X", dtype, x_shape)]
    inits = [numpy_helper.from_array(a, n) for n, a in params] if constant else []
    if not constant:
        inputs += [helper.make_tensor_value_info(n, dtype, list(a.shape)) for n, a in params]
    model = make_model([node], inputs, [helper.make_tensor_value_info("Y", dtype, None)], inits, opset)
    return model, [] if constant else [a for _, a in params]


@pytest.mark.parametrize("opset", [7, 9, 14, 15])
@pytest.mark.parametrize("constant", [True, False], ids=["constant", "runtime"])
def test_batchnorm(opset, constant, target, tmp_path):
    model, params = batchnorm(["N", 5, "T", 3], opset, constant, epsilon=1e-3)
    check(model, [[floats((2, 5, 4, 3))] + params, [floats((1, 5, 1, 3))] + params], target, tmp_path)


def test_batchnorm_2d_double(target, tmp_path):
    model, _ = batchnorm(["N", 6], 15, dtype=TP.DOUBLE)
    check(model, [[floats((3, 6), np.float64)], [floats((1, 6), np.float64)]], target, tmp_path)


def test_batchnorm_not_spatial(target, tmp_path):
    """Opset 7's spatial=0: one set of parameters per element of a sample, [C, D1, ...]."""
    model, _ = batchnorm([2, 3, 4], 7, channels=(3, 4), spatial=0)
    x = floats((2, 3, 4))
    scale, bias, mean, var = (numpy_helper.to_array(t) for t in model.graph.initializer)
    expected = scale * (x - mean) / np.sqrt(var + 1e-5) + bias
    run = build(save(model, tmp_path), target, tmp_path / target)
    assert_close(run(x), [expected.astype(np.float32)])


def test_batchnorm_training_refused(tmp_path):
    model, _ = batchnorm([2, 3, 4], 15, training_mode=1)
    with pytest.raises(CompileError, match="training_mode"):
        build(save(model, tmp_path), "numpy", tmp_path)
    node = helper.make_node("BatchNormalization", ["X", "s", "b", "m", "v"], ["Y", "mean_out"], name="bn")
    vi = [helper.make_tensor_value_info(n, TP.FLOAT, [3]) for n in "sbmv"]
    model = make_model([node], [helper.make_tensor_value_info("X", TP.FLOAT, [2, 3, 4])] + vi,
                       [helper.make_tensor_value_info("Y", TP.FLOAT, None),
                        helper.make_tensor_value_info("mean_out", TP.FLOAT, None)], opset=9)
    with pytest.raises(CompileError, match="training"):
        build(save(model, tmp_path, "outputs"), "numpy", tmp_path)


# -- BatchNormalization folded into the layer before it ------------------------------------------

def lowered_ops(path):
    """The ONNX ops the lowered graph's IR nodes came from."""
    graph = frontend.load(path)
    passes.run_all(graph, Options("c", max_dims={s: 8 for s in graph.symbols()}))
    return [n.attrs["onnx_op"] for n in graph.nodes]


def bn_after(producer, x_shape, w_shape, producer_attrs, opset=15, bias=True, extra_use=False):
    """producer → BatchNormalization → Relu (and, with extra_use, the producer's output read
    twice, so the BN must stay)."""
    channels = w_shape[0] if producer != "ConvTranspose" else w_shape[1] * producer_attrs.get("group", 1)
    if producer == "Gemm":
        channels = w_shape[0] if producer_attrs.get("transB") else w_shape[1]
    inits = [numpy_helper.from_array(floats(w_shape), "W")]
    ins = ["X", "W"]
    if bias:
        inits.append(numpy_helper.from_array(floats((channels,)), "B"))
        ins.append("B")
    inits += [numpy_helper.from_array(floats((channels,)), "scale"),
              numpy_helper.from_array(floats((channels,)), "shift"),
              numpy_helper.from_array(floats((channels,)), "mean"),
              numpy_helper.from_array(np.abs(floats((channels,))) + 0.5, "var")]
    nodes = [helper.make_node(producer, ins, ["c"], name="layer", **producer_attrs),
             helper.make_node("BatchNormalization", ["c", "scale", "shift", "mean", "var"], ["n"],
                              name="bn", epsilon=1e-4),
             helper.make_node("Relu", ["n"], ["Y"], name="relu")]
    outputs = [helper.make_tensor_value_info("Y", TP.FLOAT, None)]
    if extra_use:
        nodes.append(helper.make_node("Neg", ["c"], ["Z"], name="other"))
        outputs.append(helper.make_tensor_value_info("Z", TP.FLOAT, None))
    return make_model(nodes, [helper.make_tensor_value_info("X", TP.FLOAT, x_shape)], outputs, inits, opset)


FOLDS = [
    ("conv1d", "Conv", ["N", 4, "T"], [6, 4, 3], dict(pads=[1, 1]), dict(N=2, T=7)),
    ("conv2d_no_bias", "Conv", [1, 3, 5, 6], [4, 3, 3, 3], dict(pads=[1, 1, 1, 1]), {}),
    ("conv2d_grouped", "Conv", [1, 4, 5, 6], [6, 2, 3, 3], dict(group=2), {}),
    ("conv2d_depthwise", "Conv", [1, 4, 5, 6], [8, 1, 3, 3], dict(group=4, pads=[1, 1, 1, 1]), {}),
    ("conv_transpose", "ConvTranspose", ["N", 4, "T"], [4, 3, 3], dict(strides=[2], output_padding=[1]),
     dict(N=2, T=5)),
    ("conv_transpose_grouped", "ConvTranspose", [1, 4, 3, 3], [4, 2, 2, 2], dict(group=2), {}),
    ("gemm", "Gemm", ["N", 5], [5, 7], dict(alpha=0.5, beta=2.0), dict(N=3)),
    ("gemm_trans_b", "Gemm", ["N", 5], [7, 5], dict(transB=1), dict(N=3)),
]


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("case", FOLDS, ids=[c[0] for c in FOLDS])
def test_batchnorm_folded(case, bias, target, tmp_path):
    _, producer, x_shape, w_shape, attrs, sizes = case
    model = bn_after(producer, x_shape, w_shape, attrs, bias=bias)
    path = save(model, tmp_path)
    assert "BatchNormalization" not in lowered_ops(path)
    check(model, [[floats(concrete(x_shape, sizes))]], target, tmp_path)


@pytest.mark.parametrize("opset", [7, 9, 14])
def test_batchnorm_folded_opsets(opset, target, tmp_path):
    model = bn_after("Conv", [1, 2, 9], [3, 2, 3], {}, opset=opset)
    assert "BatchNormalization" not in lowered_ops(save(model, tmp_path))
    check(model, [[floats((1, 2, 9))]], target, tmp_path)


def test_batchnorm_not_folded_when_conv_output_is_read_elsewhere(target, tmp_path):
    model = bn_after("Conv", [1, 2, 9], [3, 2, 3], {}, extra_use=True)
    assert "BatchNormalization" in lowered_ops(save(model, tmp_path))
    check(model, [[floats((1, 2, 9))]], target, tmp_path)


def test_batchnorm_not_folded_with_runtime_weights(tmp_path):
    model = bn_after("Conv", [1, 2, 9], [3, 2, 3], {})
    w = model.graph.initializer[0]
    model.graph.input.append(helper.make_tensor_value_info("W", TP.FLOAT, list(w.dims)))
    del model.graph.initializer[0]
    assert "BatchNormalization" in lowered_ops(save(model, tmp_path))


# -- refused ------------------------------------------------------------------------------------
REFUSED = [
    ("kernel_shape differs", "Conv", [1, 2, 5], [3, 2, 3], dict(kernel_shape=[2])),
    ("group does not divide", "Conv", [1, 4, 5], [3, 2, 3], dict(group=3)),
    ("W channels", "Conv", [1, 4, 5], [3, 3, 3], {}),
    ("strides length", "Conv", [1, 2, 5], [3, 2, 3], dict(strides=[1, 1])),
    ("zero stride", "Conv", [1, 2, 5], [3, 2, 3], dict(strides=[0])),
    ("negative pad", "Conv", [1, 2, 5], [3, 2, 3], dict(pads=[-1, 0])),
    ("kernel larger than input", "Conv", [1, 2, 2], [3, 2, 3], {}),
    ("4 spatial axes", "Conv", [1, 1, 2, 2, 2, 2], [1, 1, 1, 1, 1, 1], {}),
    ("symbolic channels", "Conv", [1, "C", 5], [3, 2, 3], {}),
    ("output_padding too large", "ConvTranspose", [1, 2, 5], [2, 3, 3], dict(strides=[2], output_padding=[2])),
    ("output_shape too large", "ConvTranspose", [1, 2, 5], [2, 3, 3], dict(output_shape=[9])),
    ("output_shape with symbolic input", "ConvTranspose", [1, 2, "T"], [2, 3, 3], dict(output_shape=[9])),
]


@pytest.mark.parametrize("case", REFUSED, ids=[c[0] for c in REFUSED])
def test_refused(case, tmp_path):
    _, op, x_shape, w_shape, attrs = case
    node = helper.make_node(op, ["X", "W"], ["Y"], name="bad", **attrs)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("X", TP.FLOAT, x_shape)],
                              [helper.make_tensor_value_info("Y", TP.FLOAT, None)],
                              [numpy_helper.from_array(floats(w_shape), "W")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(CompileError, match='"bad"'):
        build(save(model, tmp_path), "numpy", tmp_path)
