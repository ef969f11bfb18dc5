"""The ONNX backend node tests of every op onnx2src supports, in both targets, compared with
the expected outputs the cases carry (built by onnx's reference implementation).

Cases that use a data type onnx2src does not support (float16, bfloat16, float8, int4,
strings...), Dropout in training mode, or Split with its sizes given at run time must be refused
with a CompileError, not miscompiled.
"""
import pytest
from onnx.backend.test.case.node import collect_testcases

from onnx2src.ir import BY_ONNX

from conftest import check_node_case

OPS = set("""Gemm Slice Constant Identity Transpose Squeeze Unsqueeze Reshape Flatten Concat Gather
Shape ConstantOfShape Expand Cast MatMul Add Sub Mul Div Neg Tanh Sigmoid Relu LeakyRelu Softmax
LogSoftmax Dropout RNN LSTM GRU Split""".split())


def _cases():
    out = []
    for case in collect_testcases():
        nodes = case.model.graph.node
        if len(nodes) == 1 and nodes[0].op_type in OPS and case.name != "test_identity_sequence" \
                and case.name != "test_identity_opt":
            out.append(case)
    return sorted(out, key=lambda c: c.name)


CASES = _cases()


def unsupported_reason(case):
    """Why onnx2src must refuse this case, or None if it must compile and match."""
    g = case.model.graph
    for vi in list(g.input) + list(g.output):
        if vi.type.tensor_type.elem_type not in BY_ONNX:
            return "data type"
    for a in g.node[0].attribute:
        if a.name == "to" and a.i not in BY_ONNX:
            return "data type"
    if g.node[0].op_type == "Dropout" and len(g.node[0].input) > 2:
        return "training mode"
    if g.node[0].op_type == "Split" and len(g.node[0].input) > 1 and g.node[0].input[1]:
        return "split sizes given at run time"  # output shapes would depend on run-time data
    return None


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_node_case(case, target, tmp_path):
    check_node_case(case, target, tmp_path, refused=unsupported_reason(case) is not None)
