"""Dead-code elimination: remove nodes none of whose outputs reach a graph output, and forget
optional outputs nothing reads (so kernels can skip writing them)."""


def run(graph) -> bool:
    live = {id(v) for v in graph.outputs}
    keep = []
    for node in reversed(graph.nodes):
        used = [v is not None and id(v) in live for v in node.outputs]
        if not any(used):
            continue
        node.outputs = [v if u else None for v, u in zip(node.outputs, used)]
        live.update(id(v) for v in node.inputs if v is not None)
        keep.append(node)
    keep.reverse()
    changed = len(keep) != len(graph.nodes)
    graph.nodes = keep
    return changed
