"""Comparisons and logic: Equal, Greater, Less, GreaterOrEqual, LessOrEqual (bool out), Not, And,
Or, Xor (bool in and out) and Where (a bool condition choosing between X and Y), all with NumPy
broadcasting, lowered to the IR op `Elementwise` (bool tensors are uint8_t in C).

PyTorch's exports compare and select shape values (`Where(Equal(shape, -1), 1, shape)` around
Expand and Reshape), so the comparisons and Where also fold on symbolic sizes: `batch == -1` is
false for every batch >= 1. A comparison that depends on the sizes' values is left to run time.
"""
import operator

import numpy as np

from ..dims import Dim, nonneg
from ..ir import BY_NUMPY, CompileError
from . import register, set_output
from .elementwise import broadcast, elementwise_ir, stream
from .math import NUMERIC, check_dtype

BOOL = BY_NUMPY[np.dtype(np.bool_)]
COMPARE = {"Equal": np.equal, "Greater": np.greater, "Less": np.less,
           "GreaterOrEqual": np.greater_equal, "LessOrEqual": np.less_equal}
LOGIC = {"Not": np.logical_not, "And": np.logical_and, "Or": np.logical_or, "Xor": np.logical_xor}


def infer_compare(node, graph):
    a, b = node.inputs
    if a.dtype != b.dtype:
        raise CompileError(f"inputs have different types ({a.dtype.name}, {b.dtype.name})", node)
    check_dtype(node, a, NUMERIC | ({"bool"} if node.op_type == "Equal" else set()))
    set_output(node, 0, BOOL, broadcast(node, a.shape, b.shape))


def infer_logic(node, graph):
    for v in node.inputs:
        check_dtype(node, v, {"bool"})
    set_output(node, 0, BOOL, broadcast(node, *[v.shape for v in node.inputs]))


def infer_where(node, graph):
    cond, x, y = node.inputs
    check_dtype(node, cond, {"bool"}, "condition")
    if x.dtype != y.dtype:
        raise CompileError(f"X and Y have different types ({x.dtype.name}, {y.dtype.name})", node)
    set_output(node, 0, x.dtype, broadcast(node, cond.shape, x.shape, y.shape))


# -- folding ---------------------------------------------------------------------------------

def _size_equal(a, b):
    d = a - b
    if not isinstance(d, Dim):
        return d == 0
    if nonneg(d - 1) or nonneg(-d - 1):
        return False
    raise ValueError(f"whether {a} equals {b} is not known")


SIZE_COMPARE = {"Equal": _size_equal, "Greater": operator.gt, "Less": operator.lt,
                "GreaterOrEqual": operator.ge, "LessOrEqual": operator.le}


def _python(v):
    return int(v) if isinstance(v, np.integer) else v


def fold_compare(node, a, b):
    if a.dtype != object and b.dtype != object:
        return [COMPARE[node.op_type](a, b)]
    compare = SIZE_COMPARE[node.op_type]
    try:  # Dim comparisons raise ValueError when the answer depends on the sizes
        out = np.vectorize(lambda x, y: bool(compare(_python(x), _python(y))), otypes=[np.bool_])(a, b)
    except ValueError:
        return None  # computed at run time
    return [out]


def fold_logic(node, *data):
    return [LOGIC[node.op_type](*data)]


def fold_where(node, cond, x, y):
    out = np.where(cond.astype(bool), x, y)
    if out.dtype == object and not any(isinstance(v, Dim) for v in out.flat):
        out = out.astype(node.output(0).dtype.numpy)
    return [out]


def lower(node, graph):
    return [elementwise_ir(node, node.inputs, node.output(0), node.op_type)]


register("Equal Greater Less", 7, infer=infer_compare, fold=fold_compare, lower=lower, stream=stream, symbolic=True)
register("GreaterOrEqual LessOrEqual", 12, infer=infer_compare, fold=fold_compare, lower=lower, stream=stream,
         symbolic=True)
register("Not", 1, infer=infer_logic, fold=fold_logic, lower=lower, stream=stream)
register("And Or Xor", 7, infer=infer_logic, fold=fold_logic, lower=lower, stream=stream)
register("Where", 9, infer=infer_where, fold=fold_where, lower=lower, stream=stream, symbolic=True)
