"""Operator registry and the helpers every op module shares.

Each op module registers, per (op_type, since_version), three rules:
  infer(node, graph)   set the outputs' dtype and shape (symbolic dims allowed);
  fold(node, *data)    compute the outputs from known inputs (numbers or symbolic sizes), or None;
  lower(node, graph)   return the IR nodes (domain "onnx2src") that replace the ONNX node;
and, for ops that can keep the time steps of a streamed model apart (passes/streaming.py):
  stream(node, classes, time)   the stream class of each output from those of the inputs, or
                       raise NotStreamable. A class is None (time-independent), an int (per-step:
                       the value's time axis, whose size is the symbol `time`), LAST (depends on
                       the last step only) or SIZE (known at compile time, from the sequence
                       length: fine as a shape input, not as data). The pass calls it only when
                       an input is per-step or SIZE; ops without it stop streaming there.
A node is served by the newest registration whose since_version is not above the node's own.
An op of another domain than ONNX's registers as "domain:op_type" (version 1; its attributes are
checked by its own rules, there being no ONNX schema for them).
Every op module is imported at the end of this file, so the registry is complete as soon as
anything in the package is imported, whichever module that is.
"""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from ..dims import Dim
from ..ir import Branch, CompileError, DType, Graph, Node, Value
from ..ir import shown_name as _shown_name
from ..loops import strides  # noqa: F401  (op modules import it from here)

IR_DOMAIN = "onnx2src"


@dataclass
class OpDef:
    infer: Callable[[Node, Graph], None]
    fold: Optional[Callable] = None      # fold(node, *input_data) -> list of arrays
    lower: Optional[Callable[[Node, Graph], List[Node]]] = None
    symbolic: bool = False               # fold also runs on symbolic sizes (shape arithmetic)
    expand: Optional[Callable[[Node, Graph], List[Node]]] = None  # nodes replacing this one
                                         # before shape inference reaches it (If's taken branch)
    stream: Optional[Callable] = None    # stream(node, classes, time) -> output classes


_REGISTRY: Dict[str, List[Tuple[int, OpDef]]] = {}


def register(op_types, since: int, **rules) -> None:
    for op_type in op_types.split():
        entries = _REGISTRY.setdefault(op_type, [])
        entries.append((since, OpDef(**rules)))
        entries.sort(key=lambda e: e[0])


ONNX_DOMAINS = ("", "ai.onnx")


def _find(node: Node) -> Optional[OpDef]:
    """An ONNX op by its name; an op of another domain (onnxruntime's com.microsoft contrib ops)
    is registered as "domain:op_type"."""
    found = None
    key = node.op_type if node.domain in ONNX_DOMAINS else f"{node.domain}:{node.op_type}"
    for since, opdef in _REGISTRY.get(key, []):
        if since <= node.version:
            found = opdef
    return found


def supported(node: Node) -> bool:
    """Whether an ONNX node (default domain, version = its schema's since_version) has rules."""
    return _find(node) is not None


def lookup(node: Node) -> OpDef:
    found = _find(node)
    if found is None:
        raise CompileError(f"operator {node.op_type} (opset {node.version}) is not supported", node)
    return found


def check_supported(graph: Graph) -> None:
    """One CompileError listing every unsupported operator of a graph fresh from the frontend,
    grouped by (domain, op, schema version), most used first:
      operators not supported: Conv-11 ×16 (first: "/enc/conv1/Conv"), com.microsoft.FusedConv ×2
      (first: "fc0") (model opset 17)
    The op's version is its schema's since_version, so the model's opset is named apart."""
    groups: Dict[Tuple[str, str, int], List[Node]] = {}
    for node in _walk(graph.nodes):
        if not supported(node):
            onnx_domain = node.domain in ONNX_DOMAINS
            key = ("" if onnx_domain else node.domain, node.op_type, node.version if onnx_domain else 0)
            groups.setdefault(key, []).append(node)
    if not groups:
        return
    parts = []
    for (domain, op, version), nodes in sorted(groups.items(), key=lambda g: (-len(g[1]), g[0])):
        what = _shown_name(f"{domain}.{op}") if domain else f"{op}-{version}"  # custom: any text
        parts.append(f'{what} ×{len(nodes)} (first: "{_shown_name(nodes[0].name)}")')
    s = "s" if len(parts) > 1 else ""
    raise CompileError(f"operator{s} not supported: {', '.join(parts)} (model opset {graph.opset})")


def _walk(nodes):
    """The nodes, and those of the subgraphs they hold (If branches), depth first."""
    for node in nodes:
        yield node
        for value in node.attrs.values():
            if isinstance(value, Branch):
                yield from _walk(value.nodes)


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
    """An IR node that keeps the name and opset of the ONNX node it came from (and its op type,
    or the one a pass replaced, passes/fold_int8_weights.py)."""
    attrs["onnx_op"] = getattr(source, "attrs", {}).get("onnx_op", source.op_type)
    if "guard" in getattr(source, "attrs", {}):  # inside an If branch chosen at run time
        attrs["guard"] = source.attrs["guard"]
    return Node(op, source.name, list(inputs), list(outputs), attrs, source.version, IR_DOMAIN)


# -- helpers for stream rules ------------------------------------------------------------------

LAST = "last"   # stream class: depends on the last time step only (a recurrence's Y_h)
SIZE = "size"   # stream class: compile-time contents that involve the sequence length


class NotStreamable(Exception):
    """Why a model can't run chunk by chunk: one sentence naming the node."""


def refuse(node: Node, why: str) -> NotStreamable:
    return NotStreamable(f'{node.op_type} "{_shown_name(node.name)}" {why}')


def time_axes(node: Node, classes, data=None) -> Dict[int, int]:
    """{input index: time axis} of the per-step inputs among the data inputs (all, or those at
    the indices `data`), which must not hold the sequence length nor mix a last-step value with
    per-step ones."""
    picked = {i: c for i, c in enumerate(classes) if data is None or i in data}
    if SIZE in picked.values():
        raise refuse(node, "computes with the sequence length, which differs from chunk to chunk")
    steps = {i: c for i, c in picked.items() if isinstance(c, int)}
    if steps and LAST in picked.values():
        raise refuse(node, "mixes the last step with every step")
    return steps


def stream_same(node: Node, classes, time) -> list:
    """Rule of ops whose outputs keep input 0's time axis, the other inputs time-independent."""
    steps = time_axes(node, classes)
    if set(steps) != {0}:
        raise refuse(node, "takes a per-step value where it expects a time-independent one")
    return [steps[0]] * len(node.outputs)


def spread(node: Node, value: Value, cls, time):
    """The class of `value`, filled from a time-independent (or last-step) operand of class
    `cls` over its shape: per-step along its axis of the sequence length if it has one (every
    step then holds the same data), else `cls`."""
    axes = [a for a, d in enumerate(value.shape) if d == time]
    if not axes:
        return cls
    if cls == LAST:
        raise refuse(node, "repeats the last step over the time axis")
    return axes[0]


for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):  # last: op modules
    importlib.import_module(f"{__name__}.{_module}")                     # use the helpers above
