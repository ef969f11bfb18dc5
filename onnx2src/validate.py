"""Validation of a model file before anything reads it as a graph.

A model file is untrusted input. `check_files` runs before any external data is read (frontend.read),
`check_model` on the protobuf before anything reads its graph (frontend.from_model, which builds the
IR, and reduced_weights.round_model); `check_types` runs in shape inference,
when a node's input types are known, before its op module sees it. Together they hold every node
(If branches included) to its ONNX schema at the model's opset: the number of inputs and
outputs, required inputs and outputs not empty, attribute names, types and presence, the tensor
element types the op allows; and the graphs to ONNX's rules: every value defined once and before
use (nodes out of order are sorted, as onnxruntime does; a cycle is refused), outputs produced,
initializer data the size of their dims, opset and IR versions that exist. Each violation is one
CompileError naming the node, its op and what is wrong.

It also bounds the work a file can ask for (the limits below, documented in docs/untrusted-input.md): the nodes
of all graphs together, the nesting of subgraphs, the elements of one tensor. Nothing is allocated
in proportion to a number read from the file before it is checked against these.
"""
from __future__ import annotations

import heapq
import os
from typing import Callable, Dict, Iterable, List, Optional, Set

import onnx
from google.protobuf.message import Message
from onnx import helper
from onnx.external_data_helper import ExternalDataInfo, uses_external_data

from .ir import BY_ONNX, CompileError, Node, dtype_from_onnx, one_line
from .ir import shown_name as _shown
from .ops import ONNX_DOMAINS

MIN_OPSET = 7
MAX_NODES = 50_000           # nodes of the model, subgraphs included (generating C takes about 1 ms a node)
MAX_DEPTH = 16               # subgraphs inside subgraphs
MAX_ELEMENTS = (1 << 31) - 1 # elements of one tensor (a dim's size, a product of dims)
MAX_ATTRIBUTE_ELEMENTS = 1 << 24  # entries of one list attribute
OPTION = onnx.defs.OpSchema.FormalParameterOption


# -- files -----------------------------------------------------------------------------------
def check_files(model: onnx.ModelProto, folder: str) -> None:
    """Every external-data entry names a regular file inside the model's folder (no `..`, no
    absolute path, no symlink leaving it), with an offset and a length that are non-negative
    integers, within the file, and of the tensor's size."""
    root = os.path.realpath(folder or ".")
    for tensor in tensors(model):
        if not uses_external_data(tensor):
            continue
        what = f'tensor "{_shown(tensor.name)}"'
        try:
            info = ExternalDataInfo(tensor)
        except (ValueError, TypeError) as e:
            raise CompileError(f"{what}: its external-data entry is malformed ({one_line(e)})")
        location = info.location or ""
        if (not location or os.path.isabs(location) or "\\" in location or "\0" in location
                or any(part == ".." for part in location.split("/"))):
            raise CompileError(f'{what}: external data at "{_shown(location)}", which is not a file '
                               f"inside the model's folder")
        path = os.path.realpath(os.path.join(root, location))
        if os.path.commonpath([root, path]) != root:
            raise CompileError(f'{what}: external data at "{_shown(location)}" leaves the model\'s folder')
        if not os.path.isfile(path):
            raise CompileError(f'{what}: its external-data file "{_shown(location)}" does not exist')
        offset, length = info.offset or 0, info.length
        if offset < 0 or (length is not None and length < 0):
            raise CompileError(f"{what}: negative external-data offset {offset} or length {length}")
        expected = _byte_size(tensor)
        if expected is not None and length is not None and length != expected:
            raise CompileError(f"{what}: {length} bytes of external data for {expected} bytes of "
                               f"{_dtype_name(tensor.data_type)} {list(tensor.dims)}")
        need = length if length is not None else expected
        size = os.path.getsize(path)
        if need is not None and offset + need > size:
            raise CompileError(f'{what}: external data at bytes {offset}..{offset + need} of '
                               f'"{_shown(location)}", which has {size}')


def tensors(model):
    for g in [model.graph, *model.functions]:
        yield from _tensors(g)


def _tensors(g):
    """Every tensor of a graph: initializers and attribute tensors, subgraphs' included."""
    yield from getattr(g, "initializer", ())
    for node in g.node:
        for a in node.attribute:
            yield from ([a.t] if a.HasField("t") else []) + list(a.tensors)
            for sub in ([a.g] if a.HasField("g") else []) + list(a.graphs):
                yield from _tensors(sub)


# -- the model -------------------------------------------------------------------------------
def check_model(model: onnx.ModelProto) -> Dict[str, int]:
    """Check the model; nodes out of topological order are sorted in place. Returns the opset
    version of each imported domain."""
    newest_ir = onnx.IR_VERSION
    if not 3 <= model.ir_version <= newest_ir:
        raise CompileError(f"IR version {model.ir_version} does not exist or is not supported "
                           f"(supported: 3 to {newest_ir})")
    opsets: Dict[str, int] = {}
    for o in model.opset_import:
        domain = "" if o.domain == "ai.onnx" else o.domain
        if domain in opsets:
            raise CompileError(f'the model imports the domain "{_shown(o.domain)}" twice')
        opsets[domain] = o.version
    opset = opsets.get("")
    if opset is None:
        raise CompileError("the model imports no version of the default ONNX domain")
    newest = onnx.defs.onnx_opset_version()
    if not MIN_OPSET <= opset <= newest:
        raise CompileError(f"opset {opset} is not supported (supported: {MIN_OPSET} to {newest})")
    for domain, version in opsets.items():
        if version < 1:
            raise CompileError(f'the model imports version {version} of domain "{_shown(domain)}"')
    _check_text(model)
    if not len(model.graph.output):
        raise CompileError("the model has no outputs: there is nothing to compute")
    counter = [0]
    _check_graph(model.graph, opsets, set(), 0, counter)
    return opsets


def _check_text(message, depth: int = 0) -> None:
    """Every string field of the model (names, op types, domains, dims) is text: protobuf hands
    a proto2 string that is not valid UTF-8 over as bytes, which no name may be."""
    if depth > 4 * MAX_DEPTH + 16:
        return  # deeper than any graph check_model accepts: _check_graph refuses it
    for field, value in message.ListFields():
        items = [value] if isinstance(value, (str, bytes, Message)) else value  # else repeated
        if field.type == field.TYPE_MESSAGE:
            for item in items:
                _check_text(item, depth + 1)
        elif field.type == field.TYPE_STRING:
            for item in items:
                if not isinstance(item, str):
                    raise CompileError(f"the {message.DESCRIPTOR.name} field {field.name} holds "
                                       f"{_shown(repr(item))}, which is not UTF-8 text")


def _check_graph(g, opsets: Dict[str, int], outer: Set[str], depth: int, counter: List[int]) -> None:
    if depth > MAX_DEPTH:
        raise CompileError(f"subgraphs are nested more than {MAX_DEPTH} deep")
    counter[0] += len(g.node)
    if counter[0] > MAX_NODES:
        raise CompileError(f"the model has more than {MAX_NODES:,} nodes, the most onnx2src compiles")
    defined: Set[str] = set()

    def define(name: str, what: str, node: Optional[Node] = None) -> None:
        if not name:
            raise CompileError(f"{what} has an empty name", node)
        if name in defined or name in outer:
            raise CompileError(f'value "{_shown(name)}" is defined twice (again as {what})', node)
        defined.add(name)

    for t in g.initializer:
        define(t.name, "an initializer")
        _check_tensor(t, f'initializer "{_shown(t.name)}"')
    for vi in g.input:
        if vi.name not in defined:  # an initializer may also be listed as an input (its default)
            define(vi.name, "a graph input")
    if len(g.sparse_initializer):
        raise CompileError("sparse initializers are not supported")

    _sort(g, defined | outer)
    for index, proto in enumerate(g.node):
        node = _ref(proto, index)
        for name in proto.input:
            if name and name not in defined and name not in outer:
                raise CompileError(f'input "{_shown(name)}" is produced by no node', node)
        _check_node(proto, node, opsets, depth, counter, lambda: outer | defined)
        for name in proto.output:
            if name:
                define(name, f'an output of {proto.op_type}', node)
    for vi in g.output:  # one value may be listed twice (onnxruntime returns it twice)
        if not vi.name:
            raise CompileError("a graph output has an empty name")
        if vi.name not in defined and vi.name not in outer:
            raise CompileError(f'graph output "{_shown(vi.name)}" is produced by no node')


def _sort(g, available: Set[str]) -> None:
    """Order the nodes so each comes after the producers of what it reads (its subgraphs'
    outer-scope reads included), keeping the file's order where it already is one; a cycle is
    refused. Reads of names nothing produces are left for the caller to report."""
    producer: Dict[str, int] = {}
    for i, proto in enumerate(g.node):
        for name in proto.output:
            if name:
                producer.setdefault(name, i)
    needs = [{producer[n] for n in _reads(proto) if n in producer and n not in available}
             for proto in g.node]
    if all(j < i for i, deps in enumerate(needs) for j in deps):
        return  # already in order (a node reading its own output is not: j == i)
    users: Dict[int, List[int]] = {}
    for i, deps in enumerate(needs):
        for j in deps:
            users.setdefault(j, []).append(i)
    waiting = [len(deps) for deps in needs]
    ready = [i for i, n in enumerate(waiting) if n == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for k in users.get(i, ()):
            waiting[k] -= 1
            if waiting[k] == 0:
                heapq.heappush(ready, k)
    if len(order) < len(g.node):
        stuck = min(set(range(len(g.node))) - set(order))
        raise CompileError("the nodes form a cycle: this node needs its own output, through other "
                           "nodes or directly", _ref(g.node[stuck], stuck))
    nodes = [type(g.node[i])() for i in order]  # copies: protobuf's wrappers of g.node go with it
    for copy, i in zip(nodes, order):
        copy.CopyFrom(g.node[i])
    del g.node[:]
    g.node.extend(nodes)


def _reads(proto) -> Iterable[str]:
    """The names a node reads: its inputs and what its subgraphs take from outer scopes."""
    yield from (n for n in proto.input if n)
    for a in proto.attribute:
        for sub in ([a.g] if a.HasField("g") else []) + list(a.graphs):
            yield from _free_names(sub)


def _free_names(g) -> Set[str]:
    local = {t.name for t in g.initializer} | {vi.name for vi in g.input}
    local |= {n for p in g.node for n in p.output}
    return {n for p in g.node for n in _reads(p)} - local


def _check_node(proto, node: Node, opsets: Dict[str, int], depth: int, counter: List[int],
                scope: Callable[[], Set[str]]) -> None:
    """`scope()`: the names its subgraphs may read from outer graphs."""
    names = set()
    for a in proto.attribute:
        if a.name in names:
            raise CompileError(f'attribute "{_shown(a.name)}" is given twice', node)
        names.add(a.name)
        if a.ref_attr_name:
            raise CompileError(f'attribute "{_shown(a.name)}" refers to a function attribute outside a function', node)
        if max(len(a.ints), len(a.floats), len(a.strings)) > MAX_ATTRIBUTE_ELEMENTS:
            raise CompileError(f'attribute "{_shown(a.name)}" has more than {MAX_ATTRIBUTE_ELEMENTS:,} entries', node)
        for t in ([a.t] if a.HasField("t") else []) + list(a.tensors):
            _check_tensor(t, f'attribute "{_shown(a.name)}"', node)
        for sub in ([a.g] if a.HasField("g") else []) + list(a.graphs):
            _check_graph(sub, opsets, scope(), depth + 1, counter)
    if proto.domain not in ONNX_DOMAINS:
        if proto.domain not in opsets:
            raise CompileError(f'the op\'s domain "{_shown(proto.domain)}" is not imported by the model', node)
        return  # other domains: the op module checks what it reads (no ONNX schema)
    opset = opsets[""]
    try:
        schema = onnx.defs.get_schema(proto.op_type, opset, "")
    except Exception:
        raise CompileError(f"{_shown(proto.op_type)} is not an ONNX operator at opset {opset}", node)
    if schema.deprecated:
        raise CompileError(f"{proto.op_type} is deprecated at opset {opset}", node)
    node.version = schema.since_version
    _check_arity(list(proto.input), schema.inputs, schema.min_input, schema.max_input, "input", node)
    _check_arity(list(proto.output), schema.outputs, schema.min_output, schema.max_output, "output", node)
    kind = onnx.AttributeProto.AttributeType
    for a in proto.attribute:
        declared = schema.attributes.get(a.name)
        if declared is None:
            known = ", ".join(sorted(schema.attributes)) or "none"
            raise CompileError(f'attribute "{_shown(a.name)}" is not an attribute of {schema.name} '
                               f"(opset {schema.since_version}; its attributes: {known})", node)
        if a.type != int(declared.type):
            given = kind.Name(a.type) if a.type in kind.values() else str(a.type)
            raise CompileError(f'attribute "{_shown(a.name)}" has type {given}, but {schema.name} expects '
                               f"{kind.Name(int(declared.type))}", node)
    for name, declared in schema.attributes.items():
        if declared.required and name not in names:
            raise CompileError(f'required attribute "{name}" is missing', node)


def _check_arity(names: List[str], formals, least: int, most: int, what: str, node: Node) -> None:
    """`names` against the schema's formal parameters: their count, and no required one empty
    (an empty name stands for an omitted optional input or output)."""
    while names and not names[-1]:
        names.pop()  # trailing empty names: omitted optional ones
    counted = lambda n: f"{n} {what}{'' if n == 1 else 's'}"
    if len(names) > most:
        raise CompileError(f"{counted(len(names))}, but {node.op_type} takes at most {most}", node)
    for i, formal in enumerate(formals):
        if formal.option == OPTION.Single and (i >= len(names) or not names[i]):
            raise CompileError(f"required {what} {i} ({formal.name}) is missing", node)
        if formal.option == OPTION.Variadic and any(not n for n in names[i:]):
            raise CompileError(f"{what} {names.index('', i)} ({formal.name}) is empty", node)
    if len(names) < least:
        raise CompileError(f"{counted(len(names))}, but {node.op_type} takes at least {least}", node)


def _check_tensor(t, what: str, node: Optional[Node] = None) -> None:
    """A tensor's data type is one onnx2src reads, its dims are sizes, and its data (inline) is
    as long as they say."""
    dtype_from_onnx(t.data_type, what, node)
    count = 1
    for d in t.dims:
        if d < 0:
            raise CompileError(f"{what} has a negative dim {list(t.dims)}", node)
        count *= d
        if count > MAX_ELEMENTS:
            raise CompileError(f"{what} has dims {list(t.dims)}: more than {MAX_ELEMENTS:,} elements", node)
    if uses_external_data(t):
        return  # check_files checked it against its file
    if t.HasField("raw_data"):
        size = _byte_size(t)
        if size is not None and len(t.raw_data) != size:
            raise CompileError(f"{what} holds {len(t.raw_data)} bytes of data for {size} bytes of "
                               f"{_dtype_name(t.data_type)} {list(t.dims)}", node)
        return
    try:
        field = helper.tensor_dtype_to_field(t.data_type)
    except Exception:
        return  # a data type onnx2src refuses by name later
    held = len(getattr(t, field))
    per = 2 if t.data_type in (onnx.TensorProto.COMPLEX64, onnx.TensorProto.COMPLEX128) else 1
    if held != count * per:
        raise CompileError(f"{what} holds {held} values for {_dtype_name(t.data_type)} {list(t.dims)}", node)


def _byte_size(t) -> Optional[int]:
    """Bytes of the tensor's data, for the data types onnx2src reads (else None)."""
    if t.data_type not in BY_ONNX:
        return None
    count = 1
    for d in t.dims:
        count *= max(d, 0)
    return count * BY_ONNX[t.data_type].numpy.itemsize


def _dtype_name(data_type: int) -> str:
    names = onnx.TensorProto.DataType
    return names.Name(data_type).lower() if data_type in names.values() else str(data_type)


# -- element types, once they are known ---------------------------------------------------------
def check_types(node: Node) -> None:
    """The node's input element types are ones its schema allows, and inputs bound to one type
    parameter have one type. For nodes of the model's ONNX domain (node.schema set by the
    frontend); shape inference calls it before the op module's rule."""
    schema = node.schema
    if schema is None:
        return
    allowed = {c.type_param_str: set(c.allowed_type_strs) for c in schema.type_constraints}
    bound: Dict[str, str] = {}
    formals = schema.inputs
    for i, v in enumerate(node.inputs):
        if v is None or v.dtype is None or not formals:
            continue
        formal = formals[min(i, len(formals) - 1)]
        given = f"tensor({v.dtype.name})"
        param = formal.type_str
        options = allowed.get(param, {param})
        if given not in options:
            raise CompileError(f"input {i} ({formal.name}) is {v.dtype.name}, which {schema.name} "
                               f"does not take there (allowed: {', '.join(sorted(_bare(o) for o in options))})", node)
        homogeneous = formal.option != OPTION.Variadic or formal.is_homogeneous
        if param in allowed and homogeneous:
            first = bound.setdefault(param, given)
            if first != given:
                raise CompileError(f"input {i} ({formal.name}) is {v.dtype.name}, but an earlier input of "
                                   f"type {param} is {_bare(first)}", node)


def _bare(type_str: str) -> str:
    return type_str[len("tensor("):-1] if type_str.startswith("tensor(") else type_str


# -- helpers ---------------------------------------------------------------------------------
def _ref(proto, index: int) -> Node:
    """A stand-in Node for error messages: the name the frontend will give it."""
    return Node(proto.op_type, proto.name or f"{proto.op_type}_{index}", [], [], domain=proto.domain)
