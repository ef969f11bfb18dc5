"""Lowering: replace every ONNX node by IR nodes (domain "onnx2src") with normalized attributes.

Nodes that only computed symbolic sizes but are still needed at run time become `Materialize`
nodes that write those sizes. Graph outputs that are constants, graph inputs, or listed twice
get a `Copy`, so every output has exactly one producer writing into the caller's buffer.
"""
from ..ir import Value
from ..ops import IR_DOMAIN, ir, lookup


def run(graph) -> bool:
    lowered = []
    for node in graph.nodes:
        if node.domain == IR_DOMAIN:
            lowered.append(node)
        elif all(v is None or v.data is not None for v in node.outputs):
            lowered += [ir("Materialize", node, [], [v], values=v.data)
                        for v in node.outputs if v is not None]
        else:
            lowered += lookup(node).lower(node, graph)
    graph.nodes = lowered
    for node in lowered:
        for v in node.outputs:
            if v is not None:
                v.producer = node

    seen = set()
    for i, v in enumerate(graph.outputs):
        if v.producer is None or id(v) in seen or v.is_constant:
            copy = Value(v.name, v.dtype, v.shape)
            node = ir("Copy", _Origin(v.name), [v], [copy])
            copy.producer = node
            graph.nodes.append(node)
            graph.outputs[i] = copy
        seen.add(id(graph.outputs[i]))
    return True


class _Origin:
    """Stands in for an ONNX node where the compiler itself adds a copy for a graph output."""
    op_type = "Identity"
    version = 1

    def __init__(self, name):
        self.name = f"output {name}"
