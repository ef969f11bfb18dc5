"""Constant folding: drop every node whose outputs were all computed at compile time.

Their results stay behind as constant values (future weights); consumers read them directly.
Nodes that computed only symbolic sizes stay until lowering shows whether anything needs them
at run time.
"""


def run(graph) -> bool:
    keep = [n for n in graph.nodes
            if not all(v is None or v.is_constant for v in n.outputs)]
    changed = len(keep) != len(graph.nodes)
    graph.nodes = keep
    return changed
