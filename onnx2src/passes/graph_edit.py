"""What the passes that rewrite recurrences share (zero_states, fold_layout, last_step): the
recurrence's state inputs, the reshaping ops, the names new nodes and values take, and the
values each node reads (its If branches included)."""
from typing import List

import numpy as np

from ..ir import INT64, Branch, Value


STATES = (5, 6)  # initial_h, initial_c
VIEWS = ("Reshape", "Squeeze", "Unsqueeze", "Flatten", "Identity")
VERSIONS = {"Transpose": 13, "Reshape": 14, "Shape": 13, "Gather": 13, "Identity": 16}


def unit(d) -> bool:
    return isinstance(d, int) and d == 1


def perm_of(node) -> List[int]:
    rank = node.input(0).rank
    return [p % rank for p in node.attrs.get("perm", range(rank - 1, -1, -1))]


def nested(node):
    """The node, and the nodes of its If branches, depth first."""
    yield node
    for attr in node.attrs.values():
        if isinstance(attr, Branch):
            for inner in attr.nodes:
                yield from nested(inner)


def reads(node) -> List[Value]:
    """The values a node reads: its inputs, and those its If branches read or return."""
    return [v for n in nested(node) for v in n.inputs if v is not None] + [
        v for n in nested(node) for attr in n.attrs.values() if isinstance(attr, Branch) for v in attr.outputs]


def taken_names(graph) -> set:
    """Every node and value name in the graph, its If branches included."""
    everything = [m for n in graph.nodes for m in nested(n)]
    names = {v.name for n in everything for v in n.inputs + n.outputs if v is not None}
    return names | {v.name for v in graph.inputs + graph.outputs} | {n.name for n in everything}


def fresh(names: set, name: str) -> str:
    """`name`, or `name_2`, `name_3`... : the first not in `names` (which then holds it)."""
    base, k = name, 1
    while name in names:
        k += 1
        name = f"{base}_{k}"
    names.add(name)
    return name


def shape_value(name: str, dims) -> Value:
    """A constant shape (Reshape's input 1), of ints or symbolic sizes."""
    data = np.array(list(dims), dtype=object)
    if all(isinstance(d, int) for d in dims):
        data = data.astype(np.int64)
    return Value(name, INT64, (len(dims),), data)
