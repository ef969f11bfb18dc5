"""RNN, LSTM and GRU (opsets 7, 14, 22), lowered to one IR op, `Recurrent`.

Lowering resolves everything the spec leaves implicit, so each emitter implements the
recurrence once for all three cells: the direction list, the per-direction activations with
their alpha/beta (defaults filled in, consumed in order by the activations that take them, as
onnxruntime does), clip, input_forget, linear_before_reset, and a zero bias when B is absent.
Inputs keep the ONNX order: X, W, R, B, sequence_lens, initial_h, initial_c, P.
"""
import numpy as np

from ..dims import minimum
from ..ir import CompileError, Value
from . import ir, register, set_output

GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}
DEFAULT_ACTIVATIONS = {"RNN": ["Tanh"], "GRU": ["Sigmoid", "Tanh"], "LSTM": ["Sigmoid", "Tanh", "Tanh"]}
# activation → (default alpha, default beta); None where the function takes no such parameter.
# The defaults are onnxruntime's, which we match: where the spec defers to the standalone ops
# (ThresholdedRelu alpha 1, Affine alpha 1), onnxruntime uses 0.
PARAMETERS = {
    "Relu": (None, None), "Tanh": (None, None), "Sigmoid": (None, None),
    "Affine": (0.0, 0.0), "LeakyRelu": (0.01, None), "ThresholdedRelu": (0.0, None),
    "ScaledTanh": (0.0, 0.0), "HardSigmoid": (0.2, 0.5), "Elu": (1.0, None),
    "Softsign": (None, None), "Softplus": (None, None),
}
DIRECTIONS = {"forward": ["forward"], "reverse": ["reverse"], "bidirectional": ["forward", "reverse"]}
# Steps whose input projections are computed together, by one matrix product: enough rows for the
# kernel to run at full speed, while the scratch memory stays the same whatever the sequence length.
STEP_BLOCK = 32


def _directions(node):
    direction = node.attrs.get("direction", "forward")
    if direction not in DIRECTIONS:
        raise CompileError(f"direction {direction!r} is not one of forward, reverse, bidirectional", node)
    return DIRECTIONS[direction]


def _sizes(node):
    x, w, r = node.input(0), node.input(1), node.input(2)
    layout = node.attrs.get("layout", 0)
    if layout not in (0, 1):
        raise CompileError(f"layout {layout} is not 0 or 1", node)
    if x.rank != 3 or w.rank != 3 or r.rank != 3:
        raise CompileError("X, W and R must be 3-D", node)
    if not all(isinstance(d, int) for d in (*w.shape, *r.shape, x.shape[2])):
        raise CompileError(f"X {list(x.shape)}, W {list(w.shape)} and R {list(r.shape)} must have sizes known "
                           f"at compile time but for the sequence and batch (fix a dim with --fix-dim)", node)
    if x.shape[2] != w.shape[2]:
        raise CompileError(f"X's input size {x.shape[2]} is not W's {w.shape[2]}", node)
    seq, batch = (x.shape[1], x.shape[0]) if layout else (x.shape[0], x.shape[1])
    if 0 in (seq, batch, x.shape[2], r.shape[2]):
        raise CompileError(f"X {list(x.shape)} or R {list(r.shape)} is empty: no recurrence to run", node)
    hidden = node.attrs.get("hidden_size", r.shape[2])
    gates = GATES[node.op_type]
    dirs = len(_directions(node))
    if w.shape[0] != dirs or w.shape[1] != gates * hidden or r.shape[1] != gates * hidden or r.shape[2] != hidden:
        raise CompileError(f"W {list(w.shape)} / R {list(r.shape)} do not fit {dirs} direction(s) of "
                           f"{gates} gate(s) with hidden_size {hidden}", node)
    return layout, seq, batch, x.shape[2], hidden, dirs


def _activations(node):
    """[[(name, alpha, beta), ...] per direction]"""
    per_dir = len(DEFAULT_ACTIVATIONS[node.op_type])
    dirs = len(_directions(node))
    names = node.attrs.get("activations", DEFAULT_ACTIVATIONS[node.op_type] * dirs)
    if len(names) == per_dir and dirs == 2 and "activations" in node.attrs:
        names = list(names) * 2
    if len(names) != per_dir * dirs:
        raise CompileError(f"expected {per_dir * dirs} activations, got {len(names)}", node)
    alphas = list(node.attrs.get("activation_alpha", []))
    betas = list(node.attrs.get("activation_beta", []))
    resolved = []
    for name in names:
        canonical = {k.lower(): k for k in PARAMETERS}.get(name.lower())
        if canonical is None:
            raise CompileError(f"activation {name!r} is not one of the spec's", node)
        alpha, beta = PARAMETERS[canonical]
        if alpha is not None and alphas:
            alpha = alphas.pop(0)
        if beta is not None and betas:
            beta = betas.pop(0)
        resolved.append((canonical, alpha, beta))
    return [resolved[i * per_dir:(i + 1) * per_dir] for i in range(dirs)]


def infer(node, graph):
    layout, seq, batch, _, hidden, dirs = _sizes(node)
    x = node.input(0)
    if x.dtype.name not in ("float", "double"):
        raise CompileError(f"{node.op_type} on {x.dtype.name} is not supported", node)
    y = (batch, seq, dirs, hidden) if layout else (seq, dirs, batch, hidden)
    state = (batch, dirs, hidden) if layout else (dirs, batch, hidden)
    gates = GATES[node.op_type]
    expected = {3: ("B", (dirs, 2 * gates * hidden)), 4: ("sequence_lens", (batch,)),
                5: ("initial_h", state), 6: ("initial_c", state), 7: ("P", (dirs, 3 * hidden))}
    for i, (what, shape) in expected.items():
        v = node.input(i)
        if v is not None and (len(v.shape) != len(shape) or any(
                isinstance(a, int) and isinstance(b, int) and a != b for a, b in zip(v.shape, shape))):
            raise CompileError(f"{what} has shape {list(v.shape)}, not {list(shape)}", node)
    set_output(node, 0, x.dtype, y)
    set_output(node, 1, x.dtype, state)
    set_output(node, 2, x.dtype, state)
    _activations(node)


def lower(node, graph):
    layout, seq, batch, size, hidden, dirs = _sizes(node)
    x = node.input(0)
    inputs = [node.input(i) for i in range(8)]
    if inputs[3] is None:
        zeros = np.zeros((dirs, 2 * GATES[node.op_type] * hidden), dtype=x.dtype.numpy)
        inputs[3] = Value(f"{node.name}_zero_bias", x.dtype, zeros.shape, zeros)
    if node.op_type != "LSTM":
        inputs = inputs[:6]
    if inputs[4] is not None and inputs[4].dtype.name not in ("int32", "int64"):
        raise CompileError("sequence_lens must be int32 or int64", node)
    clip = node.attrs.get("clip")
    outputs = [node.output(i) for i in range(3 if node.op_type == "LSTM" else 2)]
    lowered = ir("Recurrent", node, inputs, outputs, cell=node.op_type, layout=layout,
               seq=seq, batch=batch, input_size=size, hidden=hidden,
               directions=_directions(node), activations=_activations(node),
               clip=None if clip is None else float(clip),
               input_forget=bool(node.attrs.get("input_forget", 0)),
               linear_before_reset=bool(node.attrs.get("linear_before_reset", 0)))
    gh = GATES[node.op_type] * hidden
    scratch = {"xw": (minimum(seq, STEP_BLOCK), batch, gh), "h": (batch, hidden), "gates": (batch, gh)}
    if node.op_type == "LSTM":
        scratch["c"] = (batch, hidden)
    if node.op_type == "GRU" and not lowered.attrs["linear_before_reset"]:
        scratch["rh"] = (batch, hidden)  # r . h
    lowered.attrs["scratch"] = {k: Value(f"{node.name}_{k}", x.dtype, shape) for k, shape in scratch.items()}
    lowered.scratch = list(lowered.attrs["scratch"].values())
    return [lowered]


register("RNN GRU LSTM", 7, infer=infer, lower=lower)
