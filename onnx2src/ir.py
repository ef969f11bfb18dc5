"""The intermediate representation: typed values, nodes and the graph that holds them.

Every stage after the frontend reads and rewrites these objects; nothing else carries model
state. A value's shape is a tuple of dims (ints or symbolic `Dim`s); a value whose contents are
known at compile time carries them in `data` (a NumPy array, of dtype object when some entries
are symbolic sizes, as in folded Shape chains).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
from onnx import TensorProto

from .dims import Dim, DimLike


class CompileError(Exception):
    """An unsupported or invalid model. Rendered by the CLI as one line, exit status 2."""

    def __init__(self, message: str, node: Optional["Node"] = None):
        self.node = node
        where = f'node "{shown_name(node.name)}" ({node.op_type}): ' if node is not None else ""
        super().__init__(where + message)


def shown_name(name: str, limit: int = 60) -> str:
    """A name from the model for an error line: at most `limit` characters, quotes and
    backslashes escaped (the CLI escapes control characters)."""
    if len(name) > limit:
        name = name[:limit - 3] + "..."
    return name.replace("\\", "\\\\").replace('"', '\\"')


def one_line(e: Exception) -> str:
    """An exception's text for an error line: whitespace collapsed, at most 300 characters."""
    text = " ".join(str(e).split())
    return text[:300] or type(e).__name__


class InternalError(Exception):
    """A broken IR invariant: a bug in onnx2src, not in the model (see ir_verifier.py).
    Rendered by the CLI as one line, exit status 3."""

    def __init__(self, message: str, node: Optional["Node"] = None, after: Optional[str] = None):
        self.node, self.after = node, after
        where = f"IR check after {after}: " if after else ""
        where += f'node "{node.name}" ({node.op_type}): ' if node is not None else ""
        super().__init__(where + message)


@dataclass(frozen=True)
class DType:
    name: str        # ONNX spelling, lower case
    onnx: int        # TensorProto enum
    numpy: np.dtype
    c: str           # C type


DTYPES = [
    DType("float", TensorProto.FLOAT, np.dtype(np.float32), "float"),
    DType("double", TensorProto.DOUBLE, np.dtype(np.float64), "double"),
    DType("int8", TensorProto.INT8, np.dtype(np.int8), "int8_t"),
    DType("int16", TensorProto.INT16, np.dtype(np.int16), "int16_t"),
    DType("int32", TensorProto.INT32, np.dtype(np.int32), "int32_t"),
    DType("int64", TensorProto.INT64, np.dtype(np.int64), "int64_t"),
    DType("uint8", TensorProto.UINT8, np.dtype(np.uint8), "uint8_t"),
    DType("uint16", TensorProto.UINT16, np.dtype(np.uint16), "uint16_t"),
    DType("uint32", TensorProto.UINT32, np.dtype(np.uint32), "uint32_t"),
    DType("uint64", TensorProto.UINT64, np.dtype(np.uint64), "uint64_t"),
    DType("bool", TensorProto.BOOL, np.dtype(np.bool_), "uint8_t"),
]
BY_ONNX = {d.onnx: d for d in DTYPES}
BY_NUMPY = {d.numpy: d for d in DTYPES}
FLOAT, DOUBLE, INT64 = BY_ONNX[TensorProto.FLOAT], BY_ONNX[TensorProto.DOUBLE], BY_ONNX[TensorProto.INT64]


def dtype_from_onnx(elem_type: int, what: str, node: Optional["Node"] = None) -> DType:
    if elem_type not in BY_ONNX:
        name = TensorProto.DataType.Name(elem_type) if elem_type in TensorProto.DataType.values() else elem_type
        raise CompileError(f"{what} has data type {name}, which is not supported "
                           f"(supported: {', '.join(d.name for d in DTYPES)})", node)
    return BY_ONNX[elem_type]


@dataclass(eq=False)
class Value:
    name: str
    dtype: Optional[DType] = None
    shape: Optional[Tuple[DimLike, ...]] = None
    data: Optional[np.ndarray] = None      # known contents (constant, or symbolic sizes)
    producer: Optional["Node"] = None
    int8: bool = False  # a constant weight of int8 values times a scale per output channel, which
                        # the emitters store as such (passes/fold_int8_weights.py)

    @property
    def is_constant(self) -> bool:
        """Contents fully known as numbers (an initializer or a folded result)."""
        return self.data is not None and self.data.dtype != object

    @property
    def rank(self) -> int:
        return len(self.shape)

    def __repr__(self):
        return f"Value({self.name!r}, {self.dtype.name if self.dtype else None}, {self.shape})"


@dataclass(eq=False)
class Node:
    op_type: str
    name: str
    inputs: List[Optional[Value]]
    outputs: List[Optional[Value]]
    attrs: Dict[str, Any] = field(default_factory=dict)
    version: int = 1             # since_version of the ONNX schema this node follows
    domain: str = ""
    scratch: List[Value] = field(default_factory=list)  # IR only: working memory for one node
    schema: Any = None           # the ONNX OpSchema a model's node was checked against (validate.py)

    def input(self, i: int) -> Optional[Value]:
        return self.inputs[i] if i < len(self.inputs) else None

    def output(self, i: int) -> Optional[Value]:
        return self.outputs[i] if i < len(self.outputs) else None

    def __repr__(self):
        return f"Node({self.op_type}, {self.name!r})"


@dataclass(eq=False)
class Condition:
    """Part of a node's guard: the node runs only when the bool scalar `value` is `holds`
    (the branches of an If whose condition is known only at run time)."""
    value: Value
    holds: bool


@dataclass(eq=False)
class Branch:
    """A subgraph held by a node attribute (If's then_branch / else_branch): its nodes, which
    may read values of the enclosing graph, and the values it returns."""
    nodes: List[Node]
    outputs: List[Value]


@dataclass(eq=False)
class Graph:
    name: str
    inputs: List[Value]           # runtime inputs only (initializers are constants)
    outputs: List[Value]
    nodes: List[Node]
    opset: int
    declared: Dict[str, Tuple[DType, Optional[tuple]]] = field(default_factory=dict)  # value_info
    pinned: Dict[str, np.ndarray] = field(default_factory=dict)  # inputs made constants (--const)
    options: Any = None           # the compile options (options.Options) passes.run_all runs with
    dim_origins: Dict[str, Tuple[str, int, Any]] = field(default_factory=dict)  # symbolic dims the
            # frontend named: {name: (input, axis, the model's dim_value or dim_param, or None)}

    def symbols(self) -> List[str]:
        """Symbolic dims in order of first appearance over the graph inputs, left to right."""
        seen: List[str] = []
        for v in self.inputs:
            for d in v.shape:
                for s in (d.symbols() if isinstance(d, Dim) else []):
                    if s not in seen:
                        seen.append(s)
        return seen
