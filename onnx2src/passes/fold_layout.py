"""The Transposes PyTorch wraps around a batch-first recurrence fold into its layout.

A batch_first nn.LSTM / GRU / RNN exports as X [B, T, I] → Transpose → recurrence (layout 0:
X [T, B, I], Y [T, D, B, H]) → Squeeze or Transpose + Reshape → Transpose → [B, T, D*H]. The
emitters run layout 1 (X [B, T, I], Y [B, T, D, H], states [B, D, H]) natively, so those
Transposes are copies this pass removes. Runs after zero_states; dead-code elimination then
removes what nothing reads anymore.
"""
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..dims import Dim, nonneg, product
from ..ir import INT64, Node, Value
from ..ops import lookup
from ..ops.recurrent import GATES
from .graph_edit import STATES, VIEWS, VERSIONS, unit, perm_of, reads, taken_names, fresh, shape_value


def run(graph) -> bool:
    """Each layout-0 recurrence whose X a Transpose produces reads that Transpose's input
    instead, with layout 1, and so does every layout-0 recurrence its outputs reach through
    Transposes and reshapes (the layers above it). Every other value keeps its contents: the
    rewrite carries each moved value as (a new value, the permutation giving the old one from
    it) down to the old value's readers; a Transpose there composes with the permutation (and
    disappears where the two cancel), a reshape moves before it where the permutation keeps the
    merged axes together, Shape takes the new value's sizes in the old order, a recurrence's X
    takes its layout; any other reader, or a graph output, gets the old value back through one
    Transpose (a Reshape when only axes of size 1 move). The rewrite of each group of
    recurrences is kept only when it copies fewer elements through Transposes, for every size
    of the symbolic dims; otherwise the graph stays as it was."""
    changed, tried = False, set()
    while True:
        producer = {id(v): n for n in graph.nodes for v in n.outputs if v is not None}
        roots = [n for n in graph.nodes if n.op_type in GATES and n.attrs.get("layout", 0) == 0
                 and id(n) not in tried and n.input(0) is not None
                 and getattr(producer.get(id(n.input(0))), "op_type", None) == "Transpose"]
        if not roots:
            return changed
        tried.add(id(roots[0]))
        rewrite = _Rewrite(graph)
        rewrite.root(producer[id(roots[0].input(0))])
        nodes = rewrite.nodes()
        before, after = _copied(graph.nodes, graph.outputs), _copied(nodes, graph.outputs)
        if _fewer(after, before) and _complete(nodes, graph):
            graph.nodes = nodes
            changed = True


def _fewer(after, before) -> bool:
    """Whether after < before for every size >= 1 of the symbols: written in s - 1 >= 0 instead
    of each symbol s, before - after - 1 has no negative coefficient (or, with min / max terms,
    dims.nonneg proves it)."""
    gap = before - after - 1
    if not isinstance(gap, Dim):
        return gap >= 0
    if any(not isinstance(a, str) for mono in gap.terms for a in mono):
        return nonneg(gap)
    shifted = 0
    for mono, coef in gap.terms.items():
        term = coef
        for symbol in mono:
            term = term * (Dim.symbol(symbol) + 1)
        shifted = shifted + term
    return all(c >= 0 for c in shifted.terms.values()) if isinstance(shifted, Dim) else shifted >= 0


def _complete(nodes, graph) -> bool:
    """Whether every value the nodes and the graph outputs read is a graph input, known, or made
    by an earlier node (a state taken from behind a Transpose whose input the rewrite moved
    later is not)."""
    ready = {id(v) for v in graph.inputs}
    for node in nodes:
        if any(v is not None and id(v) not in ready and v.data is None for v in node.inputs):
            return False
        ready.update(id(v) for v in node.outputs if v is not None)
    return all(id(v) in ready or v.data is not None for v in graph.outputs)


def _compose(p: Sequence[int], q: Sequence[int]) -> List[int]:
    """The permutation r with transpose(transpose(x, p), q) == transpose(x, r)."""
    return [p[i] for i in q]


def _identity(p: Sequence[int]) -> bool:
    return list(p) == list(range(len(p)))


def _copied(nodes, outputs):
    """Elements the live Transposes among `nodes` copy per run (a polynomial in the dims)."""
    live = {id(v) for v in outputs}
    total = 0
    for node in reversed(nodes):
        if any(v is not None and id(v) in live for v in node.outputs):
            live.update(id(v) for v in reads(node))
            if node.op_type == "Transpose":
                total = total + product(node.output(0).shape)
    return total


def _through_reshape(old, perm, out):
    """A reshape of old == transpose(new, perm) to the shape of `out`, as (the shape of a
    reshape of new, the permutation giving out from it), or None when the reshape splits an
    axis of old or merges axes that are not neighbours, in order, in new. Axes of size 1 may
    go anywhere: they move no element."""
    big = [i for i, d in enumerate(old.shape) if not unit(d)]
    rank = {i: k for k, i in enumerate(sorted(big, key=lambda i: perm[i]))}  # place in new's order
    groups, k = {}, 0  # out axis (not of size 1) → the axes of old it merges
    for j, d in enumerate(out.shape):
        if unit(d):
            continue
        group, size = [], 1
        while k < len(big) and (not group or size != d):
            group.append(big[k])
            size = size * old.shape[big[k]]
            k += 1
        if size != d or [rank[i] for i in group] != list(range(rank[group[0]], rank[group[0]] + len(group))):
            return None
        groups[j] = group
    if k != len(big):
        return None
    key, last = {}, (-1,)  # an axis of size 1 follows the out axis before it
    for j, d in enumerate(out.shape):
        key[j] = last = (rank[groups[j][0]],) if j in groups else last + (j,)
    order = sorted(range(out.rank), key=lambda j: key[j])
    return [out.shape[j] for j in order], [order.index(j) for j in range(out.rank)]
LAYOUT_VERSION = 14  # the first version of RNN / GRU / LSTM with the layout attribute


class _Rewrite:
    """One group of recurrences moved to layout 1, built beside the graph: `slots` maps an
    original node to the nodes taking its place, and the graph changes only if `nodes()` is
    adopted. Original values keep their contents wherever they are still produced; moved ones
    are `moved[id(old)] = (new, perm)`, with old == transpose(new, perm)."""

    def __init__(self, graph):
        self.graph = graph
        self.producer = {id(v): n for n in graph.nodes for v in n.outputs if v is not None}
        self.readers: Dict[int, List[Node]] = {}
        for node in graph.nodes:
            for v in {id(v): v for v in reads(node)}.values():
                self.readers.setdefault(id(v), []).append(node)
        self.names = taken_names(graph)
        self.slots: Dict[int, List[Node]] = {}
        self.moved: Dict[int, tuple] = {}
        self.made: Dict[int, Value] = {}     # values the new nodes produce
        self.claimed: Dict[int, Value] = {}  # id(made value) → the original value it becomes

    def nodes(self) -> List[Node]:
        """The graph's nodes with the rewrite applied."""
        out = []
        for node in self.graph.nodes:
            if id(node) not in self.slots:
                out.append(node)
                continue
            for new in self.slots[id(node)]:
                new.inputs = [self.claimed.get(id(v), v) if v is not None else None for v in new.inputs]
                new.outputs = [self.claimed.get(id(v), v) if v is not None else None for v in new.outputs]
                out.append(new)
        return out

    # -- building blocks ----------------------------------------------------------------------------

    def fresh(self, name: str) -> str:
        return fresh(self.names, name)

    def _node(self, op, slot, inputs, out: Optional[Value] = None, like: Optional[Value] = None,
              **attrs) -> Value:
        """A new ONNX node in the place of the original node `slot` (so under its guard, if any),
        its output inferred: `out` (an original value it now produces) or a new value named after
        `like` (or input 0)."""
        if slot.attrs.get("guard"):
            attrs["guard"] = slot.attrs["guard"]
        if out is None:
            out = Value(self.fresh(f"{(like or inputs[0]).name}_layout1"))
            self.made[id(out)] = out
        node = Node(op, self.fresh(f"{slot.name}_{op}"), list(inputs), [out], attrs, VERSIONS[op])
        self._add(slot, node)
        return out

    def _add(self, slot, node):
        self.slots.setdefault(id(slot), []).append(node)
        lookup(node).infer(node, self.graph)

    def shape_value(self, stem, dims) -> Value:
        return shape_value(self.fresh(f"{stem.name}_shape"), dims)

    def _permute(self, src, perm, slot, out: Optional[Value] = None) -> Value:
        """transpose(src, perm), as a Reshape when only axes of size 1 move."""
        big = [p for p in perm if not unit(src.shape[p])]
        if big == sorted(big):
            shape = [src.shape[p] for p in perm]
            return self._node("Reshape", slot, [src, self.shape_value(out or src, shape)], out, allowzero=1)
        return self._node("Transpose", slot, [src], out, perm=list(perm))

    def _transposed(self, v, perm, slot) -> Value:
        """A value equal to transpose(v, perm), read by a node in `slot`: no new node when v is
        itself moved or transposed so that the two cancel, a new constant when v is one."""
        if id(v) in self.moved:
            new, p = self.moved[id(v)]
            v, perm = new, _compose(p, perm)
        elif v.is_constant:
            data = np.ascontiguousarray(np.transpose(v.data, perm))
            return Value(self.fresh(f"{v.name}_layout1"), v.dtype, data.shape, data)
        elif getattr(self.producer.get(id(v)), "op_type", None) == "Transpose":
            t = self.producer[id(v)]
            v, perm = t.input(0), _compose(perm_of(t), perm)
        return v if _identity(perm) else self._permute(v, perm, slot)

    # -- the rewrite -------------------------------------------------------------------------------

    def root(self, transpose: Node) -> None:
        """Drop a Transpose feeding a recurrence's X, carrying its output to the readers."""
        self.slots[id(transpose)] = []
        self._move(transpose.output(0), transpose.input(0), perm_of(transpose))

    def _move(self, old: Value, new: Value, perm) -> None:
        """old == transpose(new, perm) is no longer produced: give each reader what it needs."""
        self.moved[id(old)] = (new, perm)
        if _identity(perm) and id(new) in self.made and id(new) not in self.claimed:
            self.claimed[id(new)] = old  # the node making new makes old itself
            return
        if _identity(perm):
            return self._restore(old, new, perm)
        kept = any(v is old for v in self.graph.outputs)
        for reader in self.readers.get(id(old), []):
            if id(reader) in self.slots:
                continue  # already rewritten
            if sum(v is old for v in reads(reader)) != 1 or reader.input(0) is not old:
                kept = True
            elif reader.op_type == "Transpose":
                self.slots[id(reader)] = []
                self._move(reader.output(0), new, _compose(perm, perm_of(reader)))
            elif reader.op_type in VIEWS and (regrouped := _through_reshape(old, perm, reader.output(0))):
                shape, rest = regrouped
                self.slots[id(reader)] = []
                made = self._node("Reshape", reader, [new, self.shape_value(reader, shape)],
                                  like=reader.output(0), allowzero=1)
                self._move(reader.output(0), made, rest)
            elif reader.op_type == "Shape" and len(reader.outputs) == 1:
                self._shape(reader, new, perm)
            elif reader.op_type in GATES and reader.attrs.get("layout", 0) == 0:
                self.slots[id(reader)] = []
                self._recurrence(reader, self._transposed(old, [1, 0, 2], reader))
            else:
                kept = True
        if kept:
            self._restore(old, new, perm)

    def _restore(self, old, new, perm) -> None:
        """Produce old again, from new, where its producer stood."""
        slot = self.producer[id(old)]
        if _identity(perm):
            self._node("Identity", slot, [new], old)
        else:
            self._permute(new, perm, slot, old)

    def _shape(self, reader: Node, new: Value, perm) -> None:
        """Shape of the old value: the new value's sizes, gathered in the old order."""
        self.slots[id(reader)] = []
        start, end = (reader.attrs.get("start", 0), reader.attrs.get("end")) if reader.version >= 15 else (0, None)
        sizes = self._node("Shape", reader, [new], like=reader.output(0))
        picked = np.array(list(perm)[start:end], dtype=np.int64)
        indices = Value(self.fresh(f"{reader.name}_order"), INT64, picked.shape, picked)
        self._node("Gather", reader, [sizes, indices], reader.output(0), axis=0)

    def _recurrence(self, rec: Node, x: Value) -> None:
        """The recurrence, in layout 1, reading x [B, T, I]; its states and outputs move."""
        inputs = list(rec.inputs)
        inputs[0] = x
        for i in STATES:
            if rec.input(i) is not None:
                inputs[i] = self._transposed(rec.input(i), [1, 0, 2], rec)  # [D, B, H] → [B, D, H]
        outputs = [None if v is None else Value(self.fresh(f"{v.name}_layout1")) for v in rec.outputs]
        self.made.update((id(v), v) for v in outputs if v is not None)
        new = Node(rec.op_type, rec.name, inputs, outputs, {**rec.attrs, "layout": 1},
                   max(rec.version, LAYOUT_VERSION), rec.domain)
        self._add(rec, new)
        for i, (old, moved) in enumerate(zip(rec.outputs, outputs)):
            if old is not None:  # Y [T, D, B, H] from [B, T, D, H]; Y_h, Y_c [D, B, H] from [B, D, H]
                self._move(old, moved, [1, 2, 0, 3] if i == 0 else [1, 0, 2])
