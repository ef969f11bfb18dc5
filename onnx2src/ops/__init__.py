"""Operator registry and the helpers every op module shares.

Each op module registers, per (op_type, since_version), three rules:
  infer(node, graph)   set the outputs' dtype and shape (symbolic dims allowed);
  fold(node, *data)    compute the outputs from known inputs (numbers or symbolic sizes), or None;
  lower(node, graph)   return the IR nodes (domain "onnx2src") that replace the ONNX node.
A node is served by the newest registration whose since_version is not above the node's own.
Every op module is imported at the end of this file, so the registry is complete as soon as
anything in the package is imported, whichever module that is.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from ..dims import Dim
from ..ir import CompileError, DType, Graph, Node, Value
from ..loops import strides  # noqa: F401  (op modules import it from here)

IR_DOMAIN = "onnx2src"


@dataclass
class OpDef:
    infer: Callable[[Node, Graph], None]
    fold: Optional[Callable] = None      # fold(node, *input_data) -> list of arrays
    lower: Optional[Callable[[Node, Graph], List[Node]]] = None
    symbolic: bool = False               # fold also runs on symbolic sizes (shape arithmetic)


_REGISTRY: Dict[str, List[Tuple[int, OpDef]]] = {}
MODULES = ("elementwise", "gemm", "slice", "layout", "gather", "shape", "softmax", "recurrent")


def register(op_types, since: int, **rules) -> None:
    for op_type in op_types.split():
        entries = _REGISTRY.setdefault(op_type, [])
        entries.append((since, OpDef(**rules)))
        entries.sort(key=lambda e: e[0])


def lookup(node: Node) -> OpDef:
    found = None
    for since, opdef in _REGISTRY.get(node.op_type, []):
        if since <= node.version:
            found = opdef
    if found is None:
        raise CompileError(f"operator {node.op_type} (opset {node.version}) is not supported", node)
    return found


# -- helpers for op modules ---------------------------------------------------------------------

def set_output(node: Node, i: int, dtype: DType, shape) -> None:
    v = node.output(i)
    if v is not None:
        v.dtype, v.shape = dtype, tuple(shape)


def declared_shape(node: Node, graph: Graph, i: int, why: str):
    """The shape the model itself declares for output i, for outputs whose shape depends on
    run-time data; an error if the model declares none or a partial one."""
    v = node.output(i)
    decl = graph.declared.get(v.name)
    if decl is None or decl[1] is None:
        raise CompileError(f"the shape of output \"{v.name}\" depends on {why}, and the model "
                           f"declares no shape for it", node)
    return decl[1]


def const_input(node: Node, i: int, what: str) -> Optional[np.ndarray]:
    """Known contents of input i (numbers, or symbolic sizes), None when the input is absent."""
    v = node.input(i)
    if v is None:
        return None
    if v.data is None:
        raise CompileError(f"input {i} ({what}) must be known at compile time", node)
    return v.data


def known(v: Optional[Value]) -> bool:
    return v is not None and v.data is not None


def axis_of(node: Node, axis: int, rank: int) -> int:
    if not -rank <= axis < max(rank, 1):
        raise CompileError(f"axis {axis} is out of range for rank {rank}", node)
    return axis % max(rank, 1)


def as_known_array(values, dtype) -> np.ndarray:
    """A list of ints / symbolic dims → int array if all are ints, else an object array."""
    arr = np.array(list(values), dtype=object).reshape(np.shape(values))
    if all(not isinstance(x, Dim) for x in arr.flat):
        return arr.astype(dtype)
    return arr


def ir(op: str, source: Node, inputs, outputs, **attrs) -> Node:
    """An IR node that keeps the name and opset of the ONNX node it came from."""
    attrs["onnx_op"] = source.op_type
    return Node(op, source.name, list(inputs), list(outputs), attrs, source.version, IR_DOMAIN)


for _module in MODULES:  # last: the op modules import the helpers above
    importlib.import_module(f"{__name__}.{_module}")
