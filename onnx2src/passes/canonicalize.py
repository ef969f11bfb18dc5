"""Canonicalization of the recurrences: an initial state of zeros becomes no initial state, and
the Transposes PyTorch wraps around a batch-first recurrence fold into its layout.

Zero states: a recurrence without initial_h / initial_c starts from zeros, so a state that is
all zeros need not be filled, stored or copied. PyTorch's exporters spell `torch.zeros(layers,
batch, hidden)` with a dynamic batch as ConstantOfShape of a shape computed from Shape
(TorchScript), or as Expand of a zero scalar, then Slice per layer (the torch.export-based
exporter); with a static batch it is a zero constant. Dropping the input also tells the
streaming analysis that the stream starts from zeros.

Layout: a batch_first nn.LSTM / GRU / RNN exports as X [B, T, I] → Transpose → recurrence
(layout 0: X [T, B, I], Y [T, D, B, H]) → Squeeze or Transpose + Reshape → Transpose →
[B, T, D*H]. The emitters run layout 1 (X [B, T, I], Y [B, T, D, H], states [B, D, H])
natively, so those Transposes are copies the rewrite in `fold_layout` removes.

Last step: `out, _ = lstm(x); fc(out[:, -1])` exports as Y (every step, [T, D, B, H] or [B, T,
D, H]) → Squeeze / Reshape / Transpose → Gather (or Slice) of the last step. For a forward
recurrence without sequence_lens that last step is Y_h, so `last_step_from_state` reads Y_h
instead and drops Y: its buffer grows with the sequence bound, Y_h does not.

Runs after constant folding; dead-code elimination then removes what nothing reads anymore.
"""
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..dims import Dim, nonneg, product
from ..ir import INT64, Branch, Node, Value
from ..ops import axis_of, lookup, slice as slice_op
from ..ops.recurrent import GATES

STATES = (5, 6)  # initial_h, initial_c
# ops whose output is all zeros when their input 0 is
KEEP_ZEROS = {"Expand", "Tile", "Slice", "Split", "Gather", "Reshape", "Squeeze", "Unsqueeze", "Flatten",
              "Transpose", "Identity", "Cast"}


def run(graph) -> bool:
    changed = drop_zero_states(graph)
    changed = fold_layout(graph) or changed
    return last_step_from_state(graph) or changed


def drop_zero_states(graph) -> bool:
    """A recurrence's initial_h / initial_c that is all zeros, whatever the run-time sizes,
    becomes no input."""
    producer = {id(v): n for n in graph.nodes for v in n.outputs if v is not None}
    changed = False
    for node in graph.nodes:
        if node.op_type not in GATES:
            continue
        for i in STATES:
            if node.input(i) is not None and _zeros(node.input(i), producer):
                node.inputs[i] = None
                changed = True
    return changed


def _zeros(v, producer) -> bool:
    """Whether v is all zeros, whatever the run-time sizes."""
    if v.is_constant:
        return not np.any(v.data)
    node = producer.get(id(v))
    if node is None:
        return False
    if node.op_type == "ConstantOfShape":
        value = node.attrs.get("value")
        return value is None or not np.any(value)
    if node.op_type == "Concat":
        return all(_zeros(x, producer) for x in node.inputs)
    return node.op_type in KEEP_ZEROS and _zeros(node.input(0), producer)


# -- the layout of the recurrences -------------------------------------------------------------------

def fold_layout(graph) -> bool:
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


def _unit(d) -> bool:
    return isinstance(d, int) and d == 1


def _perm_of(node) -> List[int]:
    rank = node.input(0).rank
    return [p % rank for p in node.attrs.get("perm", range(rank - 1, -1, -1))]


def _nested(node):
    """The node, and the nodes of its If branches, depth first."""
    yield node
    for attr in node.attrs.values():
        if isinstance(attr, Branch):
            for inner in attr.nodes:
                yield from _nested(inner)


def _reads(node) -> List[Value]:
    """The values a node reads: its inputs, and those its If branches read or return."""
    return [v for n in _nested(node) for v in n.inputs if v is not None] + [
        v for n in _nested(node) for attr in n.attrs.values() if isinstance(attr, Branch) for v in attr.outputs]


def _copied(nodes, outputs):
    """Elements the live Transposes among `nodes` copy per run (a polynomial in the dims)."""
    live = {id(v) for v in outputs}
    total = 0
    for node in reversed(nodes):
        if any(v is not None and id(v) in live for v in node.outputs):
            live.update(id(v) for v in _reads(node))
            if node.op_type == "Transpose":
                total = total + product(node.output(0).shape)
    return total


def _through_reshape(old, perm, out):
    """A reshape of old == transpose(new, perm) to the shape of `out`, as (the shape of a
    reshape of new, the permutation giving out from it), or None when the reshape splits an
    axis of old or merges axes that are not neighbours, in order, in new. Axes of size 1 may
    go anywhere: they move no element."""
    big = [i for i, d in enumerate(old.shape) if not _unit(d)]
    rank = {i: k for k, i in enumerate(sorted(big, key=lambda i: perm[i]))}  # place in new's order
    groups, k = {}, 0  # out axis (not of size 1) → the axes of old it merges
    for j, d in enumerate(out.shape):
        if _unit(d):
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


VIEWS = ("Reshape", "Squeeze", "Unsqueeze", "Flatten", "Identity")
VERSIONS = {"Transpose": 13, "Reshape": 14, "Shape": 13, "Gather": 13, "Identity": 16}
LAYOUT_VERSION = 14  # the first version of RNN / GRU / LSTM with the layout attribute


def _taken_names(graph) -> set:
    """Every node and value name in the graph, its If branches included."""
    everything = [m for n in graph.nodes for m in _nested(n)]
    names = {v.name for n in everything for v in n.inputs + n.outputs if v is not None}
    return names | {v.name for v in graph.inputs + graph.outputs} | {n.name for n in everything}


def _fresh(names: set, name: str) -> str:
    """`name`, or `name_2`, `name_3`... : the first not in `names` (which then holds it)."""
    base, k = name, 1
    while name in names:
        k += 1
        name = f"{base}_{k}"
    names.add(name)
    return name


def _shape_value(name: str, dims) -> Value:
    """A constant shape (Reshape's input 1), of ints or symbolic sizes."""
    data = np.array(list(dims), dtype=object)
    if all(isinstance(d, int) for d in dims):
        data = data.astype(np.int64)
    return Value(name, INT64, (len(dims),), data)


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
            for v in {id(v): v for v in _reads(node)}.values():
                self.readers.setdefault(id(v), []).append(node)
        self.names = _taken_names(graph)
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

    def _fresh(self, name: str) -> str:
        return _fresh(self.names, name)

    def _node(self, op, slot, inputs, out: Optional[Value] = None, like: Optional[Value] = None,
              **attrs) -> Value:
        """A new ONNX node in the place of the original node `slot` (so under its guard, if any),
        its output inferred: `out` (an original value it now produces) or a new value named after
        `like` (or input 0)."""
        if slot.attrs.get("guard"):
            attrs["guard"] = slot.attrs["guard"]
        if out is None:
            out = Value(self._fresh(f"{(like or inputs[0]).name}_layout1"))
            self.made[id(out)] = out
        node = Node(op, self._fresh(f"{slot.name}_{op}"), list(inputs), [out], attrs, VERSIONS[op])
        self._add(slot, node)
        return out

    def _add(self, slot, node):
        self.slots.setdefault(id(slot), []).append(node)
        lookup(node).infer(node, self.graph)

    def _shape_value(self, stem, dims) -> Value:
        return _shape_value(self._fresh(f"{stem.name}_shape"), dims)

    def _permute(self, src, perm, slot, out: Optional[Value] = None) -> Value:
        """transpose(src, perm), as a Reshape when only axes of size 1 move."""
        big = [p for p in perm if not _unit(src.shape[p])]
        if big == sorted(big):
            shape = [src.shape[p] for p in perm]
            return self._node("Reshape", slot, [src, self._shape_value(out or src, shape)], out, allowzero=1)
        return self._node("Transpose", slot, [src], out, perm=list(perm))

    def _transposed(self, v, perm, slot) -> Value:
        """A value equal to transpose(v, perm), read by a node in `slot`: no new node when v is
        itself moved or transposed so that the two cancel, a new constant when v is one."""
        if id(v) in self.moved:
            new, p = self.moved[id(v)]
            v, perm = new, _compose(p, perm)
        elif v.is_constant:
            data = np.ascontiguousarray(np.transpose(v.data, perm))
            return Value(self._fresh(f"{v.name}_layout1"), v.dtype, data.shape, data)
        elif getattr(self.producer.get(id(v)), "op_type", None) == "Transpose":
            t = self.producer[id(v)]
            v, perm = t.input(0), _compose(_perm_of(t), perm)
        return v if _identity(perm) else self._permute(v, perm, slot)

    # -- the rewrite -------------------------------------------------------------------------------

    def root(self, transpose: Node) -> None:
        """Drop a Transpose feeding a recurrence's X, carrying its output to the readers."""
        self.slots[id(transpose)] = []
        self._move(transpose.output(0), transpose.input(0), _perm_of(transpose))

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
            if sum(v is old for v in _reads(reader)) != 1 or reader.input(0) is not old:
                kept = True
            elif reader.op_type == "Transpose":
                self.slots[id(reader)] = []
                self._move(reader.output(0), new, _compose(perm, _perm_of(reader)))
            elif reader.op_type in VIEWS and (regrouped := _through_reshape(old, perm, reader.output(0))):
                shape, rest = regrouped
                self.slots[id(reader)] = []
                made = self._node("Reshape", reader, [new, self._shape_value(reader, shape)],
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
        indices = Value(self._fresh(f"{reader.name}_order"), INT64, picked.shape, picked)
        self._node("Gather", reader, [sizes, indices], reader.output(0), axis=0)

    def _recurrence(self, rec: Node, x: Value) -> None:
        """The recurrence, in layout 1, reading x [B, T, I]; its states and outputs move."""
        inputs = list(rec.inputs)
        inputs[0] = x
        for i in STATES:
            if rec.input(i) is not None:
                inputs[i] = self._transposed(rec.input(i), [1, 0, 2], rec)  # [D, B, H] → [B, D, H]
        outputs = [None if v is None else Value(self._fresh(f"{v.name}_layout1")) for v in rec.outputs]
        self.made.update((id(v), v) for v in outputs if v is not None)
        new = Node(rec.op_type, rec.name, inputs, outputs, {**rec.attrs, "layout": 1},
                   max(rec.version, LAYOUT_VERSION), rec.domain)
        self._add(rec, new)
        for i, (old, moved) in enumerate(zip(rec.outputs, outputs)):
            if old is not None:  # Y [T, D, B, H] from [B, T, D, H]; Y_h, Y_c [D, B, H] from [B, D, H]
                self._move(old, moved, [1, 2, 0, 3] if i == 0 else [1, 0, 2])


# -- a head on the last step ---------------------------------------------------------------------------

def last_step_from_state(graph) -> bool:
    """A forward recurrence without sequence_lens whose Y is read only for its last step gives
    that step as Y_h instead, and no Y. Y is followed through Transposes and reshapes that keep
    its time axis an axis of its own (the element at step t of the input is the one at step t of
    the output) down to readers taking the last step: Gather of index -1 or T - 1 along the time
    axis, or Slice [T - 1:T] of it (and the whole of every other axis). Each such reader is
    replaced by the same Transposes and reshapes on Y_h, which has no time axis, ending in its
    own output value and shape; the Transposes and reshapes between Y and the readers go. When
    Y has any other reader, is a graph output or runs under a guard, the recurrence stays as it
    was: so does a reverse or bidirectional one (a reverse direction's last step is its first
    output, not its final state). Readers no graph output needs don't count, and go."""
    live = _live(graph)
    readers: Dict[int, List[Node]] = {}
    for node in graph.nodes:
        for v in {id(v): v for v in _reads(node)}.values():
            if id(node) in live:
                readers.setdefault(id(v), []).append(node)
    outputs = {id(v) for v in graph.outputs}
    names, changed = _taken_names(graph), False
    for rec in [n for n in graph.nodes if n.op_type in GATES]:
        y = rec.output(0)
        if (y is None or id(rec) not in live or rec.attrs.get("direction", "forward") != "forward"
                or rec.input(4) is not None or rec.attrs.get("guard")):
            continue
        heads, views = [], []
        time = 1 if rec.attrs.get("layout", 0) else 0
        if not _last_step_heads(y, time, [], readers, outputs, heads, views) or not heads:
            continue
        if rec.output(1) is None:
            rec.outputs = list(rec.outputs) + [None] * (2 - len(rec.outputs))
            rec.outputs[1] = Value(_fresh(names, f"{y.name}_last"))
        rec.outputs[0] = None
        lookup(rec).infer(rec, graph)
        replaced = {id(head): _from_state(rec.output(1), path, head, graph, names) for head, path in heads}
        live.update(id(m) for nodes in replaced.values() for m in nodes)
        live.difference_update(id(v) for v in views)
        graph.nodes = [m for n in graph.nodes for m in replaced.get(id(n), [n])]
        changed = True
    if changed:  # nodes no output needs may still read a Y no longer made (dead-code elimination's job, early)
        graph.nodes = [n for n in graph.nodes if id(n) in live]
    return changed


def _live(graph) -> set:
    """The ids of the nodes some graph output needs."""
    needed, live = {id(v) for v in graph.outputs}, set()
    for node in reversed(graph.nodes):
        if any(v is not None and id(v) in needed for v in node.outputs):
            live.add(id(node))
            needed.update(id(v) for v in _reads(node))
    return live


def _last_step_heads(v, axis, path, readers, outputs, heads, views) -> bool:
    """Whether every reader of v (whose time axis is `axis`) takes only its last step, directly
    or through Transposes and reshapes. Collects those readers in `heads` as (node, path), path
    being the steps ("Transpose", perm) / ("Reshape", shape) that make the reader's input, less
    its time axis, from the last step of the recurrence's Y; the Transposes and reshapes go to
    `views`."""
    if id(v) in outputs:
        return False
    for reader in readers.get(id(v), []):
        if (reader.attrs.get("guard") or reader.input(0) is not v or len(reader.outputs) != 1
                or sum(x is v for x in _reads(reader)) != 1):
            return False
        out = reader.output(0)
        if reader.op_type == "Transpose":
            perm = _perm_of(reader)
            step, after = ("Transpose", [p - (p > axis) for p in perm if p != axis]), perm.index(axis)
        elif reader.op_type in VIEWS and (after := _time_axis_after(v.shape, axis, out.shape)) is not None:
            step = ("Reshape", out.shape[:after] + out.shape[after + 1:])
        elif _takes_last(reader, v, axis):
            heads.append((reader, path))
            continue
        else:
            return False
        views.append(reader)
        if not _last_step_heads(out, after, path + [step], readers, outputs, heads, views):
            return False
    return True


def _time_axis_after(shape, axis, out) -> Optional[int]:
    """The axis of a reshape of `shape` to `out` holding the steps of axis `axis` one for one
    (the same size, after axes of the same total size), or None when the reshape mixes them
    with other axes."""
    before = product(shape[:axis])
    for a, d in enumerate(out):
        if d == shape[axis] and product(out[:a]) == before:
            return a
    return None


def _takes_last(node, v, axis) -> bool:
    """Whether the node's output is the last step of v along axis `axis`, everything else
    whole: Gather of one index -1 or T - 1, or Slice [T - 1:T] with step 1."""
    steps = v.shape[axis]
    if node.op_type == "Gather":
        indices = node.input(1)
        if axis_of(node, node.attrs.get("axis", 0), v.rank) != axis or indices.data is None or indices.data.size != 1:
            return False
        index = indices.data.reshape(-1)[0]
        index = index if isinstance(index, Dim) else int(index)
        return index == steps - 1 or (isinstance(index, int) and index == -1)
    if node.op_type == "Slice" and slice_op.is_static(node):
        bounds = slice_op.per_axis(node, v.shape)[0]
        want = [(steps - 1, steps, 1) if a == axis else (0, d, 1) for a, d in enumerate(v.shape)]
        return all(b == w for got, expected in zip(bounds, want) for b, w in zip(got, expected))
    return False


def _from_state(state, path, head, graph, names) -> List[Node]:
    """The nodes giving the head's output from `state` (Y_h: the last step of Y, less its time
    axis) through `path`: consecutive reshapes, and Transposes that move only axes of size 1,
    are one Reshape; the last node writes the head's output."""
    nodes, shape = [], state.shape

    def make(op, inputs, out, **attrs):
        node = Node(op, _fresh(names, f"{head.name}_{op}"), inputs, [out], attrs, VERSIONS[op])
        lookup(node).infer(node, graph)
        nodes.append(node)
        return out

    def reshaped(src, shape, out=None):
        if tuple(src.shape) == tuple(shape) and out is None:
            return src
        if tuple(src.shape) == tuple(shape):
            return make("Identity", [src], out)
        out = out or Value(_fresh(names, f"{state.name}_reshaped"))
        return make("Reshape", [src, _shape_value(_fresh(names, f"{out.name}_shape"), shape)], out, allowzero=1)

    src = state
    for op, arg in path:
        if op == "Reshape":
            shape = tuple(arg)
            continue
        big = [p for p in arg if not _unit(shape[p])]
        if big != sorted(big):
            src = reshaped(src, shape)
            src = make("Transpose", [src], Value(_fresh(names, f"{state.name}_transposed")), perm=list(arg))
        shape = tuple(shape[p] for p in arg)
    reshaped(src, head.output(0).shape, head.output(0))
    return nodes
