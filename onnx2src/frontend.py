"""Frontend: ONNX ModelProto (with inline or external weights) → IR graph.

It checks what can be checked before any pass runs (opset range, data types, subgraphs), reads
initializers into constant values and gives every node a stable name, so that error messages
and the comments in generated code can point at the node the user knows. `read` also names the
external-data files the model was read from, which the provenance header hashes.
"""
from __future__ import annotations

import json
import os
from collections import ChainMap
from typing import Dict, Mapping

import numpy as np
import onnx
from onnx import helper, numpy_helper
from onnx.external_data_helper import ExternalDataInfo, load_external_data_for_model, uses_external_data

from .dims import Dim
from .ir import Branch, CompileError, Graph, Node, Value, dtype_from_onnx
from .ops import ONNX_DOMAINS, supported

MIN_OPSET = 7


def load(path: str) -> Graph:
    return from_model(read(path)[0])


def read(path: str):
    """(the model at `path` with its external data loaded, the external-data files it read):
    those are named as the model names them, relative to its folder, sorted."""
    if not os.path.isfile(path):
        raise CompileError(f"no such model file: {path}")
    try:
        model = onnx.load(path, load_external_data=False)
        files = data_files(model)
        load_external_data_for_model(model, os.path.dirname(path))
    except Exception as e:  # protobuf and external-data errors come in many types
        raise CompileError(f"cannot read {path} as an ONNX model: {_one_line(e)}")
    return model, files


def data_files(model: onnx.ModelProto):
    """The external-data files a model loaded without its external data names, as it names
    them (relative to its folder), sorted."""
    return sorted({ExternalDataInfo(t).location for g in [model.graph, *model.functions]
                   for t in _tensors(g) if uses_external_data(t)})


def _tensors(g):
    """Every tensor of a graph or function that can hold external data: initializers and
    attribute tensors, subgraphs' included (those onnx.load reads external data for)."""
    yield from getattr(g, "initializer", ())  # a FunctionProto has none
    for node in g.node:
        for a in node.attribute:
            yield from ([a.t] if a.HasField("t") else []) + list(a.tensors)
            for sub in ([a.g] if a.HasField("g") else []) + list(a.graphs):
                yield from _tensors(sub)


def from_model(model: onnx.ModelProto) -> Graph:
    opset = _default_opset(model)
    g = model.graph
    values: Dict[str, Value] = {}

    for init in g.initializer:
        dtype = dtype_from_onnx(init.data_type, f'initializer "{init.name}"')
        try:
            data = numpy_helper.to_array(init)
        except Exception as e:
            raise CompileError(f'cannot read initializer "{init.name}": {_one_line(e)}')
        values[init.name] = Value(init.name, dtype, tuple(data.shape), np.asarray(data))
    for sparse in g.sparse_initializer:
        raise CompileError(f'sparse initializer "{sparse.values.name}" is not supported')

    named = _dim_names(g)
    inputs = []
    for vi in g.input:
        if vi.name in values:  # an initializer listed as an input (IR < 4): a constant
            continue
        v = Value(vi.name, *_type_of(vi, named))
        if v.shape is None:
            raise CompileError(f'graph input "{vi.name}" has no shape')
        inputs.append(v)
        values[vi.name] = v

    declared = {vi.name: _type_of(vi, named) for vi in list(g.value_info) + list(g.output)
                if vi.type.HasField("tensor_type")}

    nodes = []
    for index, proto in enumerate(g.node):
        nodes.append(_node(proto, index, opset, values))

    outputs = []
    for vi in g.output:
        if vi.name not in values:
            raise CompileError(f'graph output "{vi.name}" is produced by no node')
        outputs.append(values[vi.name])
    return Graph(g.name or "model", inputs, outputs, nodes, opset, declared)


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


def _default_opset(model: onnx.ModelProto) -> int:
    versions = {o.domain: o.version for o in model.opset_import}
    opset = versions.get("", versions.get("ai.onnx"))
    if opset is None:
        raise CompileError("the model imports no version of the default ONNX domain")
    newest = onnx.defs.onnx_opset_version()
    if not MIN_OPSET <= opset <= newest:
        raise CompileError(f"opset {opset} is not supported (supported: {MIN_OPSET} to {newest})")
    return opset


def _dim_names(g) -> set:
    """Every dim name the graph's type declarations use."""
    return {d.dim_param for vi in list(g.input) + list(g.output) + list(g.value_info)
            if vi.type.HasField("tensor_type") for d in vi.type.tensor_type.shape.dim}


def _type_of(vi, named: set):
    """(dtype, shape) of a declaration; a dim with neither a size nor a name is given a name
    of its own (INPUT_dimAXIS, made unlike every name the model uses)."""
    t = vi.type
    if not t.HasField("tensor_type"):
        raise CompileError(f'"{vi.name}" is not a tensor (sequences, maps and optionals are not supported)')
    tt = t.tensor_type
    dtype = dtype_from_onnx(tt.elem_type, f'"{vi.name}"')
    if not tt.HasField("shape"):
        return dtype, None
    shape = []
    for axis, d in enumerate(tt.shape.dim):
        if d.HasField("dim_value"):
            shape.append(int(d.dim_value))
        else:
            name = d.dim_param or f"{vi.name}_dim{axis}"
            while not d.dim_param and name in named:
                name += "_"
            shape.append(Dim.symbol(name))
    return dtype, tuple(shape)


def _node(proto, index: int, opset: int, values: Dict[str, Value]) -> Node:
    name = proto.name or f"{proto.op_type}_{index}"
    node = Node(proto.op_type, name, [], [], domain=proto.domain)
    schema = None  # other domains: the op module checks the attributes it reads
    if proto.domain in ONNX_DOMAINS:
        try:
            schema = onnx.defs.get_schema(proto.op_type, opset, "")
        except Exception:
            raise CompileError(f"{proto.op_type} is not an ONNX operator at opset {opset}", node)
        node.version = schema.since_version
    # A node no op module serves (or of another domain) keeps only its inputs and outputs:
    # ops.check_supported, before shape inference, lists all such nodes in one error.
    for a in (proto.attribute if supported(node) else ()):
        if schema is not None:
            _check_attribute(a, schema, node)
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
    for name_in in proto.input:
        if not name_in:
            node.inputs.append(None)
        elif name_in not in values:
            raise CompileError(f'input "{name_in}" is produced by no earlier node', node)
        else:
            node.inputs.append(values[name_in])
    for name_out in proto.output:
        if not name_out:
            node.outputs.append(None)
            continue
        if name_out in values:
            raise CompileError(f'value "{name_out}" is produced twice', node)
        values[name_out] = Value(name_out, producer=node)
        node.outputs.append(values[name_out])
    while node.inputs and node.inputs[-1] is None:
        node.inputs.pop()
    return node


def _check_attribute(a: onnx.AttributeProto, schema, node: Node) -> None:
    """The attribute's type must be the one the operator's schema declares (onnxruntime and the
    ONNX checker refuse anything else; the op modules rely on it)."""
    declared = schema.attributes.get(a.name)
    if declared is None:
        known = ", ".join(sorted(schema.attributes)) or "none"
        raise CompileError(f'attribute "{a.name}" is not an attribute of {schema.name} '
                           f"(opset {schema.since_version}; its attributes: {known})", node)
    expected = int(declared.type)
    if a.type != expected:
        kind = onnx.AttributeProto.AttributeType
        given = kind.Name(a.type) if a.type in kind.values() else str(a.type)
        raise CompileError(f'attribute "{a.name}" has type {given}, but {schema.name} expects '
                           f"{kind.Name(expected)}", node)


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


def _one_line(e: Exception) -> str:
    text = " ".join(str(e).split())
    return text[:300] or type(e).__name__
