"""Writes the Make-style depfile of one onnx2src_add_model() step (see onnx2src-config.cmake):
the generated files depend on the model and on every external-data file it names, which only the
model itself knows, so CMake learns them after each generation instead of from the user.

    python depfile.py DEPFILE MODEL OUTPUT...
"""
import os
import sys

import onnx
from onnx.external_data_helper import ExternalDataInfo, uses_external_data


def tensors(graph):
    """Every TensorProto of a graph: initializers and attribute tensors, subgraphs included."""
    yield from graph.initializer
    yield from (s.values for s in graph.sparse_initializer)
    for node in graph.node:
        for a in node.attribute:
            if a.HasField("t"):
                yield a.t
            yield from a.tensors
            for g in ([a.g] if a.HasField("g") else []) + list(a.graphs):
                yield from tensors(g)


def external_files(model_path: str):
    model = onnx.load(model_path, load_external_data=False)
    folder = os.path.dirname(os.path.abspath(model_path))
    names = {ExternalDataInfo(t).location for t in tensors(model.graph) if uses_external_data(t)}
    return sorted(os.path.join(folder, n) for n in names)


def escape(path: str) -> str:
    path = os.path.abspath(path).replace("\\", "/")
    return path.replace("$", "$$").replace("#", "\\#").replace(" ", "\\ ")


def main(argv) -> int:
    depfile, model, outputs = argv[0], argv[1], argv[2:]
    deps = [model] + external_files(model)
    # Only the first output as the target: what both Ninja and CMake's Makefile generators accept.
    line = f"{escape(outputs[0])}: {' '.join(escape(d) for d in deps)}\n"
    with open(depfile, "w", encoding="utf-8", newline="\n") as f:
        f.write(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
