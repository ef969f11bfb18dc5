"""Damaged models for the CLI's error contract (issue 17): seeded, structure-aware mutations of
small committed models.

A case is (seed, index) → one base model (a PyTorch export of an RNN, LSTM or GRU, or a model
with Conv/Slice/Gather/Where/If glue), one mutation kind and its parameters, all drawn from a
random.Random seeded with the text "seed:index" (deterministic on every machine and Python).
Kinds are taken round-robin by index, so every run of at least len(KINDS) cases covers every
kind. A mutation damages the model the way a buggy exporter, a hand edit or a hostile file
would: node inputs/outputs, attributes, node order, producers, initializers, graph inputs and
outputs, opset and IR versions, names, external data, and the serialized bytes themselves.

`Case.write(path)` writes the model (and any data files or symlinks it names) at `path`;
`python -m tests.fuzz_models --seed S --case K -o OUT.onnx` does the same from the command line
so a failure can be reproduced with `onnx2src OUT.onnx --target c -o DIR`.
Cases flagged `bounded` carry huge sizes that may cost time or memory in a compiler that trusts
them; the tests run those in a subprocess with a timeout and a memory limit.
"""
from __future__ import annotations

import argparse
import math
import os
import random
import sys
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

import onnx
from onnx import AttributeProto, TensorProto, helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Small models (a case compiles in well under a second): both PyTorch exporters
# (TorchScript "ts", dynamo "dy", the latter with external .data files), RNN/LSTM/GRU, and glue.
BASES = [
    "samples/simple_rnn.onnx",                                # ts RNN, Gather, Gemm
    "samples/simple_gru.onnx",                                # ts GRU
    "tests/exports/lstm_l1_uni_bf_noh0_last_ts.onnx",          # ts LSTM, Shape/ConstantOfShape
    "tests/exports/gru_l1_uni_bf_noh0_last_dy.onnx",           # dy GRU, Slice/Expand/Reshape
    "tests/exports/rnn_tanh_l1_uni_bf_noh0_last_dy.onnx",      # dy RNN unrolled, MatMul/Slice
    "tests/exports/slicing/lstm_bf_last_ni_dy.onnx",           # dy LSTM with Slice head
    "tests/exports/slicing/gru_sf_last_ni_ts17.onnx",          # ts GRU, Gather head
    "tests/exports/ops/crnn_ts17.onnx",                       # Conv + MaxPool + LSTM
    "tests/exports/ops/where_rows_ts17.onnx",                 # Where, Greater, ReduceMean
    "tests/exports/ops/where_if_ts17.onnx",                   # If with subgraphs
]

HOSTILE = ["*/", "/*", '"', "\n", "\0", "\\", "a\\", "{{ x }}", "{% if %}", "%s%n", "'", "x*/y",
           "\r\n#define float int\n", "??/", "Δ形😀", "\u202e", "a" * 5000, "", " ", "-", "1abc",
           '"); system("x"); ("', "name with spaces", "__import__('os')"]
HOSTILE_DIMS = ["", "?", "a b", "*/", "δ", "😀", "\n", "\0", "N-1", "2", "-", "a" * 300, "int"]
HUGE = 2 ** 40


class NotApplicable(Exception):
    """The drawn base model has nothing this kind can change (the caller draws another)."""


@dataclass
class Case:
    seed: int
    index: int
    kind: str
    base: str
    detail: str = ""
    model: Optional[onnx.ModelProto] = None
    raw: Optional[bytes] = None               # serialized bytes, when the bytes themselves are damaged
    files: Dict[str, bytes] = field(default_factory=dict)    # data files beside the model
    symlinks: Dict[str, str] = field(default_factory=dict)   # name beside the model → target
    bounded: bool = False                     # huge sizes: run in a subprocess with limits

    @property
    def id(self) -> str:
        return f"{self.seed}:{self.index}"

    def write(self, path: str) -> str:
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        data = self.raw if self.raw is not None else self.model.SerializeToString()
        with open(path, "wb") as f:
            f.write(data)
        for name, content in self.files.items():
            with open(os.path.join(folder, name), "wb") as f:
                f.write(content)
        for name, target in self.symlinks.items():
            link = os.path.join(folder, name)
            if os.path.lexists(link):
                os.unlink(link)
            os.symlink(target, link)
        return path

    def describe(self) -> str:
        return f"case {self.id} [{self.kind}] {os.path.basename(self.base)}: {self.detail}"


# -- reading a model ------------------------------------------------------------------------------

_CACHE: Dict[str, bytes] = {}


def base_model(rel: str) -> onnx.ModelProto:
    """The base model with its external data made inline (a fresh copy each call)."""
    if rel not in _CACHE:
        _CACHE[rel] = onnx.load(os.path.join(ROOT, rel)).SerializeToString()
    m = onnx.ModelProto()
    m.ParseFromString(_CACHE[rel])
    return m


def graphs(g: onnx.GraphProto) -> List[onnx.GraphProto]:
    """`g` and every subgraph in it, depth first."""
    out = [g]
    for n in g.node:
        for a in n.attribute:
            for sub in ([a.g] if a.type == AttributeProto.GRAPH else list(a.graphs)):
                out += graphs(sub)
    return out


def all_nodes(m) -> List[tuple]:
    return [(g, n) for g in graphs(m.graph) for n in g.node]


def opset_of(m) -> int:
    return next((o.version for o in m.opset_import if o.domain in ("", "ai.onnx")), 17)


def schema_of(node, opset):
    try:
        return onnx.defs.get_schema(node.op_type, opset, node.domain)
    except Exception:
        return None


def value_names(m) -> List[str]:
    names = [i.name for i in m.graph.input] + [t.name for t in m.graph.initializer]
    return names + [o for _, n in all_nodes(m) for o in n.output if o]


def pick(rng, items, what="item"):
    items = list(items)
    if not items:
        raise NotApplicable(f"no {what}")
    return rng.choice(items)


def label(n) -> str:
    return f'{n.op_type} "{n.name[:40]}"'


def tensors(m):
    """Initializers and Constant/attribute tensors of every graph."""
    out = []
    for g in graphs(m.graph):
        out += list(g.initializer)
        out += [a.t for n in g.node for a in n.attribute if a.type == AttributeProto.TENSOR]
    return out


def to_raw(t: TensorProto) -> None:
    """Move a tensor's typed data into raw_data (so its bytes can be cut or lengthened)."""
    if t.HasField("raw_data") or t.data_type == TensorProto.STRING:
        return
    arr = onnx.numpy_helper.to_array(t)
    t.raw_data = arr.tobytes()
    for f in ("float_data", "int32_data", "int64_data", "double_data", "uint64_data"):
        t.ClearField(f)


# -- mutation kinds: each takes (model, rng, case), changes the model, returns what it did ----------

def input_cut(m, rng, case):
    g, n = pick(rng, [(g, n) for g, n in all_nodes(m) if n.input], "node with inputs")
    i = rng.randrange(len(n.input))
    name = n.input[i]
    del n.input[i]
    return f"{label(n)}: input {i} ({name!r}) cut"


def input_added(m, rng, case):
    g, n = pick(rng, all_nodes(m), "node")
    glue = [o for _, p in all_nodes(m) if p.op_type in ("Constant", "Gather", "Slice") for o in p.output if o]
    extra = rng.choice(glue) if glue and rng.random() < 0.7 else pick(rng, value_names(m), "value")
    count = rng.choice([1, 1, 1, 2, 5])
    for _ in range(count):
        n.input.append(extra)
    return f"{label(n)}: {count} extra input(s) {extra!r}"


def input_emptied(m, rng, case):
    opset = opset_of(m)
    g, n = pick(rng, [(g, n) for g, n in all_nodes(m) if n.input], "node with inputs")
    s = schema_of(n, opset)
    required = [i for i, f in enumerate(s.inputs) if i < len(n.input)
                and f.option == onnx.defs.OpSchema.FormalParameterOption.Single] if s else []
    i = rng.choice(required or [0])
    n.input[i] = ""
    return f"{label(n)}: input {i} set to \"\""


def output_added(m, rng, case):
    g, n = pick(rng, all_nodes(m), "node")
    count = rng.choice([1, 1, 3])
    for k in range(count):
        n.output.append(f"fuzz_extra_out_{k}")
    return f"{label(n)}: {count} extra output(s)"


def output_removed(m, rng, case):
    g, n = pick(rng, [(g, n) for g, n in all_nodes(m) if n.output], "node with outputs")
    i = rng.randrange(len(n.output))
    if rng.random() < 0.5:
        del n.output[i]
        return f"{label(n)}: output {i} removed"
    n.output[i] = ""
    return f"{label(n)}: output {i} set to \"\""


def _wrong_type_attr(name, given, rng):
    options = {
        AttributeProto.INT: lambda: helper.make_attribute(name, 1.5),
        AttributeProto.FLOAT: lambda: helper.make_attribute(name, "1.0"),
        AttributeProto.STRING: lambda: helper.make_attribute(name, 3),
        AttributeProto.INTS: lambda: helper.make_attribute(name, 1),
        AttributeProto.FLOATS: lambda: helper.make_attribute(name, [b"a", b"b"]),
        AttributeProto.STRINGS: lambda: helper.make_attribute(name, [1, 2]),
        AttributeProto.TENSOR: lambda: helper.make_attribute(name, [0.5, 1.5]),
        AttributeProto.GRAPH: lambda: helper.make_attribute(name, 0),
    }
    generic = [lambda: helper.make_attribute(name, 7), lambda: helper.make_attribute(name, [1.0, 2.0]),
               lambda: helper.make_attribute(name, "seven"),
               lambda: helper.make_attribute(name, helper.make_tensor("t", TensorProto.FLOAT, [1], [1.0]))]
    make = options.get(given) if rng.random() < 0.6 else None
    a = (make or rng.choice(generic))()
    if a.type == given:
        a = helper.make_attribute(name, [b"x"]) if given != AttributeProto.STRINGS else helper.make_attribute(name, 2)
    return a


def attr_wrong_type(m, rng, case):
    g, n = pick(rng, [(g, n) for g, n in all_nodes(m) if n.attribute], "node with attributes")
    i = rng.randrange(len(n.attribute))
    name, old = n.attribute[i].name, n.attribute[i].type
    new = _wrong_type_attr(name, old, rng)
    n.attribute[i].CopyFrom(new)
    return (f"{label(n)}: attribute {name} {AttributeProto.AttributeType.Name(old)} → "
            f"{AttributeProto.AttributeType.Name(new.type)}")


def _wrong_values(a, rng):
    """(new attribute, description, bounded) for a wrong value of the same type."""
    name = a.name
    if a.type == AttributeProto.INT:
        v = rng.choice([-1, -2, -7, 0, 5, 9, 2 ** 31, 2 ** 62, -2 ** 63, a.i + 3])
        return helper.make_attribute(name, v), f"{name}={v}", abs(v) > 2 ** 20
    if a.type == AttributeProto.FLOAT:
        v = rng.choice([math.nan, math.inf, -math.inf, -1.0, 0.0, 1e38])
        return helper.make_attribute(name, v), f"{name}={v}", False
    if a.type == AttributeProto.INTS:
        old = list(a.ints)
        choice = rng.randrange(5)
        if choice == 0:
            v = []
        elif choice == 1:
            v = old + [rng.choice([0, 1, -1])]
        elif choice == 2:
            v = old[:-1]
        elif choice == 3:
            v = [x - 100 for x in old] or [-100]
        else:
            v = [2 ** 40] * max(1, len(old))
        return helper.make_attribute(name, v, attr_type=AttributeProto.INTS), f"{name}={v[:8]}", choice == 4
    if a.type == AttributeProto.FLOATS:
        v = rng.choice([[], [math.nan] * max(1, len(a.floats)), list(a.floats) + [1.0]])
        return helper.make_attribute(name, v, attr_type=AttributeProto.FLOATS), f"{name}={v[:8]}", False
    if a.type == AttributeProto.STRING:
        v = rng.choice(["", "bogus", "Δ", "relu\0", "X" * 1000])
        return helper.make_attribute(name, v), f"{name}={v[:20]!r}", False
    if a.type == AttributeProto.STRINGS:
        v = rng.choice([[], ["Bogus"], list(a.strings) + [b"Tanh"], [b"Relu"] * 7])
        return helper.make_attribute(name, v, attr_type=AttributeProto.STRINGS), f"{name}={v[:4]}", False
    if a.type == AttributeProto.TENSOR:
        kind = rng.randrange(4)
        t = [helper.make_tensor("t", TensorProto.FLOAT, [0], []),
             helper.make_tensor("t", TensorProto.INT64, [2, 3], [1] * 6),
             helper.make_tensor("t", TensorProto.FLOAT, [2], [math.nan, math.inf]),
             helper.make_tensor("t", TensorProto.STRING, [1], [b"s"])][kind]
        return helper.make_attribute(name, t), f"{name}=tensor {kind}", False
    if a.type == AttributeProto.GRAPH:
        empty = helper.make_graph([], "empty", [], [])
        return helper.make_attribute(name, empty), f"{name}=empty graph", False
    raise NotApplicable("attribute type")


def attr_wrong_value(m, rng, case):
    opset = opset_of(m)
    candidates = [(g, n) for g, n in all_nodes(m) if n.attribute]
    g, n = pick(rng, candidates, "node with attributes")
    i = rng.randrange(len(n.attribute))
    new, text, bounded = _wrong_values(n.attribute[i], rng)
    n.attribute[i].CopyFrom(new)
    case.bounded |= bounded
    return f"{label(n)}: {text}"


def attr_unknown(m, rng, case):
    opset = opset_of(m)
    g, n = pick(rng, all_nodes(m), "node")
    s = schema_of(n, opset)
    have = set(s.attributes) if s else set()
    name = rng.choice([x for x in ["axis", "perm", "hidden_size", "fuzz_attr", "value", "keepdims",
                                   "direction", "then_branch", "Δ", ""] if x not in have])
    value = rng.choice([1, 0.5, "s", [1, 2]])
    n.attribute.append(helper.make_attribute(name, value))
    return f"{label(n)}: unknown attribute {name!r}={value!r}"


def node_removed(m, rng, case):
    g, n = pick(rng, all_nodes(m), "node")
    g.node.remove(n)
    return f"{label(n)} removed"


def nodes_reordered(m, rng, case):
    pairs = []
    for g in graphs(m.graph):
        producer = {o: i for i, n in enumerate(g.node) for o in n.output}
        pairs += [(g, producer[x], j) for j, n in enumerate(g.node) for x in n.input if x in producer]
    g, i, j = pick(rng, pairs, "consumer of a node output")
    nodes = list(g.node)
    moved = nodes.pop(j)
    nodes.insert(i, moved)
    del g.node[:]
    g.node.extend(nodes)
    return f"{label(moved)} moved from {j} to {i}, before its producer"


def cycle(m, rng, case):
    pairs = []
    for g in graphs(m.graph):
        producer = {o: n for n in g.node for o in n.output}
        pairs += [(producer[x], n) for n in g.node for x in n.input if x in producer and producer[x] is not n]
    p, n = pick(rng, pairs, "producer/consumer pair")
    loop = n.output[0] if n.output else "fuzz_nowhere"
    if p.input and rng.random() < 0.7:
        k = rng.randrange(len(p.input))
        p.input[k] = loop
    else:
        p.input.append(loop)
    if rng.random() < 0.3:  # a self-loop as well
        n.input.append(loop)
    return f"{label(p)} now reads {loop!r}, an output of its consumer {label(n)}"


def two_producers(m, rng, case):
    g, n = pick(rng, [(g, n) for g, n in all_nodes(m) if n.output], "node with outputs")
    others = [x for x in value_names(m) if x not in n.output]
    other = pick(rng, others, "other value")
    i = rng.randrange(len(n.output))
    n.output[i] = other
    return f"{label(n)}: output {i} renamed to {other!r}, which something else produces"


def init_wrong_size(m, rng, case):
    t = pick(rng, [t for t in tensors(m) if t.data_type != TensorProto.STRING], "tensor")
    to_raw(t)
    size = len(t.raw_data)
    new = rng.choice([0, 1, size // 2, max(size - 1, 0), size + 1, size + 4, size * 2 + 3])
    t.raw_data = (t.raw_data * 3 + b"\x01" * 8)[:new]
    return f"tensor {t.name!r} dims {list(t.dims)}: raw_data {size} → {new} bytes"


def init_wrong_dtype(m, rng, case):
    t = pick(rng, tensors(m), "tensor")
    old = t.data_type
    new = rng.choice([TensorProto.DOUBLE, TensorProto.INT8, TensorProto.INT64, TensorProto.BOOL,
                      TensorProto.FLOAT16, TensorProto.STRING, TensorProto.COMPLEX64, TensorProto.UINT4,
                      TensorProto.FLOAT8E4M3FN, 0, 99, -1])
    if new == old:
        new = 99
    if rng.random() < 0.5:
        to_raw(t)
    t.data_type = new
    return f"tensor {t.name!r}: data_type {old} → {new}"


def init_bad_dims(m, rng, case):
    t = pick(rng, tensors(m), "tensor")
    old = list(t.dims)
    choice = rng.randrange(6)
    if choice == 0 and old:
        t.dims[rng.randrange(len(old))] = rng.choice([-1, -3])
    elif choice == 1:
        t.dims.append(rng.choice([HUGE, 2 ** 62]))
        case.bounded = True
    elif choice == 2 and old:
        t.dims[rng.randrange(len(old))] = HUGE
        case.bounded = True
    elif choice == 3:
        t.dims.append(0)
    elif choice == 4 and old:
        del t.dims[-1]
    else:
        t.dims.extend([2, 3])
    return f"tensor {t.name!r}: dims {old} → {list(t.dims)}"


def init_reshaped(m, rng, case):
    """A tensor's dims rearranged with its data intact: a well-formed file whose shapes no longer
    fit the ops that read it (what only the ops' own shape rules can catch)."""
    t = pick(rng, [t for t in tensors(m) if len(t.dims) >= 1 and 0 not in t.dims], "non-empty tensor")
    old = list(t.dims)
    choice = rng.randrange(4)
    if choice == 0:
        new = old[::-1]
    elif choice == 1:
        new = [math.prod(old)]
    elif choice == 2:
        new = [1] + old
    else:
        new = old[1:] if len(old) > 1 and old[0] == 1 else [old[0], -1]
        if new[-1] == -1:
            rest = math.prod(old[1:])
            new = [old[0] * rest] if rest else old
    del t.dims[:]
    t.dims.extend(new)
    return f"tensor {t.name!r}: dims {old} → {new} (same data)"


SWAPS = [["Add", "Sub", "Mul", "Div", "MatMul", "Max", "Min", "Pow", "Equal", "Less", "Greater", "And"],
         ["Relu", "Tanh", "Sigmoid", "Neg", "Abs", "Exp", "Log", "Sqrt", "Identity", "Not", "Softmax",
          "Shape", "Transpose", "Flatten"],
         ["Reshape", "Expand", "Tile", "Squeeze", "Unsqueeze", "Gather"]]


def op_swapped(m, rng, case):
    """A node's op replaced by another that takes as many inputs (and no attributes)."""
    g, n = pick(rng, [(g, n) for g, n in all_nodes(m) if any(n.op_type in group for group in SWAPS)],
                "node of a swappable op")
    group = next(group for group in SWAPS if n.op_type in group)
    old, n.op_type = n.op_type, rng.choice([op for op in group if op != n.op_type])
    del n.attribute[:]
    return f"{label(n)}: was {old}"


def input_elem_type(m, rng, case):
    vi = pick(rng, [i for i in m.graph.input if i.type.HasField("tensor_type")], "graph input")
    old = vi.type.tensor_type.elem_type
    new = rng.choice([TensorProto.INT64, TensorProto.DOUBLE, TensorProto.STRING, TensorProto.BOOL,
                      TensorProto.FLOAT16, TensorProto.UINT8, TensorProto.INT32, 0, 77])
    vi.type.tensor_type.elem_type = new if new != old else 0
    return f"graph input {vi.name!r}: elem_type {old} → {vi.type.tensor_type.elem_type}"


def input_dims(m, rng, case):
    vi = pick(rng, [i for i in m.graph.input if i.type.tensor_type.HasField("shape")], "shaped input")
    dims = vi.type.tensor_type.shape.dim
    choice = rng.randrange(6)
    if choice == 5 or not len(dims):
        if rng.random() < 0.5 and len(dims):
            del dims[-1]
            return f"graph input {vi.name!r}: last dim removed"
        dims.add().dim_value = 2
        return f"graph input {vi.name!r}: a dim added"
    d = dims[rng.randrange(len(dims))]
    if choice == 0:
        v = rng.choice([-1, 0, -5])
        d.dim_value = v
        return f"graph input {vi.name!r}: dim_value {v}"
    if choice == 1:
        v = rng.choice([2 ** 31, 2 ** 40, 2 ** 62])
        d.dim_value = v
        case.bounded = True
        return f"graph input {vi.name!r}: dim_value {v}"
    if choice == 2:
        d.ClearField("dim_value")
        d.ClearField("dim_param")
        return f"graph input {vi.name!r}: a dim with neither value nor param"
    p = rng.choice(HOSTILE_DIMS)
    d.dim_param = p
    return f"graph input {vi.name!r}: dim_param {p[:20]!r}"


def graph_output(m, rng, case):
    g = m.graph
    if not g.output:
        raise NotApplicable("no outputs")
    i = rng.randrange(len(g.output))
    choice = rng.randrange(3)
    if choice == 0:
        name = g.output[i].name
        del g.output[i]
        return f"graph output {name!r} removed"
    if choice == 1:
        old = g.output[i].name
        g.output[i].name = "fuzz_nowhere"
        return f"graph output {old!r} renamed to a value nothing produces"
    del g.output[:]
    return "all graph outputs removed"


def opset_changed(m, rng, case):
    newest = onnx.defs.onnx_opset_version()
    v = rng.choice([0, 1, 6, 99, newest + 1, -1, rng.randint(7, newest)])
    for o in m.opset_import:
        if o.domain in ("", "ai.onnx"):
            old, o.version = o.version, v
            return f"default opset {old} → {v}"
    raise NotApplicable("no default opset")


def ir_changed(m, rng, case):
    old = m.ir_version
    choice = rng.randrange(3)
    if choice == 0:
        m.ir_version = rng.choice([0, 1, 2, 3, 99, -1])
    elif choice == 1:
        del m.opset_import[:]
        return "opset_import emptied"
    else:
        m.opset_import.add(domain=rng.choice(["com.fuzz", "ai.onnx.ml", ""]), version=rng.choice([1, 3]))
        return f"a second opset import {m.opset_import[-1].domain!r}"
    return f"ir_version {old} → {m.ir_version}"


def _rename_value(m, old, new):
    for g in graphs(m.graph):
        for coll in (g.input, g.output, g.value_info, g.initializer):
            for x in coll:
                if x.name == old:
                    x.name = new
        for n in g.node:
            for k, x in enumerate(n.input):
                if x == old:
                    n.input[k] = new
            for k, x in enumerate(n.output):
                if x == old:
                    n.output[k] = new


def hostile_names(m, rng, case):
    name = rng.choice(HOSTILE)
    where = rng.choice(["node", "value", "graph", "input", "output", "initializer"])
    if where == "node":
        g, n = pick(rng, all_nodes(m), "node")
        n.name = name
    elif where == "graph":
        m.graph.name = name
    else:
        pool = {"input": [i.name for i in m.graph.input], "output": [o.name for o in m.graph.output],
                "initializer": [t.name for t in m.graph.initializer],
                "value": [o for _, n in all_nodes(m) for o in n.output if o]}[where]
        old = pick(rng, pool, where)
        _rename_value(m, old, name)
    return f"{where} named {name[:30]!r}{'...' if len(name) > 30 else ''}"


def external_data(m, rng, case):
    t = pick(rng, [t for t in m.graph.initializer if t.data_type != TensorProto.STRING], "initializer")
    to_raw(t)
    data = t.raw_data
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    local = "fuzz_weights.bin"
    case.files[local] = data
    choice = rng.choice(["parent", "absolute", "symlink", "symlink_dir", "offset", "length",
                         "short", "missing", "empty", "dot"])
    entries = {"location": local}
    if choice == "parent":
        entries["location"] = rng.choice(["../x", "../fuzz_weights.bin", "sub/../../x", "..\\x"])
    elif choice == "absolute":
        entries["location"] = rng.choice(["/etc/passwd", "/dev/zero", "/nonexistent/x", "//etc/hostname"])
    elif choice == "symlink":
        case.symlinks["fuzz_link.bin"] = rng.choice(["/etc/passwd", "../fuzz_outside.bin", "/dev/zero"])
        entries["location"] = "fuzz_link.bin"
    elif choice == "symlink_dir":
        case.symlinks["fuzz_up"] = ".."
        entries["location"] = "fuzz_up/fuzz_weights.bin"
    elif choice == "offset":
        entries["offset"] = str(rng.choice([-1, -8, 2 ** 62, len(data) + 1]))
    elif choice == "length":
        entries["length"] = str(rng.choice([-1, 2 ** 62, len(data) + 4, 0, 1]))
    elif choice == "short":
        case.files[local] = data[: len(data) // 2]
        entries.update(offset="0", length=str(len(data)))
    elif choice == "missing":
        del case.files[local]
    elif choice == "empty":
        entries["location"] = ""
    else:
        entries["location"] = "."
    for k, v in entries.items():
        t.external_data.add(key=k, value=v)
    return f"initializer {t.name!r} external: {choice} {entries}"


def bytes_flipped(m, rng, case):
    data = bytearray(m.SerializeToString())
    count = rng.choice([1, 1, 2, 4, 16])
    for _ in range(count):
        k = rng.randrange(len(data))
        data[k] ^= 1 << rng.randrange(8) if rng.random() < 0.7 else rng.randrange(1, 256)
    case.raw = bytes(data)
    return f"{count} byte(s) of {len(data)} flipped"


def bytes_truncated(m, rng, case):
    data = m.SerializeToString()
    k = rng.randrange(len(data))
    case.raw = data[:k]
    return f"truncated at {k} of {len(data)} bytes"


KINDS: Dict[str, Callable] = {f.__name__: f for f in [
    input_cut, input_added, input_emptied, output_added, output_removed, attr_wrong_type,
    attr_wrong_value, attr_unknown, node_removed, nodes_reordered, cycle, two_producers,
    init_wrong_size, init_wrong_dtype, init_bad_dims, init_reshaped, op_swapped, input_elem_type,
    input_dims, graph_output,
    opset_changed, ir_changed, hostile_names, external_data, bytes_flipped, bytes_truncated]}
KIND_NAMES = list(KINDS)


def make_case(seed: int, index: int) -> Case:
    """The case (seed, index): kind KIND_NAMES[index % len], base and parameters from the rng."""
    kind = KIND_NAMES[index % len(KIND_NAMES)]
    rng = random.Random(f"{seed}:{index}")
    order = BASES[:]
    rng.shuffle(order)
    for base in order:  # the first base the kind applies to
        case = Case(seed, index, kind, base)
        case.model = base_model(base)
        try:
            case.detail = KINDS[kind](case.model, rng, case)
        except NotApplicable:
            continue
        return case
    raise RuntimeError(f"kind {kind} applies to no base model")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.fuzz_models", description=__doc__.split("\n")[0])
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--case", type=int, required=True)
    p.add_argument("-o", "--output", required=True, help="where to write the model (.onnx)")
    args = p.parse_args(argv)
    case = make_case(args.seed, args.case)
    case.write(args.output)
    print(case.describe())
    return 0


if __name__ == "__main__":
    sys.exit(main())
