"""A head on the last step of a recurrence reads its final state (Y_h) instead of its Y.

`out, _ = lstm(x); fc(out[:, -1])` exports as Y (every step, [T, D, B, H] or [B, T, D, H]) →
Squeeze / Reshape / Transpose → Gather (or Slice) of the last step. For a forward recurrence
without sequence_lens that last step is Y_h, so the head reads Y_h and Y is not computed: its
buffer grows with the sequence bound, Y_h does not. Runs after fold_layout.
"""
from typing import Dict, List, Optional


from ..dims import Dim, product
from ..ir import Node, Value
from ..ops import axis_of, lookup, slice as slice_op
from ..ops.recurrent import GATES
from .graph_edit import VIEWS, VERSIONS, unit, perm_of, reads, taken_names, fresh, shape_value


def run(graph) -> bool:
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
        for v in {id(v): v for v in reads(node)}.values():
            if id(node) in live:
                readers.setdefault(id(v), []).append(node)
    outputs = {id(v) for v in graph.outputs}
    names, changed = taken_names(graph), False
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
            rec.outputs[1] = Value(fresh(names, f"{y.name}_last"))
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
            needed.update(id(v) for v in reads(node))
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
                or sum(x is v for x in reads(reader)) != 1):
            return False
        out = reader.output(0)
        if reader.op_type == "Transpose":
            perm = perm_of(reader)
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
        node = Node(op, fresh(names, f"{head.name}_{op}"), inputs, [out], attrs, VERSIONS[op])
        lookup(node).infer(node, graph)
        nodes.append(node)
        return out

    def reshaped(src, shape, out=None):
        if tuple(src.shape) == tuple(shape) and out is None:
            return src
        if tuple(src.shape) == tuple(shape):
            return make("Identity", [src], out)
        out = out or Value(fresh(names, f"{state.name}_reshaped"))
        return make("Reshape", [src, shape_value(fresh(names, f"{out.name}_shape"), shape)], out, allowzero=1)

    src = state
    for op, arg in path:
        if op == "Reshape":
            shape = tuple(arg)
            continue
        big = [p for p in arg if not unit(shape[p])]
        if big != sorted(big):
            src = reshaped(src, shape)
            src = make("Transpose", [src], Value(fresh(names, f"{state.name}_transposed")), perm=list(arg))
        shape = tuple(shape[p] for p in arg)
    reshaped(src, head.output(0).shape, head.output(0))
    return nodes
