"""Gemm and MatMul, both lowered to the IR op `Gemm`:

    Y[b][m][n] = alpha * sum_k A[b][m][k] * B[b][k][n]  +  beta * C[m][n]

with the operands addressed by strides, so transposes, broadcast batch dims and a bias C that is
a scalar, a row, a column or a full matrix need no copies. `batch` lists the broadcast batch
loops of a N-D MatMul as a loop nest (loops.py) over the offsets of A, B and Y.
"""
from ..ir import CompileError
from ..loops import nest, strides
from . import ir, refuse, register, set_output, time_axes
from .elementwise import broadcast


def infer_gemm(node, graph):
    a, b = node.input(0), node.input(1)
    if a.rank != 2 or b.rank != 2:
        raise CompileError("A and B must be 2-D", node)
    types = {v.dtype.name for v in node.inputs if v is not None}
    if len(types) > 1:
        raise CompileError(f"inputs have different types ({', '.join(sorted(types))})", node)
    m, k = a.shape[::-1] if node.attrs.get("transA", 0) else a.shape
    k2, n = b.shape[::-1] if node.attrs.get("transB", 0) else b.shape
    if k != k2:
        raise CompileError(f"inner dimensions differ ({k} and {k2})", node)
    c = node.input(2)
    if c is not None and broadcast(node, c.shape, (m, n)) != (m, n):
        raise CompileError(f"C of shape {list(c.shape)} does not broadcast to [{m}, {n}]", node)
    set_output(node, 0, a.dtype, (m, n))


def lower_gemm(node, graph):
    a, b, c = node.input(0), node.input(1), node.input(2)
    trans_a, trans_b = bool(node.attrs.get("transA", 0)), bool(node.attrs.get("transB", 0))
    m, n = node.output(0).shape
    k = a.shape[0] if trans_a else a.shape[1]
    a_strides = (1, a.shape[1]) if trans_a else (a.shape[1], 1)
    b_strides = (1, b.shape[1]) if trans_b else (b.shape[1], 1)
    c_strides = None
    if c is not None:
        cs = (1,) * (2 - c.rank) + tuple(c.shape)
        full = strides(cs)
        c_strides = tuple(0 if d == 1 else s for d, s in zip(cs, full))
    return [ir("Gemm", node, [a, b] + ([c] if c is not None else []), node.outputs,
               M=m, N=n, K=k, batch=nest([], (0, []), (0, []), (0, [])), a_strides=a_strides, b_strides=b_strides,
               c_strides=c_strides, trans_a=trans_a, trans_b=trans_b,
               alpha=float(node.attrs.get("alpha", 1.0)), beta=float(node.attrs.get("beta", 1.0)))]


def _matmul_shapes(node):
    a, b = node.inputs
    sa = (1,) + tuple(a.shape) if a.rank == 1 else tuple(a.shape)
    sb = tuple(b.shape) + (1,) if b.rank == 1 else tuple(b.shape)
    if sa[-1] != sb[-2]:
        raise CompileError(f"inner dimensions differ ({sa[-1]} and {sb[-2]})", node)
    batch = broadcast(node, sa[:-2], sb[:-2])
    return sa, sb, batch


def infer_matmul(node, graph):
    a, b = node.inputs
    if a.dtype != b.dtype:
        raise CompileError(f"inputs have different types ({a.dtype.name}, {b.dtype.name})", node)
    sa, sb, batch = _matmul_shapes(node)
    shape = batch + ((sa[-2],) if a.rank > 1 else ()) + ((sb[-1],) if b.rank > 1 else ())
    set_output(node, 0, a.dtype, shape)


def lower_matmul(node, graph):
    sa, sb, batch = _matmul_shapes(node)
    m, k, n = sa[-2], sa[-1], sb[-1]
    pa = (1,) * (len(batch) - len(sa) + 2) + sa[:-2]
    pb = (1,) * (len(batch) - len(sb) + 2) + sb[:-2]
    ya = strides(batch + (m, n))
    sa_full, sb_full = strides(pa + (m, k)), strides(pb + (k, n))
    views = [(0, [0 if p[i] == 1 else full[i] for i in range(len(batch))])
             for p, full in ((pa, sa_full), (pb, sb_full))]
    loops = nest(batch, *views, (0, ya[:len(batch)]))
    return [ir("Gemm", node, node.inputs, node.outputs, M=m, N=n, K=k, batch=loops,
               a_strides=(k, 1), b_strides=(n, 1), c_strides=None, trans_a=False, trans_b=False,
               alpha=1.0, beta=0.0)]


def _one_axis(node, axes):
    """The output's time axis, from the set of those the per-step operands give."""
    if len(axes) > 1:
        raise refuse(node, "crosses the time axes of its operands")
    return [axes.pop()]


def stream_gemm(node, classes, time):
    """A's rows and B's columns may be steps (C's then line up with them); not the summed K."""
    axes = set()
    for i, k in time_axes(node, classes).items():
        if i == 2:
            axes.add(k + 2 - node.input(2).rank)
            continue
        trans = node.attrs.get("transA" if i == 0 else "transB", 0)
        kept = (1 if trans else 0) if i == 0 else (0 if trans else 1)
        if k != kept:
            raise refuse(node, "sums over the time axis")
        axes.add(i)
    return _one_axis(node, axes)


def stream_matmul(node, classes, time):
    """A's rows, B's columns and the batch axes may be steps; not the summed K."""
    a, b = node.inputs
    rank = node.output(0).rank
    batch = rank - (a.rank > 1) - (b.rank > 1)
    axes = set()
    for i, k in time_axes(node, classes).items():
        r = node.input(i).rank
        summed = r - 1 if i == 0 else max(r - 2, 0)
        if k == summed:
            raise refuse(node, "sums over the time axis")
        if k >= r - 2:  # A's rows or B's columns
            axes.add(batch if i == 0 else rank - 1)
        else:
            axes.add(batch - (r - 2) + k)
    return _one_axis(node, axes)


register("Gemm", 7, infer=infer_gemm, lower=lower_gemm, stream=stream_gemm)
register("MatMul", 1, infer=infer_matmul, lower=lower_matmul, stream=stream_matmul)
