"""Frontend: ONNX ModelProto (with inline or external weights) → IR graph.

It validates the file first (validate.py: external-data paths before anything is read, then
every node against its ONNX schema), reads initializers into constant values, turns declared
dims into sizes or symbolic dims, and gives every node a stable name, so that error messages
and the comments in generated code can point at the node the user knows. `read` also names the
external-data files the model was read from, which the provenance header hashes.
"""
from __future__ import annotations

import json
import os
import re
from collections import ChainMap
from typing import Dict, Mapping, Optional

import numpy as np
import onnx
from onnx import helper, numpy_helper
from onnx.external_data_helper import ExternalDataInfo, load_external_data_for_model, uses_external_data

from . import validate
from .dims import Dim
from .ir import Branch, CompileError, Graph, Node, Value, dtype_from_onnx, one_line, shown_name
from .ops import ONNX_DOMAINS, supported


def load(path: str) -> Graph:
    return from_model(read(path)[0])


def read(path: str):
    """(the model at `path` with its external data loaded, the external-data files it read):
    those are named as the model names them, relative to its folder, sorted. The external-data
    entries are checked before anything is read (validate.check_files); the graph is checked by
    whatever reads it next (from_model, round_model)."""
    if not os.path.isfile(path):
        raise CompileError(f"no such model file: {path}")
    try:
        model = onnx.load(path, load_external_data=False)
    except Exception as e:  # protobuf errors come in many types
        raise CompileError(f"cannot read {path} as an ONNX model: {one_line(e)}")
    validate.check_files(model, os.path.dirname(path))
    files = data_files(model)
    try:
        load_external_data_for_model(model, os.path.dirname(path))
    except Exception as e:
        raise CompileError(f"cannot read the external data of {path}: {one_line(e)}")
    return model, files


def data_files(model: onnx.ModelProto):
    """The external-data files a model loaded without its external data names, as it names
    them (relative to its folder), sorted."""
    return sorted({ExternalDataInfo(t).location for t in validate.tensors(model)
                   if uses_external_data(t)})


def from_model(model: onnx.ModelProto) -> Graph:
    """The IR graph of a model, which validate.check_model checks (and puts in order) first."""
    opset = validate.check_model(model)[""]
    g = model.graph
    values: Dict[str, Value] = {}

    for init in g.initializer:
        dtype = dtype_from_onnx(init.data_type, f'initializer "{shown_name(init.name)}"')
        try:
            data = numpy_helper.to_array(init)
        except Exception as e:
            raise CompileError(f'cannot read initializer "{shown_name(init.name)}": {one_line(e)}')
        values[init.name] = Value(init.name, dtype, tuple(data.shape), np.asarray(data))

    named, origins = _dim_names(g), {}
    inputs = []
    for vi in g.input:
        if vi.name in values:  # an initializer listed as an input (IR < 4): a constant
            continue
        v = Value(vi.name, *_type_of(vi, named, origins))
        if v.shape is None:
            raise CompileError(f'graph input "{shown_name(vi.name)}" has no shape')
        inputs.append(v)
        values[vi.name] = v

    declared = {vi.name: _type_of(vi, named) for vi in list(g.value_info) + list(g.output)
                if vi.type.HasField("tensor_type")}

    nodes = []
    for index, proto in enumerate(g.node):
        nodes.append(_node(proto, index, opset, values))

    outputs = [values[vi.name] for vi in g.output]  # validate.py: all produced
    return Graph(g.name or "model", inputs, outputs, nodes, opset, declared, dim_origins=origins)


def pin(graph: Graph, consts: Mapping[str, str], dims: Mapping[str, int] = None) -> None:
    """Make graph inputs constants (`--const sr=16000`): each value is JSON (a number or a
    nested list) of the input's shape; the input leaves the generated interface, and what
    depends on it folds away (an If on the sample rate keeps one branch). `dims` fixes
    symbolic dims to sizes (`--fix-dim samples=576`), e.g. a streaming model's chunk length."""
    symbols = graph.symbols()
    for name, size in (dims or {}).items():
        if name not in symbols:
            raise CompileError(f"--fix-dim names {name!r}, which the model's inputs do not use "
                               f"(symbolic dims: {', '.join(symbols) or 'none'})")
        if size < 1:
            raise CompileError(f"--fix-dim {name}={size}: a size must be at least 1")
        fixed = lambda shape: shape if shape is None else tuple(
            size if isinstance(d, Dim) and d == Dim.symbol(name) else d for d in shape)
        for v in graph.inputs:
            v.shape = fixed(v.shape)
        graph.declared = {k: (t, fixed(s)) for k, (t, s) in graph.declared.items()}
    by_name = {v.name: v for v in graph.inputs}
    for name, text in consts.items():
        v = by_name.get(name)
        if v is None:
            raise CompileError(f"--const names {name!r}, which is not an input of the model "
                               f"(inputs: {', '.join(repr(i.name) for i in graph.inputs) or 'none'})")
        if any(isinstance(d, Dim) for d in v.shape):
            raise CompileError(f"--const {name}: the input has symbolic dims {list(v.shape)}; "
                               f"only inputs of a fixed shape can be pinned")
        try:
            data = np.array(json.loads(text), dtype=v.dtype.numpy)
        except (ValueError, TypeError, OverflowError) as e:
            raise CompileError(f"--const {name}={text}: not a JSON number or list of {v.dtype.name} ({e})")
        if data.size != int(np.prod(v.shape, dtype=np.int64)):
            raise CompileError(f"--const {name}: {data.size} values for an input of shape {list(v.shape)}")
        v.data = data.reshape(v.shape)
        graph.inputs.remove(v)
        graph.pinned[name] = v.data


def _dim_names(g) -> set:
    """Every dim name the graph's type declarations use."""
    return {d.dim_param for vi in list(g.input) + list(g.output) + list(g.value_info)
            if vi.type.HasField("tensor_type") for d in vi.type.tensor_type.shape.dim}


UNKNOWN = ("", "?")  # dim_params that name no dim
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def _type_of(vi, named: set, origins: Optional[dict] = None):
    """(dtype, shape) of a declaration. A dim is a size when its dim_value is not negative, and a
    symbolic dim when it has a dim_param (one dim for every use of the name; the emitters' namers
    make identifiers of any text). A dim that says nothing — no value, a negative one as older
    exporters write for "unknown", a dim_param "" or "?" — is a symbolic dim of its own, named
    INPUT_dimAXIS (an identifier unlike every name the model uses; `named` collects them, and
    `origins`, given for graph inputs, maps each to (input, axis, what the model declares))."""
    is_input = origins is not None
    what = f'{"graph input" if is_input else "declared value"} "{shown_name(vi.name)}"'
    t = vi.type
    if not t.HasField("tensor_type"):
        raise CompileError(f"{what} is not a tensor (sequences, maps and optionals are not supported)")
    tt = t.tensor_type
    dtype = dtype_from_onnx(tt.elem_type, what)
    if not tt.HasField("shape"):
        return dtype, None
    shape, count = [], 1
    for axis, d in enumerate(tt.shape.dim):
        if d.HasField("dim_value") and d.dim_value >= 0:
            count *= d.dim_value
            if count > validate.MAX_ELEMENTS:
                raise CompileError(f"{what} has dims {_dims_text(tt)}: more than "
                                   f"{validate.MAX_ELEMENTS:,} elements")
            shape.append(int(d.dim_value))
        elif d.dim_param not in UNKNOWN:
            shape.append(Dim.symbol(d.dim_param))
        else:
            name = re.sub(r"[^A-Za-z0-9_]", "_", vi.name)[:40]
            name = f"{name if IDENTIFIER.match(name) else 'x' + name}_dim{axis}"
            while name in named:
                name += "_"
            named.add(name)
            if is_input:
                origins[name] = (vi.name, axis, d.dim_value if d.HasField("dim_value") else d.dim_param or None)
            shape.append(Dim.symbol(name))
    return dtype, tuple(shape)


def _dims_text(tt) -> str:
    return "[" + ", ".join(str(d.dim_value) if d.HasField("dim_value") else shown_name(d.dim_param, 20)
                           for d in tt.shape.dim) + "]"


def _node(proto, index: int, opset: int, values: Dict[str, Value]) -> Node:
    node = _listed(proto, index, opset)
    # A node no op module serves (or of another domain) keeps only its inputs and outputs, and
    # the nodes of its subgraphs: ops.check_supported, before shape inference, lists all such
    # nodes in one error, those inside a Loop's body included.
    for a in (proto.attribute if supported(node) else ()):
        if a.type == onnx.AttributeProto.GRAPH and node.op_type == "If":
            node.attrs[a.name] = _branch(a.g, node, opset, values)
            continue
        if a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
            raise CompileError(f"attribute {a.name} holds a subgraph; {node.op_type} is not supported", node)
        value = helper.get_attribute_value(a)
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        elif isinstance(value, list) and value and isinstance(value[0], bytes):
            value = [v.decode("utf-8", "replace") for v in value]
        elif isinstance(value, onnx.TensorProto):
            value = numpy_helper.to_array(value)
        node.attrs[a.name] = value
    node.inputs = [values[n] if n else None for n in proto.input]  # validate.py: all defined
    for name_out in proto.output:
        if not name_out:
            node.outputs.append(None)
            continue
        values[name_out] = Value(name_out, producer=node)
        node.outputs.append(values[name_out])
    while node.inputs and node.inputs[-1] is None:
        node.inputs.pop()
    return node


def _listed(proto, index: int, opset: int, inside: bool = False) -> Node:
    """The node as check_supported lists it: its name, op, domain and schema version, and, if
    no op module serves it or a node it is `inside`, the nodes of its subgraphs (each a Branch
    without values)."""
    node = Node(proto.op_type, proto.name or f"{proto.op_type}_{index}", [], [], domain=proto.domain)
    if proto.domain in ONNX_DOMAINS:  # other domains: the op module checks what it reads
        node.schema = onnx.defs.get_schema(proto.op_type, opset, "")  # validate.py checked it
        node.version = node.schema.since_version
    if inside or not supported(node):
        for a in proto.attribute:
            for k, sub in enumerate(([a.g] if a.HasField("g") else []) + list(a.graphs)):
                node.attrs[f"{a.name}[{k}]"] = Branch([_listed(p, i, opset, True) for i, p in enumerate(sub.node)], [])
    return node


def _branch(g, owner: Node, opset: int, outer: Dict[str, Value]) -> Branch:
    """A subgraph of `owner` as a Branch: its nodes see the enclosing graph's values by name
    (ONNX names are unique across the whole model); its own initializers are constants."""
    values = ChainMap({}, outer)
    for init in g.initializer:
        dtype = dtype_from_onnx(init.data_type, f'initializer "{init.name}"', owner)
        data = np.asarray(numpy_helper.to_array(init))
        values[init.name] = Value(init.name, dtype, tuple(data.shape), data)
    if len(g.input):
        raise CompileError(f'subgraph "{g.name}" takes inputs, which If branches must not', owner)
    nodes = [_node(proto, index, opset, values) for index, proto in enumerate(g.node)]
    missing = [vi.name for vi in g.output if vi.name not in values]
    if missing:
        raise CompileError(f'subgraph output "{missing[0]}" is produced by no node', owner)
    return Branch(nodes, [values[vi.name] for vi in g.output])
