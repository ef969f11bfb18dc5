"""Softmax and LogSoftmax (ops/softmax.py) along an axis of one element, in both targets against
onnxruntime: the C code then has no loop searching the maximum from the second element (its trip
count would be zero at compile time), and every output is 1 (Softmax) or 0 (LogSoftmax)."""
import numpy as np
import pytest
from onnx import TensorProto as T, helper

from conftest import assert_close, build, ort_run, save


@pytest.mark.parametrize("shape,axis,sizes", [([1, 1], 1, [(1, 1)]), (["n", 1, 4], 1, [(3, 1, 4), (1, 1, 4)]),
                                              ([2, 3, 1], -1, [(2, 3, 1)])],
                         ids=["1x1", "n-1-4", "2x3x1-last"])
def test_softmax_along_one_element(shape, axis, sizes, target, tmp_path):
    nodes = [helper.make_node(op, ["x"], [op], axis=axis) for op in ("Softmax", "LogSoftmax")]
    graph = helper.make_graph(nodes, "softmax_one", [helper.make_tensor_value_info("x", T.FLOAT, shape)],
                              [helper.make_tensor_value_info(op, T.FLOAT, shape) for op in ("Softmax", "LogSoftmax")])
    path = save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), tmp_path)
    run = build(path, target, tmp_path / target)
    rng = np.random.default_rng(1)
    for size in sizes:
        x = rng.standard_normal(size).astype(np.float32)
        assert_close(run(x), ort_run(path, [x]), f"{target} at {size}")
    if target == "c":
        assert "_j = 1; _j < 1;" not in (tmp_path / "c" / "model.c").read_text()
