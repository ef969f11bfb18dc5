"""Trilu (opset 14): keep the upper (upper=1) or lower triangle of the last two axes, diagonal
offset k. Exporters write it for causal attention masks (`torch.triu`, `is_causal=True`), often
on a [seq][seq] matrix with a symbolic `seq`, and often on an input known at compile time, which
folds. k must be known at compile time (a constant, or a folded shape). It lowers to the IR op
`Trilu`: element (i, j) of each [rows][cols] matrix is kept when j - i >= k (upper) or
j - i <= k (lower), else zero. A streamed model keeps streaming through it when the time axis
is not one of the matrices' two.
"""
import numpy as np

from ..dims import Dim, is_static, product
from ..ir import CompileError
from . import ir, refuse, register, set_output, stream_same
from .reduce import check_type


def _k(node):
    """The diagonal offset: 0 when absent, else one whole number (or symbolic size) known now."""
    v = node.input(1)
    if v is None:
        return 0
    if v.data is None:
        raise CompileError("k given at run time is not supported; it must be known at compile time", node)
    data = np.asarray(v.data).reshape(-1)
    if data.size != 1:
        raise CompileError(f"k must be a scalar, not of shape {list(np.shape(v.data))}", node)
    if isinstance(data[0], Dim):
        return data[0]
    # j - i lies in [-(rows - 1), cols - 1]: beyond that any k keeps all or nothing, so a k
    # such as INT64_MIN becomes one that C and NumPy compute with without overflow
    *_, rows, cols = node.input(0).shape
    low = -rows if is_static(rows) else -2**62
    high = cols if is_static(cols) else 2**62
    return min(max(int(data[0]), low), high)


def infer_trilu(node, graph):
    x = node.input(0)
    check_type(node, x.dtype)
    if x.rank < 2:
        raise CompileError(f"Trilu needs an input of rank 2 or more, not {x.rank}", node)
    _k(node)
    set_output(node, 0, x.dtype, x.shape)


def fold_trilu(node, x, k=None):
    k = _k(node)
    if isinstance(k, Dim):
        return None  # a symbolic offset on a known matrix: computed at run time
    keep = np.triu if node.attrs.get("upper", 1) else np.tril
    return [keep(x, k).astype(x.dtype)]


def lower_trilu(node, graph):
    x = node.input(0)
    *outer, rows, cols = x.shape
    return [ir("Trilu", node, [x], node.outputs, batch=product(outer), rows=rows, cols=cols,
               k=_k(node), upper=bool(node.attrs.get("upper", 1)))]


def stream_trilu(node, classes, time):
    """Per-step when the time axis is one of the batch axes, before the matrices' two."""
    axis, = stream_same(node, classes, time)
    if axis >= node.input(0).rank - 2:
        raise refuse(node, "keeps a triangle of matrices along the time axis")
    return [axis]


register("Trilu", 14, infer=infer_trilu, fold=fold_trilu, lower=lower_trilu, stream=stream_trilu)
