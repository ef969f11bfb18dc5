"""Elementwise math: Pow, Sqrt, Exp, Log, Abs, Reciprocal, Floor, Ceil, Round, Sign, Erf, Sin, Cos,
Clip, the variadic Max, Min, Sum and Mean, and the activations HardSigmoid, HardSwish, Softplus,
Elu, Selu, Gelu and Mish.

All lower to the IR op `Elementwise` (see elementwise.py), one expression template per kind in
templates/{c,numpy}/expr/. Variadic Max and Min over more than two inputs become a chain of
binary nodes (an integer max of N operands is no C expression of linear size); Sum and Mean stay
one node. Max, Min, Abs and Sign also fold on symbolic sizes, as PyTorch's shape arithmetic
uses them (Sum and Mean are float-only in the spec).
"""
import math
from functools import reduce

import numpy as np

from ..dims import Dim, maximum, minimum, nonneg
from ..ir import CompileError, Value
from ..loops import broadcast_view, contiguous, nest
from . import ir, register, set_output
from .elementwise import broadcast, elementwise_ir, stream

FLOATS = {"float", "double"}
INTS = {"int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"}
NUMERIC = FLOATS | INTS

SELU_ALPHA = 1.67326319217681884765625   # the spec's defaults (float32 values)
SELU_GAMMA = 1.05070102214813232421875


# -- shape and type rules ------------------------------------------------------------------------

def check_dtype(node, value, allowed, what="input"):
    if value.dtype.name not in allowed:
        raise CompileError(f"{node.op_type} on {value.dtype.name} ({what}) is not supported "
                           f"(supported: {', '.join(sorted(allowed))})", node)


def infer_same(allowed):
    """Rule for ops whose inputs (one or more, all present) share one dtype and broadcast."""
    def infer(node, graph):
        inputs = node.inputs
        if not inputs or any(v is None for v in inputs):
            raise CompileError(f"{node.op_type} needs every input present (got {len(inputs)})", node)
        first = inputs[0]
        for v in inputs[1:]:
            if v.dtype != first.dtype:
                raise CompileError(f"inputs have different types ({first.dtype.name}, {v.dtype.name})", node)
        check_dtype(node, first, allowed)
        set_output(node, 0, first.dtype, broadcast(node, *[v.shape for v in inputs]))
    return infer


def infer_pow(node, graph):
    x, y = node.inputs
    check_dtype(node, x, {"float", "double", "int32", "int64"}, "base")
    check_dtype(node, y, NUMERIC if node.version >= 12 else {x.dtype.name}, "exponent")
    set_output(node, 0, x.dtype, broadcast(node, x.shape, y.shape))


def infer_clip(node, graph):
    x = node.input(0)
    check_dtype(node, x, NUMERIC if node.version >= 12 else FLOATS)
    for i, what in ((1, "min"), (2, "max")):
        bound = node.input(i)
        if bound is None:
            continue
        if bound.dtype != x.dtype:
            raise CompileError(f"{what} has type {bound.dtype.name}, not the input's {x.dtype.name}", node)
        if bound.rank > x.rank or not all(isinstance(d, int) and d == 1 for d in bound.shape):
            raise CompileError(f"{what} must be a scalar, got shape {list(bound.shape)} "
                               f"for an input of rank {x.rank}", node)
    set_output(node, 0, x.dtype, x.shape)


def infer_gelu(node, graph):
    approximate = node.attrs.get("approximate", "none")
    if approximate not in ("none", "tanh"):
        raise CompileError(f'approximate="{approximate}" is not one of "none", "tanh"', node)
    infer_same(FLOATS)(node, graph)


# -- constant folding (numpy; the reference semantics) -------------------------------------------

def _vectorized(fn):
    return np.vectorize(fn, otypes=[np.float64])


def _softplus(x):
    return np.logaddexp(0, x)


UNARY = {
    "Sqrt": np.sqrt, "Exp": np.exp, "Log": np.log, "Reciprocal": lambda x: 1 / x,
    "Floor": np.floor, "Ceil": np.ceil, "Round": np.round, "Sin": np.sin, "Cos": np.cos,
    "Erf": _vectorized(math.erf), "Softplus": _softplus,
    "Mish": lambda x: x * np.tanh(_softplus(x)),
}


def fold_unary(node, x):
    with np.errstate(all="ignore"):
        return [UNARY[node.op_type](x)]


def fold_activation(node, x):
    a = node.attrs
    with np.errstate(all="ignore"):
        if node.op_type == "Elu":
            alpha = a.get("alpha", 1.0)
            return [np.where(x >= 0, x, alpha * (np.exp(np.minimum(x, 0)) - 1))]
        if node.op_type == "Selu":
            alpha, gamma = a.get("alpha", SELU_ALPHA), a.get("gamma", SELU_GAMMA)
            return [np.where(x > 0, gamma * x, gamma * (alpha * np.exp(np.minimum(x, 0)) - alpha))]
        if node.op_type == "HardSigmoid":
            return [np.clip(a.get("alpha", 0.2) * x + a.get("beta", 0.5), 0, 1)]
        if node.op_type == "HardSwish":
            return [x * np.clip(x / 6 + 0.5, 0, 1)]
        if a.get("approximate", "none") == "tanh":  # Gelu
            return [0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))]
        return [0.5 * x * (1 + _vectorized(math.erf)(x / math.sqrt(2)))]


def fold_pow(node, x, y):
    if x.dtype == y.dtype and x.dtype.kind == "f":
        return [np.power(x, y)]
    with np.errstate(all="ignore"):  # as onnxruntime: std::pow in double, then back to T
        return [np.power(x.astype(np.float64), y.astype(np.float64))]


def clip_bounds(node):
    """Clip's (min, max): each a number, a Value (opset 11+ inputs) or None for no bound. An
    absent float bound is the type's lowest / largest value, as the spec and onnxruntime have
    it (so Clip maps -inf and inf to finite values); Clip-6's defaults are float32's."""
    x = node.input(0)
    if node.version < 11:
        top = float(np.finfo(np.float32).max)
        return node.attrs.get("min", -top), node.attrs.get("max", top)
    lo, hi = node.input(1), node.input(2)
    if x.dtype.name in FLOATS:
        top = float(np.finfo(x.dtype.numpy).max)
        lo, hi = (-top if lo is None else lo), (top if hi is None else hi)
    return lo, hi


def fold_clip(node, x, *bounds):
    for bound, pick in zip(clip_bounds(node), (np.maximum, np.minimum)):
        if bound is not None:
            value = bound.data if isinstance(bound, Value) else bound
            x = pick(x, np.asarray(value, x.dtype).reshape(()))
    return [x]


def _on_sizes(fn):
    """Apply `fn` elementwise to arrays that may hold symbolic sizes; None if some answer is not
    decidable at compile time (the node then runs at run time)."""
    def apply(*arrays):
        try:
            out = np.vectorize(fn, otypes=[object])(*arrays)
        except ValueError:
            return None
        if not any(isinstance(v, Dim) for v in out.flat):
            out = out.astype(np.int64)
        return out
    return apply


def _size_abs(d):
    if not isinstance(d, Dim):
        return abs(d)
    if nonneg(d):
        return d
    if nonneg(-d):
        return -d
    raise ValueError(f"the sign of {d} is not known")


def _size_sign(d):
    if not isinstance(d, Dim):
        return (d > 0) - (d < 0)
    if nonneg(d - 1):
        return 1
    if nonneg(-d - 1):
        return -1
    raise ValueError(f"the sign of {d} is not known")


def fold_numeric(node, *data):
    """Abs, Sign, Max, Min (on numbers, or on symbolic sizes: shape arithmetic) and Sum."""
    symbolic = any(x.dtype == object for x in data)
    if node.op_type in ("Abs", "Sign"):
        fn = {"Abs": (np.abs, _size_abs), "Sign": (np.sign, _size_sign)}[node.op_type]
        return [_on_sizes(fn[1])(data[0]) if symbolic else fn[0](data[0])]
    if node.op_type == "Sum":
        return [reduce(np.add, data)]
    pick = {"Max": (np.maximum, maximum), "Min": (np.minimum, minimum)}[node.op_type]
    if not symbolic:
        return [reduce(pick[0], data)]
    out = reduce(lambda a, b: None if a is None else _on_sizes(pick[1])(a, b), data)
    return [out]


def fold_mean(node, *data):
    return [reduce(np.add, data) / len(data)]


# -- lowering ------------------------------------------------------------------------------------

def lower_plain(node, graph):
    return [elementwise_ir(node, node.inputs, node.output(0), node.op_type)]


def lower_pow(node, graph):
    """x ** 2 (as in PyTorch's variance and norms) is x * x, as onnxruntime computes it; other
    float powers use pow of their type, and mixed or integer types pow in double."""
    x, y = node.inputs
    out = node.output(0)
    if (x.dtype.name in FLOATS and y.is_constant and y.data.size == 1 and x.shape == out.shape
            and float(y.data.reshape(())) == 2):
        return [elementwise_ir(node, [x], out, "Square")]
    same_float = x.dtype == y.dtype and x.dtype.name in FLOATS
    return [elementwise_ir(node, node.inputs, out, "Pow" if same_float else "PowMixed")]


def lower_activation(node, graph):
    a, op = node.attrs, node.op_type
    attrs = {
        "Elu": lambda: {"alpha": float(a.get("alpha", 1.0))},
        "Selu": lambda: {"alpha": float(a.get("alpha", SELU_ALPHA)), "gamma": float(a.get("gamma", SELU_GAMMA))},
        "HardSigmoid": lambda: {"alpha": float(a.get("alpha", 0.2)), "beta": float(a.get("beta", 0.5))},
        "HardSwish": lambda: {"alpha": 1 / 6, "beta": 0.5},
    }.get(op, dict)()
    kind = "GeluTanh" if op == "Gelu" and a.get("approximate", "none") == "tanh" else op
    return [elementwise_ir(node, node.inputs, node.output(0), kind, **attrs)]


def lower_variadic(node, graph):
    """Sum and Mean as one node; Max and Min over N > 2 inputs as a chain of binary nodes."""
    inputs, out = node.inputs, node.output(0)
    if node.op_type in ("Sum", "Mean") or len(inputs) <= 2:
        return [elementwise_ir(node, inputs, out, node.op_type)]
    nodes, acc = [], inputs[0]
    for k, v in enumerate(inputs[1:], 1):
        last = k == len(inputs) - 1
        target = out if last else Value(f"{out.name}_{node.op_type.lower()}{k}", out.dtype,
                                         broadcast(node, acc.shape, v.shape))
        nodes.append(elementwise_ir(node, [acc, v], target, node.op_type))
        acc = target
    return nodes


def lower_clip(node, graph):
    """Constant bounds become attributes `min` / `max` (dropped when they can't clip anything);
    run-time bounds are operands after X (flags `min_input` / `max_input`)."""
    x, out = node.input(0), node.output(0)
    bounds = dict(zip(("min", "max"), clip_bounds(node)))
    operands, attrs = [x], {}
    info = np.iinfo(x.dtype.numpy) if x.dtype.name in INTS else None
    for name, bound in bounds.items():
        if bound is None:
            continue
        if isinstance(bound, Value) and not bound.is_constant:
            attrs[f"{name}_input"] = True
            operands.append(bound)
            continue
        value = bound.data.reshape(()).item() if isinstance(bound, Value) else float(bound)
        if info is not None:
            if (name == "min" and value <= info.min) or (name == "max" and value >= info.max):
                continue  # the bound of the type itself: a no-op
            if abs(value) > 2 ** 53:  # not exact as a float attribute: keep the constant operand
                attrs[f"{name}_input"] = True
                operands.append(bound)
                continue
        attrs[name] = float(value)
    shape = out.shape
    # X walks with the output; each bound (one element) has stride 0 everywhere
    walk = nest(shape, contiguous(shape), broadcast_view(x.shape, shape),
                *[(0, [0] * len(shape)) for _ in operands[1:]])
    return [ir("Elementwise", node, operands, [out], kind="Clip", nest=walk, **attrs)]


# -- registrations -------------------------------------------------------------------------------

for _ops, _since in (("Sqrt Exp Log Reciprocal Floor Ceil", 6), ("Round", 11), ("Erf", 9),
                     ("Sin Cos", 7), ("Softplus", 1)):
    register(_ops, _since, infer=infer_same(FLOATS), fold=fold_unary, lower=lower_plain, stream=stream)
register("Mish", 18, infer=infer_same(FLOATS), fold=fold_unary, lower=lower_activation, stream=stream)
register("Elu Selu HardSigmoid", 6, infer=infer_same(FLOATS), fold=fold_activation, lower=lower_activation,
         stream=stream)
register("HardSwish", 14, infer=infer_same(FLOATS), fold=fold_activation, lower=lower_activation, stream=stream)
register("Gelu", 20, infer=infer_gelu, fold=fold_activation, lower=lower_activation, stream=stream)
register("Abs", 6, infer=infer_same(NUMERIC), fold=fold_numeric, lower=lower_plain, stream=stream, symbolic=True)
register("Sign", 9, infer=infer_same(NUMERIC), fold=fold_numeric, lower=lower_plain, stream=stream, symbolic=True)
register("Pow", 7, infer=infer_pow, fold=fold_pow, lower=lower_pow, stream=stream)
register("Clip", 6, infer=infer_clip, fold=fold_clip, lower=lower_clip, stream=stream)
register("Max Min", 6, infer=infer_same(NUMERIC), fold=fold_numeric, lower=lower_variadic, stream=stream,
         symbolic=True)
register("Sum", 6, infer=infer_same(FLOATS), fold=fold_numeric, lower=lower_variadic, stream=stream)  # float only
register("Mean", 6, infer=infer_same(FLOATS), fold=fold_mean, lower=lower_variadic, stream=stream)
