"""Small multi-op models built with onnx.helper: the PyTorch-style glue (Shape chains, Gather /
Slice on the sequence axis, Reshape around Gemm, MatMul + Add, Softmax) that sits between a
recurrent layer and its Linear head. Each model runs in both targets and is compared with
onnxruntime, at two sizes of every symbolic dim.

For the C target the module also checks the parts of the contract a real build depends on:
the return code for bad dims, the documentation in the header, the #include lines, and that
the source compiles cleanly as C++ and with clang.
"""
import ctypes
import re
import shutil
import subprocess

import numpy as np
import onnx
import pytest
from onnx import TensorProto as TP
from onnx import helper, numpy_helper

from onnx2src import CompileError, Options, generate
from onnx2src.harness import CModel, Interface, compiler

from conftest import assert_close, build, ort_run, save

INT64_MAX = np.iinfo(np.int64).max
INT64_MIN = np.iinfo(np.int64).min
OPSET = 17
RNG = np.random.default_rng(20240521)


def const(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def weights(name, *shape, dtype=np.float32):
    return const(name, RNG.standard_normal(shape).astype(dtype))


def tensor(name, elem_type, shape):
    return helper.make_tensor_value_info(name, elem_type, shape)


def model(nodes, inputs, outputs, inits=(), opset=OPSET):
    graph = helper.make_graph(nodes, "test_graph", inputs, outputs, list(inits))
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8  # readable by every onnxruntime these tests support
    onnx.checker.check_model(m)
    return m


def floats(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


# -- the models ---------------------------------------------------------------------------------
# Each builder returns (model, [input sets]); an input set is a list of arrays. Models with a
# symbolic dim list input sets at two or more different sizes of it.

def last_step_gather():
    """PyTorch `self.fc(out[:, -1, :])` then ReLU: Gather(axis=1, -1) → Gemm(transB) → Relu."""
    nodes = [
        helper.make_node("Gather", ["X", "last"], ["h"], axis=1, name="/Gather"),
        helper.make_node("Gemm", ["h", "fc.weight", "fc.bias"], ["y"], transB=1, name="/fc/Gemm"),
        helper.make_node("Relu", ["y"], ["Y"], name="/Relu"),
    ]
    inits = [const("last", np.array(-1, np.int64)), weights("fc.weight", 4, 8),
             weights("fc.bias", 4)]
    m = model(nodes, [tensor("X", TP.FLOAT, ["batch", "seq", 8])],
              [tensor("Y", TP.FLOAT, ["batch", 4])], inits)
    return m, [[floats(1, 1, 8)], [floats(3, 5, 8, seed=1)]]


def last_step_slice():
    """`out[:, -1:, :].squeeze(1)`: Slice(-1, INT64_MAX, axes=1) → Squeeze(1) → Gemm → Tanh."""
    nodes = [
        helper.make_node("Slice", ["X", "starts", "ends", "axes"], ["s"], name="/Slice"),
        helper.make_node("Squeeze", ["s", "axes"], ["h"], name="/Squeeze"),
        helper.make_node("Gemm", ["h", "fc.weight", "fc.bias"], ["y"], transB=1, name="/fc/Gemm"),
        helper.make_node("Tanh", ["y"], ["Y"], name="/Tanh"),
    ]
    inits = [const("starts", np.array([-1], np.int64)), const("ends", np.array([INT64_MAX])),
             const("axes", np.array([1], np.int64)), weights("fc.weight", 3, 8),
             weights("fc.bias", 3)]
    m = model(nodes, [tensor("X", TP.FLOAT, ["batch", "seq", 8])],
              [tensor("Y", TP.FLOAT, ["batch", 3])], inits)
    return m, [[floats(1, 1, 8)], [floats(3, 5, 8, seed=1)], [floats(2, 7, 8, seed=2)]]


def zero_state_and_reshape():
    """The Shape arithmetic PyTorch exports around a recurrent layer and a Linear on 3-D input:
    h0 = zeros(1, batch, H) built from Shape(X), and X.reshape(-1, H) → Gemm → reshape back to
    (batch, seq, O), with the target shapes computed by Shape → Gather → Concat (and a Mul for
    batch*seq)."""
    H, O = 6, 5
    n = helper.make_node
    nodes = [
        n("Shape", ["X"], ["shape"], name="/Shape"),
        n("Gather", ["shape", "i0"], ["batch"], axis=0, name="/Gather_batch"),
        n("Gather", ["shape", "i1"], ["seq"], axis=0, name="/Gather_seq"),
        n("Unsqueeze", ["batch", "axes0"], ["batch_1"], name="/Unsqueeze"),
        n("Concat", ["one", "batch_1", "h"], ["h0_shape"], axis=0, name="/Concat_h0"),
        n("ConstantOfShape", ["h0_shape"], ["h0"], name="/ConstantOfShape",
          value=helper.make_tensor("value", TP.FLOAT, [1], [0.0])),
        n("Add", ["h0", "S"], ["state"], name="/Add_state"),
        # X.reshape(-1, H) with the -1 spelled as batch*seq
        n("Mul", ["batch", "seq"], ["bs"], name="/Mul_bs"),
        n("Unsqueeze", ["bs", "axes0"], ["bs_1"], name="/Unsqueeze_bs"),
        n("Concat", ["bs_1", "h"], ["flat_shape"], axis=0, name="/Concat_flat"),
        n("Reshape", ["X", "flat_shape"], ["flat"], name="/Reshape_flat"),
        n("Gemm", ["flat", "fc.weight", "fc.bias"], ["y2"], transB=1, name="/fc/Gemm"),
        # ... and back to (batch, seq, O) with Gather(indices=[0, 1]) of the shape
        n("Gather", ["shape", "i01"], ["bs_dims"], axis=0, name="/Gather_bs"),
        n("Concat", ["bs_dims", "o"], ["out_shape"], axis=0, name="/Concat_out"),
        n("Reshape", ["y2", "out_shape"], ["Y"], name="/Reshape_out"),
        # the same flattening with Reshape(-1, H)
        n("Gather", ["shape", "i2"], ["hdim"], axis=0, name="/Gather_h"),
        n("Concat", ["minus1", "hdim"], ["flat_shape2"], axis=0, name="/Concat_flat2"),
        n("Reshape", ["X", "flat_shape2"], ["flat2"], name="/Reshape_flat2"),
        n("Relu", ["flat2"], ["F"], name="/Relu"),
    ]
    inits = [const("i0", np.array(0, np.int64)), const("i1", np.array(1, np.int64)),
             const("i01", np.array([0, 1], np.int64)), const("i2", np.array([2], np.int64)),
             const("axes0", np.array([0], np.int64)), const("one", np.array([1], np.int64)),
             const("h", np.array([H], np.int64)), const("o", np.array([O], np.int64)),
             const("minus1", np.array([-1], np.int64)),
             weights("fc.weight", O, H), weights("fc.bias", O)]
    m = model(nodes, [tensor("X", TP.FLOAT, ["batch", "seq", H]),
                      tensor("S", TP.FLOAT, [1, "batch", H])],
              [tensor("state", TP.FLOAT, [1, "batch", H]), tensor("Y", TP.FLOAT, ["batch", "seq", O]),
               tensor("F", TP.FLOAT, ["batch_x_seq", H])], inits)
    sets = [[floats(b, s, H, seed=b * 10 + s), floats(1, b, H, seed=b)]
            for b, s in ((1, 1), (3, 5), (2, 4))]
    return m, sets


def matmul3d_softmax(opset=OPSET):
    """nn.Linear on a 3-D input (MatMul by the transposed weight + Add bias), then
    softmax / log_softmax over the last axis."""
    I, O = 7, 5
    nodes = [
        helper.make_node("MatMul", ["X", "W_T"], ["xw"], name="/fc/MatMul"),
        helper.make_node("Add", ["fc.bias", "xw"], ["logits"], name="/fc/Add"),
        helper.make_node("Softmax", ["logits"], ["P"], axis=-1 if opset >= 13 else 2,
                         name="/Softmax"),
        helper.make_node("LogSoftmax", ["logits"], ["L"], axis=-1 if opset >= 13 else 2,
                         name="/LogSoftmax"),
    ]
    inits = [weights("W_T", I, O), weights("fc.bias", O)]
    m = model(nodes, [tensor("X", TP.FLOAT, ["batch", "seq", I])],
              [tensor("P", TP.FLOAT, ["batch", "seq", O]), tensor("L", TP.FLOAT, ["batch", "seq", O])],
              inits, opset=opset)
    return m, [[3 * floats(1, 1, I)], [3 * floats(3, 5, I, seed=1)]]


def softmax_opset11_coerced():
    """Softmax before opset 13 flattens the input to 2-D at `axis`: axis=1 of [batch, seq, O]
    normalizes over seq*O together."""
    nodes = [helper.make_node("Softmax", ["X"], ["P"], axis=1, name="/Softmax"),
             helper.make_node("LogSoftmax", ["X"], ["L"], axis=1, name="/LogSoftmax")]
    m = model(nodes, [tensor("X", TP.FLOAT, ["batch", "seq", 4])],
              [tensor("P", TP.FLOAT, ["batch", "seq", 4]), tensor("L", TP.FLOAT, ["batch", "seq", 4])],
              opset=11)
    return m, [[floats(1, 1, 4)], [3 * floats(3, 5, 4, seed=1)]]


def glue_chain():
    """Transpose, Concat, Expand, Cast, Div, Sub, Mul, Neg, Sigmoid, Tanh, LeakyRelu, Flatten,
    Identity and inference-mode Dropout between an input and a Gemm."""
    n = helper.make_node
    nodes = [
        n("Transpose", ["X"], ["t"], perm=[0, 2, 1], name="/Transpose"),            # [b, 6, 4]
        n("Neg", ["t"], ["nt"], name="/Neg"),
        n("Concat", ["t", "nt"], ["c"], axis=2, name="/Concat"),                      # [b, 6, 8]
        n("Shape", ["c"], ["c_shape"], name="/Shape"),
        n("Expand", ["offset", "c_shape"], ["e"], name="/Expand"),                    # [b, 6, 8]
        n("Div", ["c", "two"], ["d"], name="/Div"),
        n("Sub", ["d", "e"], ["s"], name="/Sub"),
        n("Sigmoid", ["s"], ["sg"], name="/Sigmoid"),
        n("Mul", ["s", "sg"], ["silu"], name="/Mul"),
        n("Cast", ["silu"], ["silu64"], to=TP.DOUBLE, name="/Cast_double"),
        n("Tanh", ["silu64"], ["th64"], name="/Tanh"),
        n("Cast", ["th64"], ["th"], to=TP.FLOAT, name="/Cast_float"),
        n("LeakyRelu", ["th"], ["lr"], alpha=0.1, name="/LeakyRelu"),
        n("Flatten", ["lr"], ["f"], axis=1, name="/Flatten"),                         # [b, 48]
        n("Identity", ["f"], ["idn"], name="/Identity"),
        n("Dropout", ["idn"], ["dr"], name="/Dropout"),
        n("Gemm", ["dr", "W", "bias"], ["Y"], name="/Gemm"),
        # an int64 side path: Cast of the int input to float, added to the head's output
        n("Cast", ["K"], ["kf"], to=TP.FLOAT, name="/Cast_k"),
        n("Add", ["Y", "kf"], ["Z"], name="/Add_k"),
        n("Cast", ["Z"], ["Zi"], to=TP.INT32, name="/Cast_int"),
    ]
    inits = [const("offset", RNG.standard_normal((1, 8)).astype(np.float32)),
             const("two", np.array(2.0, np.float32)), weights("W", 48, 5), weights("bias", 5)]
    m = model(nodes, [tensor("X", TP.FLOAT, ["batch", 4, 6]), tensor("K", TP.INT64, ["batch", 5])],
              [tensor("Y", TP.FLOAT, ["batch", 5]), tensor("Z", TP.FLOAT, ["batch", 5]),
               tensor("Zi", TP.INT32, ["batch", 5])], inits)
    ks = np.random.default_rng(3)
    return m, [[floats(1, 4, 6), ks.integers(-50, 50, (1, 5))],
               [floats(3, 4, 6, seed=1), ks.integers(-50, 50, (3, 5))]]


GEMM_BIAS = {          # name: shape of C for Y[M, N] (None: no C)
    "none": None, "scalar": (), "one": (1,), "row": (5,), "column": (3, 1), "full": (3, 5),
}


def gemm_case(bias, trans_a, trans_b, alpha, beta, c_is_input=False):
    M, K, N = 3, 4, 5
    a_shape = (K, M) if trans_a else (M, K)
    b_shape = (N, K) if trans_b else (K, N)
    inputs = [tensor("A", TP.FLOAT, list(a_shape))]
    operands = ["A", "B"]
    inits = [weights("B", *b_shape)]
    sets = [floats(*a_shape, seed=5)]
    c_shape = GEMM_BIAS[bias]
    if c_shape is not None:
        operands.append("C")
        c = RNG.standard_normal(c_shape).astype(np.float32)
        if c_is_input:
            inputs.append(tensor("C", TP.FLOAT, list(c_shape)))
            sets.append(c)
        else:
            inits.append(const("C", c))
    node = helper.make_node("Gemm", operands, ["Y"], transA=trans_a, transB=trans_b,
                            alpha=alpha, beta=beta, name="/Gemm")
    return model([node], inputs, [tensor("Y", TP.FLOAT, [M, N])], inits), [sets]


def gemm_symbolic_m():
    """Gemm with a symbolic M and a [1, N] bias; alpha and beta not 1."""
    node = helper.make_node("Gemm", ["A", "B", "C"], ["Y"], alpha=0.5, beta=-2.0, transB=1,
                            name="/Gemm")
    m = model([node], [tensor("A", TP.FLOAT, ["m", 4])], [tensor("Y", TP.FLOAT, ["m", 3])],
              [weights("B", 3, 4), weights("C", 1, 3)])
    return m, [[floats(1, 4)], [floats(6, 4, seed=1)]]


def reverse_slice(step):
    """`x[:, ::step]` over a symbolic seq axis, for a negative step."""
    nodes = [helper.make_node("Slice", ["X", "starts", "ends", "axes", "steps"], ["Y"],
                              name="/Slice_rev")]
    inits = [const("starts", np.array([-1], np.int64)), const("ends", np.array([INT64_MIN])),
             const("axes", np.array([1], np.int64)), const("steps", np.array([step], np.int64))]
    m = model(nodes, [tensor("X", TP.FLOAT, ["batch", "seq", 3])],
              [tensor("Y", TP.FLOAT, ["batch", None, 3])], inits)
    return m, [[floats(2, 1, 3)], [floats(1, 5, 3, seed=1)], [floats(3, 6, 3, seed=2)]]


def reverse_then_last():
    """A reversed sequence (the backward half of a bidirectional output) then its last step."""
    nodes = [
        helper.make_node("Slice", ["X", "starts", "ends", "axes", "steps"], ["r"], name="/Slice_rev"),
        helper.make_node("Gather", ["r", "last"], ["h"], axis=1, name="/Gather"),
        helper.make_node("Gemm", ["h", "W", "B"], ["Y"], transB=1, name="/Gemm"),
    ]
    inits = [const("starts", np.array([INT64_MAX], np.int64)), const("ends", np.array([INT64_MIN])),
             const("axes", np.array([-2], np.int64)), const("steps", np.array([-1], np.int64)),
             const("last", np.array(-1, np.int64)), weights("W", 2, 3), weights("B", 2)]
    m = model(nodes, [tensor("X", TP.FLOAT, ["batch", "seq", 3])], [tensor("Y", TP.FLOAT, ["batch", 2])],
              inits)
    return m, [[floats(2, 1, 3)], [floats(1, 5, 3, seed=1)]]


def slice_int32():
    """Slice with int32 starts / ends / axes / steps (the spec allows int32 or int64):
    the last step of a symbolic seq axis, and every second feature."""
    nodes = [helper.make_node("Slice", ["X", "starts", "ends", "axes", "steps"], ["Y"], name="/Slice")]
    int32_max = np.iinfo(np.int32).max
    inits = [const("starts", np.array([-1, 0], np.int32)),
             const("ends", np.array([int32_max, 1000], np.int32)),
             const("axes", np.array([1, -1], np.int32)), const("steps", np.array([1, 2], np.int32))]
    m = model(nodes, [tensor("X", TP.FLOAT, ["batch", "seq", 5])],
              [tensor("Y", TP.FLOAT, ["batch", 1, 3])], inits)
    return m, [[floats(1, 3, 5)], [floats(3, 6, 5, seed=1)], [floats(2, 1, 5, seed=2)]]


def slice_interior():
    """`x[:, 1:-1]` over a symbolic seq axis (empty when seq <= 2), static ends on the features."""
    nodes = [helper.make_node("Slice", ["X", "starts", "ends", "axes"], ["Y"], name="/Slice")]
    inits = [const("starts", np.array([1, 1], np.int64)), const("ends", np.array([-1, 3], np.int64)),
             const("axes", np.array([1, 2], np.int64))]
    m = model(nodes, [tensor("X", TP.FLOAT, ["batch", "seq", 5])],
              [tensor("Y", TP.FLOAT, ["batch", None, 2])], inits)
    return m, [[floats(1, 3, 5)], [floats(3, 6, 5, seed=1)], [floats(2, 2, 5, seed=2)]]


def symbolic_slice(start, end, step, axis=1, head=False):
    """`x[:, start:end:step]` (or on axis 0) over a symbolic axis, clamped at run time as ONNX
    says; empty for short sequences. With `head`, a MatMul + Add (a Linear layer) follows."""
    nodes = [helper.make_node("Slice", ["X", "starts", "ends", "axes", "steps"],
                              ["S" if head else "Y"], name="/Slice")]
    inits = [const("starts", np.array([start], np.int64)), const("ends", np.array([end], np.int64)),
             const("axes", np.array([axis], np.int64)), const("steps", np.array([step], np.int64))]
    if head:
        nodes += [helper.make_node("MatMul", ["S", "W"], ["P"], name="/head/MatMul"),
                  helper.make_node("Add", ["P", "B"], ["Y"], name="/head/Add")]
        inits += [weights("W", 4, 3), weights("B", 3)]
    m = model(nodes, [tensor("X", TP.FLOAT, ["batch", "seq", 4] if axis else ["seq", "batch", 4])],
              [tensor("Y", TP.FLOAT, [None, None, 3 if head else 4])], inits)
    shape = (lambda b, s: (b, s, 4)) if axis else (lambda b, s: (s, b, 4))
    return m, [[floats(*shape(b, s), seed=s)] for b, s in ((2, 1), (1, 2), (3, 3), (2, 7))]


def split_chunks(opset, parts=2, axis=1, sizes=None, seqs=(1, 2, 5, 6)):
    """Split on a symbolic axis (torch.chunk: opset 18's num_outputs, equal chunks of
    ceil(seq / parts), the last smaller or empty) or on a static one with given sizes.
    (onnxruntime refuses sizes where a chunk before the last would be short, e.g. seq 2 in 3.)"""
    outputs = [f"Y{i}" for i in range(parts)]
    attrs = {"axis": axis}
    inputs, inits = ["X"], []
    if sizes is not None and opset >= 13:
        inputs.append("split")
        inits.append(const("split", np.array(sizes, np.int64)))
    elif sizes is not None:
        attrs["split"] = sizes
    elif opset >= 18:
        attrs["num_outputs"] = parts
    nodes = [helper.make_node("Split", inputs, outputs, name="/Split", **attrs)]
    m = model(nodes, [tensor("X", TP.FLOAT, ["batch", "seq", 4])],
              [tensor(y, TP.FLOAT, [None, None, None]) for y in outputs], inits, opset=opset)
    return m, [[floats(1 + s % 3, s, 4, seed=s)] for s in seqs]


def slice_opset1():
    """Slice-1 (attributes starts / ends / axes, no steps), as opset 9 exporters wrote it."""
    nodes = [helper.make_node("Slice", ["X"], ["s"], starts=[-1, 1], ends=[INT64_MAX, 3], axes=[1, 2],
                              name="/Slice"),
             helper.make_node("Squeeze", ["s"], ["h"], axes=[1], name="/Squeeze"),
             helper.make_node("Gemm", ["h", "W", "B"], ["Y"], transB=1, name="/Gemm")]
    m = model(nodes, [tensor("X", TP.FLOAT, ["batch", "seq", 4])], [tensor("Y", TP.FLOAT, ["batch", 3])],
              [weights("W", 3, 2), weights("B", 3)], opset=9)
    return m, [[floats(1, 1, 4)], [floats(3, 5, 4, seed=1)]]


def output_is_input():
    """A graph output that is a graph input, unchanged, next to a computed one."""
    nodes = [helper.make_node("Relu", ["X"], ["Y"], name="/Relu")]
    m = model(nodes, [tensor("X", TP.FLOAT, ["batch", 3])],
              [tensor("X", TP.FLOAT, ["batch", 3]), tensor("Y", TP.FLOAT, ["batch", 3])])
    return m, [[floats(1, 3)], [floats(4, 3, seed=1)]]


def output_is_constant():
    """Graph outputs that are constants: a Constant node's output and a folded Shape."""
    k = np.arange(6, dtype=np.float32).reshape(2, 3) - 2.5
    nodes = [helper.make_node("Constant", [], ["K"], name="/Constant", value=numpy_helper.from_array(k)),
             helper.make_node("Shape", ["X"], ["S"], start=1, name="/Shape"),
             helper.make_node("Sigmoid", ["X"], ["Y"], name="/Sigmoid")]
    m = model(nodes, [tensor("X", TP.FLOAT, [2, 3])],
              [tensor("K", TP.FLOAT, [2, 3]), tensor("S", TP.INT64, [1]), tensor("Y", TP.FLOAT, [2, 3])])
    return m, [[floats(2, 3)]]


def output_is_initializer():
    """A graph output that is an initializer."""
    nodes = [helper.make_node("Neg", ["X"], ["Y"], name="/Neg")]
    m = model(nodes, [tensor("X", TP.FLOAT, ["n"])],
              [tensor("Y", TP.FLOAT, ["n"]), tensor("W", TP.FLOAT, [2, 2])],
              [weights("W", 2, 2)])
    return m, [[floats(1)], [floats(3, seed=1)]]


def same_output_twice():
    """One value listed twice among the graph outputs, around another output."""
    nodes = [helper.make_node("Tanh", ["X"], ["Y"], name="/Tanh"),
             helper.make_node("Neg", ["Y"], ["N"], name="/Neg")]
    m = model(nodes, [tensor("X", TP.FLOAT, ["batch", 2])],
              [tensor("Y", TP.FLOAT, ["batch", 2]), tensor("N", TP.FLOAT, ["batch", 2]),
               tensor("Y", TP.FLOAT, ["batch", 2])])
    return m, [[floats(1, 2)], [floats(3, 2, seed=1)]]


MODELS = {
    "last_step_gather": last_step_gather,
    "last_step_slice": last_step_slice,
    "zero_state_and_reshape": zero_state_and_reshape,
    "matmul3d_softmax": matmul3d_softmax,
    "matmul3d_softmax_opset11": lambda: matmul3d_softmax(opset=11),
    "softmax_opset11_coerced": softmax_opset11_coerced,
    "glue_chain": glue_chain,
    "gemm_symbolic_m": gemm_symbolic_m,
    "reverse_slice_step-1": lambda: reverse_slice(-1),
    "reverse_slice_step-2": lambda: reverse_slice(-2),
    "reverse_then_last": reverse_then_last,
    "slice_int32": slice_int32,
    "slice_interior": slice_interior,
    "slice_opset1": slice_opset1,
    "slice_1_3": lambda: symbolic_slice(1, 3, 1),
    "slice_1_3_seq_first": lambda: symbolic_slice(1, 3, 1, axis=0),
    "slice_last_2": lambda: symbolic_slice(-2, INT64_MAX, 1),
    "slice_every_2nd": lambda: symbolic_slice(0, INT64_MAX, 2),
    "slice_1_-1_step_2": lambda: symbolic_slice(1, -1, 2),
    "slice_every_3rd_reversed": lambda: symbolic_slice(-1, INT64_MIN, -3),
    "slice_5_1_step_-2": lambda: symbolic_slice(5, 1, -2),
    "slice_-2_-5_step_-1": lambda: symbolic_slice(-2, -5, -1),
    "slice_1_3_linear_head": lambda: symbolic_slice(1, 3, 1, head=True),
    "split_seq_in_2_chunks": lambda: split_chunks(18),
    "split_seq_in_3_chunks": lambda: split_chunks(18, parts=3, seqs=(3, 5, 7)),
    "split_features_sizes_input": lambda: split_chunks(13, axis=2, sizes=[1, 3]),
    "split_features_sizes_attribute": lambda: split_chunks(11, parts=3, axis=-1, sizes=[2, 1, 1]),
    "split_features_equal": lambda: split_chunks(13, axis=2),
    "slice_last_2_linear_head": lambda: symbolic_slice(-2, INT64_MAX, 1, head=True),
    "output_is_input": output_is_input,
    "output_is_constant": output_is_constant,
    "output_is_initializer": output_is_initializer,
    "same_output_twice": same_output_twice,
}
for _bias in GEMM_BIAS:
    MODELS[f"gemm_bias_{_bias}"] = (lambda b=_bias: gemm_case(b, 0, 1, 1.0, 1.0))
    MODELS[f"gemm_bias_{_bias}_transA_alpha_beta"] = (lambda b=_bias: gemm_case(b, 1, 0, 0.75, -1.5))
MODELS["gemm_bias_row_input_transAB"] = lambda: gemm_case("row", 1, 1, 2.0, 0.5, c_is_input=True)
MODELS["gemm_bias_full_input"] = lambda: gemm_case("full", 0, 0, 1.0, 3.0, c_is_input=True)

def symbolic_dims(m):
    dims = []
    for vi in m.graph.input:
        for d in vi.type.tensor_type.shape.dim:
            if d.HasField("dim_param") and d.dim_param not in dims:
                dims.append(d.dim_param)
    return dims


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """name → (path of the saved model, input sets), each model built and saved once."""
    cache = {}

    def get(name):
        if name not in cache:
            m, sets = MODELS[name]()
            cache[name] = (save(m, tmp_path_factory.mktemp(name)), sets)
        return cache[name]
    return get


# -- numbers against onnxruntime, both targets ----------------------------------------------------

@pytest.mark.parametrize("name", list(MODELS))
def test_model_matches_onnxruntime(name, target, saved, tmp_path, request):
    path, sets = saved(name)
    run = build(path, target, tmp_path / target)
    for inputs in sets:
        expected = ort_run(path, inputs)
        assert_close(run(*inputs), expected, f"{name} {[x.shape for x in inputs]}")


def test_every_symbolic_model_runs_at_two_sizes(saved):
    """The input sets themselves: every symbolic dim takes at least two values."""
    for name in MODELS:
        path, sets = saved(name)
        m = onnx.load(path)
        for dim in symbolic_dims(m):
            seen = set()
            for inputs in sets:
                for vi, x in zip(m.graph.input, inputs):
                    for d, n in zip(vi.type.tensor_type.shape.dim, x.shape):
                        if d.dim_param == dim:
                            seen.add(n)
            assert len(seen) >= 2, f"{name}: dim {dim} only tried at {seen}"


# -- C: return codes for bad dims, bounds --------------------------------------------------------

SYMBOLIC = [n for n in MODELS if symbolic_dims(MODELS[n]()[0])]


def call_c(cmodel, inputs, dims=None, guard=64):
    """Call NAME_run through ctypes with the dims of `inputs`, overridden by `dims`.
    Output buffers are sized for the real inputs and followed by `guard` sentinel elements;
    returns (code, outputs, guards intact)."""
    iface = cmodel.interface
    arrays = [np.ascontiguousarray(x, dtype=dt) for x, (_, dt, _) in zip(inputs, iface.inputs)]
    env = iface.sizes(arrays)
    shapes = iface.output_shapes(env)
    buffers = []
    for shape, (_, dt, _) in zip(shapes, iface.outputs):
        count = int(np.prod(shape, dtype=np.int64))
        buf = np.zeros(count + guard, dtype=dt)
        buf[count:] = 77
        buffers.append((buf, count, shape))
    values = dict(env, **(dims or {}))
    args = [ctypes.c_int64(values[s]) for s in iface.symbols]
    args += [a.ctypes.data_as(ctypes.c_void_p) for a in arrays]
    args += [b.ctypes.data_as(ctypes.c_void_p) for b, _, _ in buffers]
    code = cmodel.fn(*args)
    intact = all(np.all(b[n:] == 77) for b, n, _ in buffers)
    return code, [b[:n].reshape(s) for b, n, s in buffers], intact


@pytest.mark.parametrize("name", SYMBOLIC)
def test_c_rejects_bad_dims(name, saved, tmp_path, request):
    """With every bound set to the largest size the input sets use: that size runs and
    matches onnxruntime; 0, -1, bound + 1 and a huge value give MODEL_EDIM and leave the
    memory after the output buffers alone."""
    path, sets = saved(name)
    bound = max(max(x.shape) for inputs in sets for x in inputs)
    symbols = symbolic_dims(onnx.load(path))
    cmodel = build(path, "c", tmp_path, max_dims={s: bound for s in symbols})
    header = (tmp_path / "model.h").read_text()
    edim = int(re.search(r"#define MODEL_EDIM (\d+)", header).group(1))
    assert edim != 0
    for inputs in sets:
        code, outputs, intact = call_c(cmodel, inputs)
        assert code == 0 and intact
        assert_close(outputs, ort_run(path, inputs), name)
    for s in symbols:
        for bad in (0, -1, bound + 1, 2**40):
            code, _, intact = call_c(cmodel, inputs, {s: bad})
            assert code == edim, f"{s}={bad}: returned {code}, expected MODEL_EDIM ({edim})"
            assert intact, f"{s}={bad}: wrote past the output buffers"
    # model_output_shape: the same dims check, and an error for an output the model lacks
    env = cmodel.interface.sizes(inputs)
    dims = [ctypes.c_int64(env[s]) for s in symbols]
    shape = (ctypes.c_int64 * 8)()
    eoutput = int(re.search(r"#define MODEL_EOUTPUT (\d+)", header).group(1))
    n_outputs = len(cmodel.interface.outputs)
    assert cmodel.shape_fn(*dims, ctypes.c_int(n_outputs), shape) == eoutput
    assert cmodel.shape_fn(*dims, ctypes.c_int(-1), shape) == eoutput
    dims[0] = ctypes.c_int64(bound + 1)
    assert cmodel.shape_fn(*dims, ctypes.c_int(0), shape) == edim


def test_c_max_dim_bound_is_enforced_and_usable(tmp_path):
    """At exactly the bound the model runs and matches; one above it, MODEL_EDIM."""
    m, _ = last_step_gather()
    path = save(m, tmp_path)
    cmodel = build(path, "c", tmp_path / "c", max_dims={"batch": 2, "seq": 3})
    x = floats(2, 3, 8, seed=9)
    code, outputs, intact = call_c(cmodel, [x])
    assert (code, intact) == (0, True)
    assert_close(outputs, ort_run(path, [x]))
    assert call_c(cmodel, [floats(3, 3, 8)])[0] != 0
    assert call_c(cmodel, [floats(2, 4, 8)])[0] != 0


def test_c_bound_overridable_with_D(tmp_path):
    """`-DMODEL_MAX_BATCH=N` at C build time replaces the default bound."""
    m, _ = last_step_gather()
    path = save(m, tmp_path)
    files = generate(path, Options("c", name="model"))
    cmodel = CModel(files, "model", Interface(path), str(tmp_path),
                    flags=("-O1", "-DMODEL_MAX_BATCH=2", "-DMODEL_MAX_SEQ=200"))
    x = floats(2, 200, 8, seed=4)
    code, outputs, intact = call_c(cmodel, [x])
    assert (code, intact) == (0, True)
    assert_close(outputs, ort_run(path, [x]))
    assert call_c(cmodel, [floats(3, 2, 8)])[0] != 0


# -- C: the header documents the interface ------------------------------------------------------

C_TYPES = {TP.FLOAT: "float", TP.DOUBLE: "double", TP.INT32: "int32_t", TP.INT64: "int64_t"}
DOC_TYPES = {TP.FLOAT: "float", TP.DOUBLE: "double", TP.INT32: "int32", TP.INT64: "int64"}


def _doc_lines(header):
    """{onnx name: (identifier, dtype, [dim texts])} from the header's comment block."""
    docs = {}
    for ident, onnx_name, dtype, dims in re.findall(
            r'^ \*\s+(\w+) \("([^"]*)"\): (\w+) ((?:\[[^\]]*\])*)\s*$', header, re.M):
        docs.setdefault(onnx_name, []).append((ident, dtype, re.findall(r"\[([^\]]*)\]", dims)))
    return docs


def _eval_dim(text, env):
    """A documented size: integer arithmetic on the dims, with min, max and floor(a / b)."""
    if not re.fullmatch(r"[\w\s*+/(),-]+", text):
        raise AssertionError(f"dim {text!r} is not a simple expression")
    return int(eval(text.replace("/", "//"), {"__builtins__": {}},
                    dict(env, min=min, max=max, floor=lambda x: x)))


@pytest.mark.parametrize("name", list(MODELS))
def test_c_header_documents_interface(name, saved, request):
    path, sets = saved(name)
    m = onnx.load(path)
    files = generate(path, Options("c", name="model"))
    header = files["model.h"]
    docs = _doc_lines(header)
    inits = {i.name for i in m.graph.initializer}
    graph_inputs = [vi for vi in m.graph.input if vi.name not in inits]
    symbols = symbolic_dims(m)

    # the prototype: one int64_t per symbolic dim (in order of appearance), inputs, outputs
    proto = re.search(r"^int model_run\(([^)]*)\);", header, re.M)
    assert proto, "no prototype of model_run"
    params = [p.strip() for p in proto.group(1).split(",")]
    types = [p.rsplit("*", 1)[0].strip() if "*" in p else p.rsplit(" ", 1)[0] for p in params]
    expected_types = ["int64_t"] * len(symbols)
    expected_types += [f"const {C_TYPES[vi.type.tensor_type.elem_type]}" for vi in graph_inputs]
    expected_types += [C_TYPES[vi.type.tensor_type.elem_type] for vi in m.graph.output]
    assert types == expected_types, proto.group(0)
    dim_params = [p.split()[-1] for p in params[:len(symbols)]]

    for s, ident in zip(symbols, dim_params):
        assert re.search(rf"^#define MODEL_MAX_{ident.upper()} 128$", header, re.M), s
        assert f'{ident} ("{s}")' in header, f"dim {s} undocumented"

    # every input and output: name, dtype, and a shape that evaluates to the real one
    for inputs in sets:
        env = {}
        for vi, x in zip(graph_inputs, inputs):
            for d, n in zip(vi.type.tensor_type.shape.dim, x.shape):
                if d.HasField("dim_param"):
                    env[dim_params[symbols.index(d.dim_param)]] = n
        expected = ort_run(path, inputs)
        for vi, arr in list(zip(graph_inputs, inputs)) + list(zip(m.graph.output, expected)):
            assert vi.name in docs, f"{vi.name} undocumented in the header"
            for ident, dtype, dims in docs[vi.name]:
                assert dtype == DOC_TYPES[vi.type.tensor_type.elem_type], f"{vi.name}: {dtype}"
                shape = tuple(_eval_dim(t, env) for t in dims)
                assert shape == np.shape(arr), \
                    f"{vi.name}: header says {dims}, onnxruntime gives {np.shape(arr)}"


# -- C: portability: includes, C++, clang ----------------------------------------------------

ALLOWED_INCLUDES = {"<math.h>", "<stdint.h>", "<stddef.h>", "<string.h>"}
PORTABILITY = ["last_step_gather", "zero_state_and_reshape", "matmul3d_softmax", "glue_chain",
               "reverse_slice_step-1", "slice_int32", "output_is_constant", "same_output_twice",
               "gemm_bias_column_transA_alpha_beta"]
# Models whose generated C holds float / double weights, written as hexadecimal floating
# literals (0x1.8p-1f): valid C99, but C++ only has them since C++17.
@pytest.fixture(scope="module")
def c_sources(saved, tmp_path_factory):
    """name → directory holding the generated C of that model (name `model`)."""
    cache = {}

    def get(name):
        if name not in cache:
            path, _ = saved(name)
            out = tmp_path_factory.mktemp(f"c_{name}")
            for fname, text in generate(path, Options("c", name="model")).items():
                (out / fname).write_text(text)
            cache[name] = out
        return cache[name]
    return get


@pytest.mark.parametrize("name", list(MODELS))
def test_c_includes_only_the_allowed_headers(name, c_sources, request):
    out = c_sources(name)
    own = {f'"{p.name}"' for p in out.glob("*.h")}
    for src in sorted(out.glob("*.[ch]")):
        for inc in re.findall(r"^\s*#\s*include\s*(\S+)", src.read_text(), re.M):
            assert inc in ALLOWED_INCLUDES or inc in own, f"{src.name} includes {inc}"


def _compile(cmd):
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0 and not done.stderr.strip(), \
        f"{' '.join(map(str, cmd))}\n{done.stderr}"


# The .c files compile as C++ too (C++11 to C++17 with g++ and clang++ in test_portability.py).
@pytest.mark.parametrize("std", ["c++17"])
@pytest.mark.parametrize("name", PORTABILITY)
def test_c_compiles_as_cplusplus(name, std, c_sources, request):
    gxx = shutil.which("g++")
    if gxx is None:
        pytest.skip("g++ is not installed: cannot check that the C compiles as C++")
    out = c_sources(name)
    for src in sorted(out.glob("*.c")):
        _compile([gxx, "-x", "c++", f"-std={std}", "-Wall", "-Wextra", "-Werror", "-c", str(src),
                  "-o", str(src.with_suffix(f".{std}.o"))])


@pytest.mark.parametrize("name", PORTABILITY)
def test_c_compiles_with_clang(name, c_sources):
    clang = shutil.which("clang")
    if clang is None:
        pytest.skip("clang is not installed: cannot check the C with clang")
    out = c_sources(name)
    for src in sorted(out.glob("*.c")):
        _compile([clang, "-std=c99", "-Wall", "-Wextra", "-pedantic", "-Werror", "-c", str(src),
                  "-o", str(src.with_suffix(".clang.o"))])


def test_header_usable_from_cplusplus(saved, tmp_path):
    """A C++ file includes the header and calls model_run: the prototype has C linkage."""
    gxx = shutil.which("g++")
    if gxx is None:
        pytest.skip("g++ is not installed: cannot check the header from C++")
    path, _ = saved("last_step_gather")
    for fname, text in generate(path, Options("c", name="model")).items():
        (tmp_path / fname).write_text(text)
    for part in ("model", "model_weights"):
        _compile([compiler(), "-std=c99", "-Wall", "-Wextra", "-pedantic", "-Werror", "-c",
                  str(tmp_path / f"{part}.c"), "-o", str(tmp_path / f"{part}.o")])
    (tmp_path / "main.cpp").write_text(
        '#include "model.h"\n'
        "int main() {\n"
        "    float x[2 * 3 * 8] = {0};\n"
        "    float y[2 * 4];\n"
        "    return model_run(2, 3, x, y);\n"
        "}\n")
    exe = tmp_path / "main"
    _compile([gxx, "-std=c++11", "-Wall", "-Wextra", "-Werror", "-I", str(tmp_path),
              str(tmp_path / "main.cpp"), str(tmp_path / "model.o"), str(tmp_path / "model_weights.o"),
              "-o", str(exe), "-lm"])
    assert subprocess.run([str(exe)]).returncode == 0
