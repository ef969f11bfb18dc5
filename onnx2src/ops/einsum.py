"""Einsum, for the equations exporters write: batched matrix products and projections such as
"bij,bjk->bik", "btf,fo->bto", "bhid,bhjd->bhij", "...ij,...jk->...ik", plus transposes and sums
of one operand. Each is lowered to the IR `Gemm` (ops/gemm.py), with `Transpose` copies and free
`View` reshapes around it:

    A [batch..., M..., K...] as [batch..., prod(M), prod(K)]
    B [batch..., K..., N...] as [batch..., prod(K), prod(N)]   →  Y [batch..., M..., N...]

where batch indices are in both operands and the output, K (summed) indices in both operands
only, M in the first operand and the output, N in the second and the output. An index that only
one operand has and the output lacks is summed first, as a product with a vector of ones. The
operand known at compile time (a weight) takes the role of B, so the C target packs it once.
Refused with the equation named: more than two operands, an index repeated within an operand
(diagonals, traces) or in the output.
"""
import string

import numpy as np

from ..dims import is_static, product
from ..ir import CompileError, Value
from ..loops import contiguous, nest, strides
from . import ir, refuse, register, set_output, time_axes

LETTERS = set(string.ascii_letters)
SHOWN = 60  # characters of an equation (from the model) shown in an error line


def _shown(equation: str) -> str:
    """The equation for an error line: quoted, quotes and backslashes escaped, cut to SHOWN."""
    text = equation if len(equation) <= SHOWN else equation[:SHOWN - 3] + "..."
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Equation:
    """A parsed equation: the index labels of each operand and of the output, and each label's
    size. Letters label themselves; the dims an ellipsis covers are labelled ".0", ".1", ...
    (right-aligned over the operands, as NumPy broadcasts them)."""

    def __init__(self, node):
        self.node = node
        self.text = node.attrs.get("equation")
        if not isinstance(self.text, str):
            raise CompileError("the equation attribute is missing", node)
        eq = self.text.replace(" ", "")
        lhs, arrow, rhs = eq.partition("->")
        if "->" in rhs:
            self.fail("has more than one \"->\"")
        terms = lhs.split(",")
        if len(terms) != len(node.inputs):
            self.fail(f"has {len(terms)} operand(s) but the node has {len(node.inputs)} input(s)")
        if len(terms) > 2:
            self.fail("has more than two operands (not supported)")
        parsed = [self._term(t, "operand") for t in terms]
        ranks = [v.rank for v in node.inputs]
        covered = []
        for (before, after, dots), rank, k in zip(parsed, ranks, range(len(terms))):
            rest = rank - len(before) - len(after)
            if rest < 0 or (rest and not dots):
                self.fail(f"gives operand {k} {len(before) + len(after)} indices, but it has rank {rank}")
            covered.append(rest)
        self.ellipsis = max(covered, default=0)
        self.terms = []
        for (before, after, _), rest in zip(parsed, covered):
            dots = [f".{self.ellipsis - rest + j}" for j in range(rest)]
            labels = before + dots + after
            for label in labels:
                if labels.count(label) > 1:
                    self.fail(f"repeats index '{label}' within one operand (a diagonal or trace: not supported)")
            self.terms.append(labels)
        all_dots = [f".{j}" for j in range(self.ellipsis)]
        if arrow:
            before, after, dots = self._term(rhs, "output")
            self.out = before + (all_dots if dots else []) + after
            for label in self.out:
                if self.out.count(label) > 1:
                    self.fail(f"repeats index '{label}' in the output (not supported)")
                if not any(label in t for t in self.terms):
                    self.fail(f"has output index '{label}', which no operand has")
        else:
            letters = [l for t in self.terms for l in t if not l.startswith(".")]
            self.out = all_dots + sorted(l for l in set(letters) if letters.count(l) == 1)
        self.sizes = {}
        for labels, v in zip(self.terms, node.inputs):
            for label, d in zip(labels, v.shape):
                self._size(label, d)

    def _term(self, text, what):
        if text.count("...") > 1:
            self.fail(f"has more than one ellipsis in an {what}")
        before, dots, after = text.partition("...")
        for c in before + after:
            if c not in LETTERS:
                self.fail(f"has the character {c!r} in an {what}, which is no index letter")
        return list(before), list(after), bool(dots)

    def _size(self, label, d):
        old = self.sizes.get(label)
        if old is None or old == d:
            self.sizes[label] = d
        elif label.startswith(".") and (is_static(d) and d == 1 or is_static(old) and old == 1):
            self.sizes[label] = old if is_static(d) and d == 1 else d   # broadcast
        else:
            self.fail(f"gives index '{label}' the sizes {old} and {d}" if not label.startswith(".") else
                      f"has ellipsis dims of sizes {old} and {d}, which do not broadcast")

    def fail(self, why):
        raise CompileError(f"Einsum equation {_shown(self.text)} {why}", self.node)


def infer_einsum(node, graph):
    types = {v.dtype.name for v in node.inputs}
    if len(types) > 1:
        raise CompileError(f"inputs have different types ({', '.join(sorted(types))})", node)
    if types == {"bool"}:
        raise CompileError("Einsum of bool tensors is not supported", node)
    eq = Equation(node)
    set_output(node, 0, node.input(0).dtype, [eq.sizes[l] for l in eq.out])


def fold_einsum(node, *xs):
    return [np.einsum(node.attrs["equation"].replace(" ", ""), *xs)]


def stream(node, classes, time):
    """Per-step when the per-step operands label their time axes alike and the output keeps
    that index (it is not summed)."""
    eq = Equation(node)
    labels = {eq.terms[i][k] for i, k in time_axes(node, classes).items()}
    if len(labels) > 1:
        raise refuse(node, "crosses the time axes of its operands")
    label = labels.pop()
    if label not in eq.out:
        raise refuse(node, "sums over the time axis")
    return [eq.out.index(label)]


register("Einsum", 12, infer=infer_einsum, fold=fold_einsum, stream=stream,
         lower=lambda node, graph: Lowering(node).run())


class Lowering:
    """Builds the IR nodes of one Einsum; intermediate values are named after the node."""

    def __init__(self, node):
        self.node, self.eq, self.nodes, self.count = node, Equation(node), [], 0

    def run(self):
        eq, y = self.eq, self.node.output(0)
        operands = list(zip(self.node.inputs, eq.terms))
        # indices that one operand alone has, and the output lacks, are summed first
        for k, (v, labels) in enumerate(operands):
            others = [l for j, (_, ls) in enumerate(operands) if j != k for l in ls] + eq.out
            kept = [l for l in labels if l in others]
            if len(kept) < len(labels):
                operands[k] = (self.sum(v, labels, kept, None if len(operands) > 1 else y, eq.out), kept)
        if len(operands) == 1:
            v, labels = operands[0]
            if v is not y:
                self.transpose(v, [labels.index(l) for l in eq.out], y)
            return self.nodes
        self.product(operands, y)
        return self.nodes

    # -- building blocks ------------------------------------------------------------------------
    def value(self, what, dtype, shape, data=None):
        self.count += 1
        return Value(f"{self.node.name}_{what}{self.count}", dtype, tuple(shape), data)

    def reshape(self, v, shape, out=None):
        shape = tuple(shape)
        if out is None and tuple(v.shape) == shape:
            return v
        if out is None and v.is_constant:
            return self.value("const", v.dtype, shape, v.data.reshape(shape))
        out = out or self.value("view", v.dtype, shape)
        self.nodes.append(ir("View", self.node, [v], [out]))
        return out

    def transpose(self, v, perm, out=None):
        """v with its axes permuted; into `out` when given (a View if perm keeps the order)."""
        shape = tuple(v.shape[p] for p in perm)
        if perm == sorted(perm):
            return self.reshape(v, shape, out)
        if out is None and v.is_constant:
            return self.value("const", v.dtype, shape, np.ascontiguousarray(np.transpose(v.data, perm)))
        out = out or self.value("transposed", v.dtype, shape)
        vs = strides(v.shape)
        part = nest(shape, contiguous(shape), (0, [vs[p] for p in perm]))
        self.nodes.append(ir("Transpose", self.node, [v], [out], perm=list(perm), parts=[part]))
        return out

    def gemm(self, a, b, y):
        """y[..., m, n] = sum_k a[..., m, k] * b[..., k, n], batch dims broadcast (equal ranks);
        an empty sum (k = 0) or an empty result is a fill with zeros."""
        m, k, n = a.shape[-2], a.shape[-1], b.shape[-1]
        if any(is_static(d) and d == 0 for d in (k, *y.shape)):
            self.nodes.append(ir("Fill", self.node, [], [y], value=0.0 if y.dtype.numpy.kind == "f" else 0))
            return
        batch = y.shape[:-2]
        views = [(0, [0 if is_static(d) and d == 1 else s for d, s in zip(v.shape[:-2], strides(v.shape))])
                 for v in (a, b)]
        loops = nest(batch, *views, (0, strides(y.shape)[:len(batch)]))
        self.nodes.append(ir("Gemm", self.node, [a, b], [y], M=m, N=n, K=k, batch=loops,
                             a_strides=(k, 1), b_strides=(n, 1), c_strides=None, trans_a=False,
                             trans_b=False, alpha=1.0, beta=0.0))

    def ones(self, dtype, k):
        """A [k, 1] column of ones: a constant, or filled at run time when k is symbolic."""
        one = 1.0 if dtype.numpy.kind == "f" else 1
        if is_static(k):
            return self.value("ones", dtype, (k, 1), np.ones((k, 1), dtype.numpy))
        v = self.value("ones", dtype, (k, 1))
        self.nodes.append(ir("Fill", self.node, [], [v], value=one))
        return v

    # -- the two forms ----------------------------------------------------------------------------
    def sum(self, v, labels, kept, out, out_labels):
        """v summed over the labels not in `kept`, as [kept] (into `out`, in the order of
        `out_labels`, when this is the whole Einsum)."""
        if out is not None:
            kept = out_labels
        summed = [l for l in labels if l not in kept]
        x = self.transpose(v, [labels.index(l) for l in kept + summed])
        own = dict(zip(labels, v.shape))  # (an ellipsis dim of 1 is summed as 1, not broadcast)
        m, k = product(own[l] for l in kept), product(own[l] for l in summed)
        x = self.reshape(x, (m, k))
        y = self.value("sum", v.dtype, (m, 1))
        self.gemm(x, self.ones(v.dtype, k), y)
        if out is not None:
            self.reshape(y, out.shape, out)
            return out
        return self.reshape(y, [own[l] for l in kept])

    def product(self, operands, y):
        eq = self.eq
        (a, la), (b, lb) = operands
        if a.is_constant and not b.is_constant:  # the weight takes B's role, to be packed once
            (a, la), (b, lb) = (b, lb), (a, la)
        batch = [l for l in eq.out if l in la and l in lb]
        m_labels = [l for l in eq.out if l in la and l not in lb]
        n_labels = [l for l in eq.out if l in lb and l not in la]
        k_labels = [l for l in la if l in lb and l not in eq.out]
        for l in k_labels:
            if l.startswith(".") and a.shape[la.index(l)] != b.shape[lb.index(l)]:
                eq.fail("broadcasts ellipsis dims that it sums over (not supported)")
        size = eq.sizes
        m, n, k = (product(size[l] for l in ls) for ls in (m_labels, n_labels, k_labels))
        a2 = self.transpose(a, [la.index(l) for l in batch + m_labels + k_labels])
        a2 = self.reshape(a2, [a.shape[la.index(l)] for l in batch] + [m, k])
        b2 = self.transpose(b, [lb.index(l) for l in batch + k_labels + n_labels])
        b2 = self.reshape(b2, [b.shape[lb.index(l)] for l in batch] + [k, n])
        y_labels = batch + m_labels + n_labels
        shape = [size[l] for l in batch] + [m, n]
        if y_labels == eq.out and tuple(shape) == tuple(y.shape):  # the product is the output
            self.gemm(a2, b2, y)
            return
        y2 = self.value("product", y.dtype, shape)
        self.gemm(a2, b2, y2)
        if y_labels == eq.out:
            self.reshape(y2, y.shape, y)
        else:
            y3 = self.reshape(y2, [size[l] for l in y_labels])
            self.transpose(y3, [y_labels.index(l) for l in eq.out], y)
