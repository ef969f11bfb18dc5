"""IR verifier: checks the invariants every pass relies on, run after the frontend and each pass.

A pass that breaks the IR (a value left without a dtype, a node moved before its producer, an
IR attribute of the wrong type) would otherwise surface far away, as a crash in an emitter or
as wrong generated code. `check` names the pass and the node instead. The tests run it always
(ONNX2SRC_CHECK_IR=1); the CLI runs it with --check-ir. A failure is a compiler bug, never the
model's fault: invalid models are refused earlier, with a CompileError.

IR_OPS below is the one table of the IR ops (domain "onnx2src") and their attributes.
"""
from __future__ import annotations

from typing import Any, Dict, List

import numpy as np

from .dims import Dim
from .loops import Nest
from .ir import Condition, DType, Graph, InternalError, Node, Value
from .ops import IR_DOMAIN

# -- the IR ops and their attributes --------------------------------------------------------------
# attribute name → type spec; a name ending in "?" is optional. A spec is a type, None (the
# value None), a tuple of alternatives, [spec] (a list or tuple of such), or {str: spec} (a dict).
# `int` never accepts a bool. Every IR node also carries onnx_op (the ONNX op it came from).
SIZE = (int, Dim)  # a size, stride or bound, possibly symbolic (bounds and strides may be < 0)
PACKED = {"packed?": {str: Value}, "panel?": int,  # added by passes/pack_weights.py (C target)
          "matrix_strides?": [int]}
# ops/conv.py: per spatial axis; same is the auto_pad (SAME_UPPER / SAME_LOWER) that set the pads
WINDOW = {"in_shape": [SIZE], "out_shape": [SIZE], "in_strides": [SIZE], "out_strides": [SIZE],
          "in_plane": SIZE, "out_plane": SIZE, "kernel": [int], "taps": int, "kernel_strides": [int],
          "spans": [int], "strides": [int], "dilations": [int], "pads": [SIZE], "pads_end": [SIZE],
          "same": (str, None), "output_padding": [int]}

IR_OPS: Dict[str, Dict[str, Any]] = {
    # ops/layout.py (Reshape, Flatten, Squeeze, ...); plan_memory turns some View into Copy
    "View": {},
    "Copy": {},                                       # also passes/lower.py: graph outputs
    "Transpose": {"perm": [int], "parts": [Nest]},   # parts: the copy, as loop nests (loops.py)
    "Concat": {"axis": int, "parts": [Nest]},
    "Expand": {"parts": [Nest]},
    "Fill": {"value": (bool, int, float)},            # ops/shape.py, ops/layout.py (Dropout mask)
    # ops/slice.py: (start, end, step) per input axis, normalized
    "Slice": {"bounds": [[SIZE]], "parts": [Nest]},
    "DynamicSlice": {"in_dims": [SIZE], "out_dims": [SIZE], "in_strides": [SIZE], "out_strides": [SIZE]},
    # ops/elementwise.py, math.py, logic.py: alpha for LeakyRelu, Elu, Selu, HardSigmoid and
    # HardSwish, beta for the last two, gamma for Selu; Clip's constant bounds min / max, and
    # min_input / max_input when a bound is an operand (after X) instead
    "Elementwise": {"kind": str, "nest": Nest, "alpha?": float, "beta?": float, "gamma?": float,
                    "min?": float, "max?": float, "min_input?": bool, "max_input?": bool},
    # ops/gemm.py: batch is the loop nest over the batch offsets of A, B and Y
    "Gemm": {"M": SIZE, "N": SIZE, "K": SIZE, "batch": Nest,
             "a_strides": [SIZE], "b_strides": [SIZE], "c_strides": ([SIZE], None),
             "trans_a": bool, "trans_b": bool, "alpha": float, "beta": float, **PACKED},
    # ops/glue.py: Tile copies through parts (repeats: None when symbolic); Range's length
    "Tile": {"repeats": ([int], None), "parts": [Nest]},
    "Range": {"count": SIZE},
    # ops/trilu.py: each [rows][cols] matrix of the batch keeps j - i >= k (upper) or <= k
    "Trilu": {"batch": SIZE, "rows": SIZE, "cols": SIZE, "k": SIZE, "upper": bool},
    "Softmax": {"outer": SIZE, "n": SIZE, "inner": SIZE, "log": bool},  # ops/softmax.py
    # ops/reduce.py: ReduceX, ArgMax/ArgMin (last: select_last_index); groups: the nest's loop
    # numbers [kept, reduced, inner]; row: the nest without its last loop, for the lanes;
    # whole / tail: loops.lane_split of the last loop's extent (None / False without lanes)
    "Reduce": {"kind": str, "x_dtype": DType, "axes": [int], "nest": Nest, "groups": [[int]],
               "row": (Nest, None), "lanes": (int, None), "whole": (SIZE, None), "tail": bool,
               "divisor": SIZE, "empty": bool, "last": bool},
    "CumSum": {"axis": int, "exclusive": bool, "reverse": bool, "nest": Nest, "prev": (Nest, None),
               "groups": [[int]]},
    # ops/normalize.py: groups [rows, one row]; nest operands X (= Y), statistics, Scale, B
    # (start: the nest of the rows alone, where each row of X starts)
    "LayerNorm": {"axis": int, "epsilon": float, "nest": Nest, "groups": [[int]], "start": Nest,
                  "count": SIZE, "lanes": int, "whole": (SIZE, None), "tail": bool,  # loops.lane_split
                  "bias": bool, "mean": bool, "inv_std_dev": bool},
    # ops/pad.py: value unless a run-time input; src / dst / pads for NumPy (slices: stop None
    # or < 0, from the end); parts (constant mode) or the per-axis index maps (other modes)
    "Pad": {"mode": str, "value": float, "src": [[(int, None)]], "dst": [[(int, None)]],
            "crop": bool, "pads": [[int]], "parts?": [Nest], "out_dims?": [SIZE],
            "pad_begin?": [SIZE], "start?": [SIZE], "length?": [SIZE], "last?": [SIZE],
            "period?": [SIZE], "in_strides?": [SIZE], "axis_modes?": [str]},
    # ops/pool.py: per spatial axis; pads / room / padded: NumPy's np.pad of the input
    "Pool": {"kind": str, "global_pool": bool, "outer": SIZE, "in_plane": SIZE, "lowest": float,
             "axes": [int], "window_axes": [int], "out_plane?": SIZE, "in_dims?": [SIZE],
             "out_dims?": [SIZE], "in_strides?": [SIZE], "out_strides?": [SIZE], "kernel?": [int],
             "strides?": [int], "dilations?": [int], "window?": [int], "pad_begin?": [SIZE],
             "count_lo?": [SIZE], "count_hi?": [SIZE], "count_include_pad?": bool,
             "indices?": bool, "column_major?": bool, "index_strides?": [SIZE],
             "pads?": [[SIZE]], "room?": [[int]], "padded?": [[SIZE]], "any_pad?": bool,
             "any_room?": bool},
    # ops/conv.py: planes are (batch, group) pairs (DepthwiseConv: (batch, output channel));
    # Im2col's cols_strides: of its output along (batch, group, channel x tap, position);
    # DepthwiseConv's inner: [lo, hi), the positions along the last axis with every tap inside
    "Im2col": {"batch": SIZE, "groups": int, "channels": int, "by_position": bool,
               "cols_strides": [SIZE], **WINDOW},
    "Col2im": {"planes": SIZE, "out_planes": SIZE, "groups": int, "channels": int,
               "out_channels": int, **WINDOW},
    "ChannelsFirst": {"parts": [Nest]},  # [n][g][s][o] → [n][g*opg + o][s], a transposing copy
    "DepthwiseConv": {"planes": SIZE, "channels": int, "out_channels": int, "multiplier": int,
                      "transposed": bool, "inner": [SIZE], **WINDOW},
    "Gather": {"axis": int},                                             # ops/gather.py
    "Materialize": {"values": np.ndarray},                               # passes/lower.py
    "Select": {},                                    # ops/control.py: Y = A if cond else B
    # ops/recurrent.py: activations is [[(name, alpha or None, beta or None)] per direction]
    "Recurrent": {"cell": str, "layout": int, "seq": SIZE, "batch": SIZE,
                  "input_size": SIZE, "hidden": SIZE, "directions": [str],
                  "activations": [[[(str, float, None)]]], "clip": (float, None),
                  "input_forget": bool, "linear_before_reset": bool,
                  "scratch": {str: Value}, **PACKED},
}
COMMON = {"onnx_op": str, "guard?": [Condition]}  # guard: runs only when every condition holds

# Stages after which node outputs may still lack a dtype and shape (inference comes next).
UNTYPED_STAGES = ("frontend",)


def check(graph: Graph, after: str) -> None:
    """Raise InternalError if `graph` breaks an IR invariant; `after` names the last stage run."""
    typed = after not in UNTYPED_STAGES

    def fail(message: str, node: Node = None):
        raise InternalError(message, node, after)

    inputs = {id(v) for v in graph.inputs}
    for v in graph.inputs:
        _check_value(v, "graph input", None, fail)

    producers: Dict[int, List[int]] = {}
    for i, node in enumerate(graph.nodes):
        for v in node.outputs:
            if v is not None:
                producers.setdefault(id(v), []).append(i)

    domains = {n.domain == IR_DOMAIN for n in graph.nodes}
    if len(domains) > 1:
        onnx_node = next(n for n in graph.nodes if n.domain != IR_DOMAIN)
        fail("the graph mixes ONNX nodes with lowered IR nodes", onnx_node)

    for i, node in enumerate(graph.nodes):
        for v in node.inputs:
            if v is None:
                continue
            _check_value(v, "input", node, fail, need_type=typed or _is_source(v, inputs))
            if id(v) in inputs or v.data is not None:
                continue
            earlier = [j for j in producers.get(id(v), []) if j < i]
            if not earlier:
                later = producers.get(id(v))
                if later:
                    fail(f'reads "{v.name}" before node "{graph.nodes[later[0]].name}" produces it '
                         f"(the nodes are not in topological order)", node)
                fail(f'reads "{v.name}", which is no graph input, no constant and produced by no node', node)
        for v in node.outputs:
            if v is None:
                continue
            _check_value(v, "output", node, fail, need_type=typed)
            if id(v) in inputs:
                fail(f'writes graph input "{v.name}"', node)
            if len(producers[id(v)]) > 1:
                other = graph.nodes[next(j for j in producers[id(v)] if j != i)]
                fail(f'value "{v.name}" is produced by two nodes: this one and "{other.name}" '
                     f"({other.op_type})", node)
        for v in node.scratch:
            _check_value(v, "scratch", node, fail)
        if node.domain == IR_DOMAIN:
            _check_attrs(node, fail)

    for v in graph.outputs:
        _check_value(v, "graph output", None, fail, need_type=typed or _is_source(v, inputs))
        if id(v) not in producers and id(v) not in inputs and v.data is None:
            fail(f'graph output "{v.name}" is produced by no node and is no graph input or constant')


def _is_source(v: Value, inputs) -> bool:
    return id(v) in inputs or v.data is not None


def _check_value(v, role: str, node, fail, need_type: bool = True) -> None:
    if not isinstance(v, Value):
        fail(f"{role} {v!r} is a {type(v).__name__}, not a Value", node)
    if not need_type and v.dtype is None and v.shape is None:
        return
    if not isinstance(v.dtype, DType):
        fail(f'{role} "{v.name}" has no dtype' if v.dtype is None else
             f'{role} "{v.name}" has dtype {v.dtype!r}, not an ir.DType', node)
    if v.shape is None:
        fail(f'{role} "{v.name}" has no shape', node)
    if not isinstance(v.shape, tuple):
        fail(f'{role} "{v.name}" has a shape of type {type(v.shape).__name__}, not a tuple', node)
    for axis, d in enumerate(v.shape):
        if not (isinstance(d, Dim) or (type(d) is int and d >= 0)):
            fail(f'{role} "{v.name}" has dim {d} ({type(d).__name__}) at axis {axis} of shape '
                 f"{v.shape}; a dim is an int >= 0 or a dims.Dim", node)
    if v.data is not None:
        if not isinstance(v.data, np.ndarray):
            fail(f'{role} "{v.name}" holds data of type {type(v.data).__name__}, not an ndarray', node)
        if v.data.shape != v.shape:
            fail(f'{role} "{v.name}" holds data of shape {v.data.shape} but has shape {v.shape}', node)
        if v.data.dtype != object and v.data.dtype != v.dtype.numpy:
            fail(f'{role} "{v.name}" holds {v.data.dtype} data but has dtype {v.dtype.name}', node)


def _check_attrs(node: Node, fail) -> None:
    table = IR_OPS.get(node.op_type)
    if table is None:
        fail(f"{node.op_type} is not an IR op (add it to ir_verifier.IR_OPS)", node)
    table = {**COMMON, **table}
    for key, spec in table.items():
        name = key.rstrip("?")
        if name not in node.attrs:
            if not key.endswith("?"):
                fail(f'IR attribute "{name}" is missing', node)
            continue
        value = node.attrs[name]
        if not _matches(value, spec):
            fail(f'IR attribute "{name}" must be {_describe(spec)}, not {_shown(value)}', node)
    known = {key.rstrip("?") for key in table}
    for name in node.attrs:
        if name not in known:
            fail(f'IR attribute "{name}" is not one of {node.op_type}\'s (see ir_verifier.IR_OPS)', node)


def _matches(value, spec) -> bool:
    if spec is None:
        return value is None
    if isinstance(spec, tuple):
        return any(_matches(value, s) for s in spec)
    if isinstance(spec, list):
        return isinstance(value, (list, tuple)) and all(_matches(x, spec[0]) for x in value)
    if isinstance(spec, dict):
        (key_type, value_spec), = spec.items()
        return isinstance(value, dict) and all(
            isinstance(k, key_type) and _matches(x, value_spec) for k, x in value.items())
    if spec is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, spec)


def _describe(spec) -> str:
    if spec is None:
        return "None"
    if isinstance(spec, tuple):
        return " or ".join(_describe(s) for s in spec)
    if isinstance(spec, list):
        return f"a list of {_describe_part(spec[0])}"
    if isinstance(spec, dict):
        (key_type, value_spec), = spec.items()
        return f"a dict of {key_type.__name__} to {_describe_part(value_spec)}"
    return spec.__name__


def _describe_part(spec) -> str:
    return f"({_describe(spec)})" if isinstance(spec, tuple) else _describe(spec)


def _shown(value) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 60 else text[:57] + '...'}"
