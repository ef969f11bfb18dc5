"""Memory planning for the C target: one static arena per dtype, buffers reused by liveness.

Values joined by `View` nodes share one storage. A storage is the caller's buffer (a graph input
or output), a weight, or a slot in the arena of its dtype. Slots are placed largest first, each
just above every already placed slot whose lifetime overlaps its own. Sizes are polynomials in
the dims' bounds, and each offset is kept as "the max of those slots' ends", so the layout stays
valid when the user overrides a bound with -D at C build time.
"""
from dataclasses import dataclass, field
from typing import List, Optional

from ..options import DEFAULT_MAX_BATCH, DEFAULT_MAX_DIM
from ..dims import Dim, evaluate, product, upper_bound
from ..ir import CompileError

ALIGN = 16  # elements; every slot starts on a multiple (64 bytes for float)
BLOCK = 64  # node indices a bucket of the placed slots' lifetimes covers (finds overlaps fast)


@dataclass(eq=False)
class Storage:
    values: list
    kind: str = "arena"            # arena | input | output | weight
    dtype: object = None
    size: object = 0               # elements, a polynomial in the bounds
    first: int = 0                 # node index of the first write
    last: int = 0                  # node index of the last read
    below: List["Storage"] = field(default_factory=list)  # slots this one is placed above
    index: Optional[int] = None    # order within its arena


def run(graph) -> bool:
    graph.bounds = default_bounds(graph)
    storage = {}  # id(value) -> Storage

    def of(v):
        if id(v) not in storage:
            kind = ("input" if any(v is i for i in graph.inputs) else
                    "output" if any(v is o for o in graph.outputs) else
                    "weight" if v.is_constant else "arena")
            storage[id(v)] = Storage([v], kind, v.dtype)
        return storage[id(v)]

    for v in graph.inputs + graph.outputs:
        of(v)
    for node in graph.nodes:
        for v in node.inputs + node.outputs + node.scratch + list(node.attrs.get("packed", {}).values()):
            if v is not None:
                of(v)
        if node.op_type != "View":
            continue
        src, dst = of(node.inputs[0]), of(node.outputs[0])
        if src.kind != "arena" and dst.kind != "arena":
            node.op_type = "Copy"  # e.g. an output that is a reshaped input: needs its own bytes
            continue
        merged = src if src.kind != "arena" else dst if dst.kind != "arena" else src
        other = dst if merged is src else src
        merged.values += other.values
        for v in other.values:
            storage[id(v)] = merged

    slots = {}
    for i, node in enumerate(graph.nodes):
        for v in node.outputs + node.scratch:
            if v is not None and storage[id(v)].kind == "arena":
                s = storage[id(v)]
                if id(s) not in slots:  # first write; views of it hold as many elements
                    slots[id(s)] = s
                    s.first, s.size = i, upper_bound(product(v.shape))
        for v in node.inputs:
            if v is not None and storage[id(v)].kind == "arena":
                storage[id(v)].last = i
    for s in slots.values():
        s.last = max(s.last, s.first)

    graph.storage = storage
    graph.arenas, graph.arena_elements = {}, {}
    for dtype in sorted({s.dtype.name for s in slots.values()}):
        members = [s for s in slots.values() if s.dtype.name == dtype]
        members.sort(key=lambda s: (-evaluate(s.size, graph.bounds), s.first))
        placed, live = [], {}  # live: {block of node indices: slots placed live in it}
        for s in members:
            near = {id(p): p for b in range(s.first // BLOCK, s.last // BLOCK + 1) for p in live.get(b, ())}
            s.below = sorted((p for p in near.values() if p.first <= s.last and s.first <= p.last),
                             key=lambda p: p.index)
            s.index = len(placed)
            placed.append(s)
            for b in range(s.first // BLOCK, s.last // BLOCK + 1):
                live.setdefault(b, []).append(s)
        graph.arenas[dtype] = placed
        graph.arena_elements[dtype] = elements(placed, graph.bounds)
        if graph.arena_elements[dtype] >= 2**31:
            where = (f"at the bounds {graph.bounds}; lower them with --max-dim" if graph.bounds else
                     "(the model's tensors are too large for a C array)")
            raise CompileError(f"the {dtype} arena would need {graph.arena_elements[dtype]:,} elements {where}")
    return True


def default_bounds(graph):
    """The bounds asked for (graph.options.max_dims), and the defaults for the others: a
    recurrence's batch dim 1 (one stream: the static arena then grows with nothing but the
    sequence bound), any other dim DEFAULT_MAX_DIM."""
    batch = {s for n in graph.nodes if n.op_type == "Recurrent" and isinstance(n.attrs["batch"], Dim)
             for s in n.attrs["batch"].symbols() if n.attrs["batch"] == Dim.symbol(s)}
    requested = dict(graph.options.max_dims) if graph.options is not None else {}
    return {s: requested.get(s, DEFAULT_MAX_BATCH if s in batch else DEFAULT_MAX_DIM) for s in graph.symbols()}


def elements(slots, bounds) -> int:
    """Elements of one arena at the given bounds (the C code computes the same from its macros:
    each slot rounded up to 16 elements, placed above the slots listed below it)."""
    ends = {}
    for s in slots:
        size = -(-evaluate(s.size, bounds) // ALIGN) * ALIGN
        ends[id(s)] = max((ends[id(b)] for b in s.below), default=0) + size
    return max(ends.values(), default=0)
