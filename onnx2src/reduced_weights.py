"""Reduced-precision weights (--weights bf16, --weights int8): the model's matrices rounded.

`round_model` is the rounding itself: it replaces each matrix weight of an ONNX model (Gemm's
and MatMul's B, Conv's W, the W and R of LSTM, GRU and RNN, a constant operand of a two-operand
Einsum) by the float32 values the format
holds: each rounded to bfloat16 (bf16); or int8 values times their output channel's scale,
symmetric (int8). The compiler compiles that model, and it is the exact reference for tests,
`verify` and `bench --weights`, so the generated code is checked against onnxruntime running it.

The emitters then store in the format every constant they find to hold such values: bf16 in
the C kernel's packed matrices (`bf16_bits` keeps them exactly); int8 in the C kernel's packed
matrices (`int8_columns`) and the NumPy module's arrays (`int8_channels`), whose check recovers
the int8 values and scales from the floats, so it holds through the re-layouts the compiler
makes (transposes, packing, a BatchNorm folded into a Conv). A constant it does not hold for
(weights the kernel does not read as its packed operand, weights computed from others) simply
stays float, with the rounded values.
"""
import numpy as np

LEVELS = 127  # int8 values -127..127: symmetric, so no zero point
# How far a recovered q * scale may be from the float it stands for, relative to its channel's
# largest magnitude: a few float32 roundings (the scale itself is recovered to about an ulp).
LOSSLESS = 2.0 ** -20

# The ONNX inputs that are matrix weights: op type -> input indices (shared_axes tells which
# axes share a scale)
MATRIX_INPUTS = {"Gemm": (1,), "MatMul": (1,), "Conv": (1,), "LSTM": (1, 2), "GRU": (1, 2), "RNN": (1, 2),
                 "Einsum": (0, 1)}


def quantize(data: np.ndarray, axes) -> tuple:
    """(q int8, scale float32 broadcastable to data): data ≈ q * scale, one scale over `axes`
    (max |data| / 127, rounded to nearest even; a channel of zeros gets scale 0); data is not
    empty."""
    data = np.asarray(data, np.float32)
    top = np.max(np.abs(data), axis=axes, keepdims=True)
    scale = (top / np.float32(LEVELS)).astype(np.float32)
    safe = np.where(scale > 0, scale, np.float32(1))
    q = np.clip(np.rint(data / safe), -LEVELS, LEVELS).astype(np.int8)
    return q, scale


def dequantized(data: np.ndarray, axes) -> np.ndarray:
    q, scale = quantize(data, axes)
    return (q.astype(np.float32) * scale).astype(np.float32)


def bf16_bits(data) -> np.ndarray:
    """float32 `data` rounded to bfloat16 (to nearest, ties to even; NaN stays NaN), as the
    upper 16 bits of each float."""
    bits = np.ascontiguousarray(data, np.float32).view(np.uint32).astype(np.uint64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
    return np.where(np.isnan(np.asarray(data, np.float32)), np.uint16(0x7FC0), rounded).reshape(np.shape(data))


def bf16_rounded(data, axes=None) -> np.ndarray:
    """float32 `data` rounded to bfloat16 and widened back (the axes play no part)."""
    return (bf16_bits(data).astype(np.uint32) << 16).view(np.float32)


ROUNDINGS = {"bf16": bf16_rounded, "int8": dequantized}  # weight format -> rounding(data, axes)


def shared_axes(op_type, index, rank, trans_b=False, equation=""):
    """The axes one scale spans (all but the output channel's) for input `index`, of rank `rank`,
    of an `op_type` node (a Gemm's transB, an Einsum's equation given); None if it is not a
    matrix weight."""
    if index not in MATRIX_INPUTS.get(op_type, ()):
        return None
    if op_type == "Einsum":
        return _einsum_axes(equation, index, rank)
    if op_type == "Gemm":  # B[K][N], or B[N][K] with transB
        return ((1,) if trans_b else (0,)) if rank == 2 else None
    if op_type == "MatMul":  # B[..., K, N]: a scale per column of each matrix
        return (rank - 2,) if rank >= 2 else None
    if op_type == "Conv":  # W[out][in/groups][taps...]
        return tuple(range(1, rank)) if rank >= 3 else None
    return (2,) if rank == 3 else None  # a recurrence's W or R [directions][gate rows][inputs]


def _einsum_axes(equation, index, rank):
    """An Einsum of two operands reading operand `index` as weights: the axes it sums over (its
    letters the output lacks) share a scale; None if it has an ellipsis or sums over nothing."""
    equation = equation.replace(" ", "")
    if "->" not in equation or equation.count(",") != 1:
        return None
    terms, output = equation.split("->")
    term = terms.split(",")[index]
    if "." in term or len(term) != rank:
        return None
    axes = tuple(a for a, letter in enumerate(term) if letter not in output)
    return axes or None


# Ops between constants and the matrix input they feed, which rearrange or select elements
# (exporters write a recurrence's W as Unsqueeze(Constant), an LSTMCell's as its gates sliced
# and concatenated in ONNX's order): the weight is computed from the constants and quantized as
# the matrix input reads it.
ARRANGE = ("Unsqueeze", "Squeeze", "Identity", "Reshape", "Flatten", "Transpose", "Slice", "Concat",
           "Split", "Gather")
LARGEST = 1 << 26  # elements: a weight computed from constants that would be larger is left alone


def _graphs(graph):
    yield graph
    for node in graph.node:
        for a in node.attribute:
            for sub in ([a.g] if a.HasField("g") else []) + list(a.graphs):
                yield from _graphs(sub)


def _expression(name, producers, tensors):
    """The ARRANGE nodes computing `name` from constant tensors only, in order; None if it is not
    such a value (a graph input, another op, a cycle)."""
    nodes, seen, visiting = [], set(), set()

    def visit(value):
        if value in tensors or value == "":
            return True
        node = producers.get(value)
        if node is None or node.op_type not in ARRANGE or node.domain not in ("", "ai.onnx") or id(node) in visiting:
            return False
        visiting.add(id(node))
        if not all(visit(x) for x in node.input):
            return False
        if id(node) not in seen:
            seen.add(id(node))
            nodes.append(node)
        return True
    return nodes if visit(name) else None


def _evaluate(model, nodes, name, tensors):
    """The value `name` computed by `nodes` from `tensors`, by onnx.reference; None if it fails
    or would be too large."""
    from onnx import helper, numpy_helper
    from onnx.reference import ReferenceEvaluator
    used = {x for n in nodes for x in n.input if x in tensors}
    if sum(int(np.prod(tensors[x].dims)) for x in used) * max(len(nodes), 1) > LARGEST:
        return None
    inits = [numpy_helper.from_array(numpy_helper.to_array(tensors[x]), x) for x in sorted(used)]
    graph = helper.make_graph(list(nodes), "weight", [], [helper.make_tensor_value_info(name, 1, None)], inits)
    try:
        sub = helper.make_model(graph, opset_imports=[o for o in model.opset_import if o.domain in ("", "ai.onnx")])
        return np.asarray(ReferenceEvaluator(sub).run(None, {})[0])
    except Exception:  # an op onnx.reference refuses: the weight stays float
        return None


def round_model(model, weights: str):
    """The ONNX `model` (changed in place, and returned) with each matrix weight replaced by its
    rounding to the `weights` format (ROUNDINGS): a float32 initializer or Constant, in the main graph or a
    subgraph, replaced in place (once, for its first reader); or a weight computed from such
    constants by ARRANGE ops, computed here, rounded and fed to its reader as a new initializer
    of the reader's graph."""
    from onnx import numpy_helper
    from .validate import check_model
    check_model(model)  # a model file is untrusted: checked before anything reads it
    rounding = ROUNDINGS[weights]
    tensors, producers = {}, {}  # name -> TensorProto; output name -> node
    for g in _graphs(model.graph):
        for t in g.initializer:
            tensors[t.name] = t
        for node in g.node:
            for o in node.output:
                producers[o] = node
            value = next((a for a in node.attribute if a.name == "value" and a.HasField("t")), None)
            if node.op_type == "Constant" and value is not None:
                tensors[node.output[0]] = value.t
    done, taken = set(), set(tensors) | set(producers)
    for g in _graphs(model.graph):
        for node in g.node:
            for index, name in enumerate(node.input):
                if index not in MATRIX_INPUTS.get(node.op_type, ()) or name in done:
                    continue
                nodes = _expression(name, producers, tensors)
                if nodes is None:
                    continue
                if nodes:
                    data = _evaluate(model, nodes, name, tensors)
                elif tensors[name].data_type == 1:  # FLOAT
                    data = numpy_helper.to_array(tensors[name])
                else:
                    data = None
                if data is None or data.dtype != np.float32 or data.size == 0:
                    continue
                trans_b = any(a.name == "transB" and a.i for a in node.attribute)
                equation = next((a.s.decode("utf-8", "replace") for a in node.attribute if a.name == "equation"), "")
                axes = shared_axes(node.op_type, index, data.ndim, trans_b, equation)
                if axes is None:
                    continue
                if nodes:  # a new initializer of this graph
                    new_name = next(f"{name}_{weights}{k or ''}" for k in range(len(taken) + 1)
                                    if f"{name}_{weights}{k or ''}" not in taken)
                    taken.add(new_name)
                    g.initializer.append(numpy_helper.from_array(rounding(data, axes), new_name))
                    node.input[index] = new_name
                else:
                    tensors[name].CopyFrom(numpy_helper.from_array(rounding(data, axes), tensors[name].name))
                    done.add(name)
    return model


def recover(data: np.ndarray, axes):
    """(q int8, scale float32 broadcastable to data) with q * scale equal to `data` within
    LOSSLESS of each channel's largest magnitude, one scale over `axes`; None if `data` is not
    such values. A channel's scale is its largest magnitude / m for the largest m <= 127 that
    works: 127 for this module's quantization, the channel's largest |q| for a weight quantized
    per tensor (or with a narrower range) by another tool."""
    data = np.asarray(data, np.float32)
    if data.size == 0:
        return None
    top = np.max(np.abs(data), axis=axes, keepdims=True)
    q, scale = np.zeros(data.shape, np.int8), np.zeros(top.shape, np.float32)
    todo = np.ones(top.shape, bool)
    for m in range(LEVELS, 0, -1):
        trial = (top / np.float32(m)).astype(np.float32)
        codes = np.rint(data / np.where(trial > 0, trial, np.float32(1)))
        fits = np.all(np.abs(codes * trial - data) <= top * LOSSLESS, axis=axes, keepdims=True) & todo
        q = np.where(fits, codes, q).astype(np.int8)
        scale = np.where(fits, trial, scale)
        todo &= ~fits
        if not todo.any():
            return q, scale
    return None


def int8_columns(panels: np.ndarray):
    """For packed matrix panels [P][K][W] (templates/c/kernels.c.j2): (q int8 [P][K][W], scale
    float32 [P*W]), one scale per column, if every column is int8 values times a scale; else None."""
    if panels.ndim != 3 or panels.size == 0 or panels.dtype != np.float32:
        return None
    found = recover(panels, (1,))
    return found and (found[0], found[1].reshape(-1))


def int8_channels(data: np.ndarray):
    """For a constant float32 array of rank >= 2: (q int8, scale float32 broadcastable to it),
    one scale per index of some axis, or per row along some axis, whichever first holds and
    takes fewer bytes than the floats; else None."""
    if data.ndim < 2 or data.size == 0 or data.dtype != np.float32:
        return None
    rank = data.ndim
    for axes in [tuple(a for a in range(rank) if a != keep) for keep in range(rank)] + [(a,) for a in range(rank)]:
        found = recover(data, axes)
        if found and data.size + 4 * found[1].size < 4 * data.size:
            return found
    return None
