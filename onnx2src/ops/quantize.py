"""Quantization: QuantizeLinear and DequantizeLinear (opsets 10, 13, 19, 21, 23), and
DynamicQuantizeLinear, MatMulInteger and ConvInteger (the ops onnxruntime's quantizers write).

QuantizeLinear and DequantizeLinear lower to one `Elementwise` each (kinds `Quantize`,
`Dequantize`), their scale and zero point broadcast as the spec says:
  per tensor  a scalar (or one-element) scale and zero point;
  per axis    1-D [x.shape[axis]], read as [C, 1, ..., 1] (a View or a reshaped constant);
  blocked     (opset 21+, block_size B) x.shape with x.shape[axis] / B blocks along axis: x is
              viewed as [..., L / B, B, ...] and the parameters as [..., L / B, 1, ...] (only when
              B divides L; onnx2src refuses a partial last block).
    Quantize    y = saturate(round_half_even(x / scale) + zero_point), clamped in float before
                the conversion (as onnxruntime's kernel does; NaN gives the type's lowest value);
    Dequantize  y = (float)((int32)x - (int32)zero_point) * scale, the subtraction exact in
                integers, then one float rounding of the product: what onnxruntime computes.
A DequantizeLinear of a constant 8- or 16-bit tensor (a quantized weight) is not folded: the
weight stays int8 / uint8 (a quarter of the float bytes) in the generated code and is
dequantized when the model runs. A 32-bit one (a quantized bias) folds: nothing to save.

DynamicQuantizeLinear computes its uint8 scale and zero point at run time: two `Reduce` nodes
(min, max), then scale = (max(x_max, 0) - min(x_min, 0)) / 255 (1 when both are 0, as
onnxruntime has it), zero point = saturate(round(-min(x_min, 0) / scale)) (a `Quantize` without
zero point), and y a `Quantize` of x.

MatMulInteger and ConvInteger compute in exact integer arithmetic: each operand is widened to
int32 with its zero point subtracted (`Elementwise` kind `SubWide`, or a `Cast` without zero
point), then the int32 product runs on the existing Gemm / Conv lowering (im2col, packed matrix
kernel). Float would be exact only while every sum stays below 2^24, which a 255 x 255 product
exceeds after 258 terms; int32 holds K up to 33,000 such products. The widened weights are
computed at run time, so the weights stay int8 in the generated code.
"""
import numpy as np

from ..dims import is_static
from ..ir import CompileError, DType, Node, Value, dtype_from_onnx, BY_NUMPY
from ..loops import broadcast_view, contiguous, nest
from . import axis_of, ir, refuse, register, set_output, stream_same
from .conv import lower_conv, geometry, stream as stream_conv
from .gemm import _matmul_shapes, lower_matmul, stream_matmul
from .reduce import reduce_node

QUANTIZED = ("int8", "uint8", "int16", "uint16")     # QuantizeLinear's outputs
DEQUANTIZED = QUANTIZED + ("int32",)                 # DequantizeLinear's inputs
INT32 = BY_NUMPY[np.dtype(np.int32)]
UINT8 = BY_NUMPY[np.dtype(np.uint8)]
FLOAT = BY_NUMPY[np.dtype(np.float32)]


def _limits(dtype: DType):
    info = np.iinfo(dtype.numpy)
    return float(info.min), float(info.max)


# -- QuantizeLinear / DequantizeLinear: types and the shape of the parameters ---------------------

def _layout(node, x, scale, zero_point):
    """("tensor" | "axis" | "block", axis, block_size) of the node's scale and zero point."""
    block = int(node.attrs.get("block_size", 0)) if node.version >= 21 else 0
    per_tensor = scale.rank <= 1 and all(is_static(d) and d == 1 for d in scale.shape)
    axis = 0
    if node.version >= 13 and (block or not per_tensor):  # the axis matters (and is checked) only then
        axis = axis_of(node, int(node.attrs.get("axis", 1)), x.rank)
    for v, what in ((scale, "scale"), (zero_point, "zero point")):
        if v is not None and v.rank > 1 and block == 0:
            raise CompileError(f"the {what} must be a scalar or 1-D (shape {list(v.shape)})", node)
    one = lambda v: all(is_static(d) and d == 1 for d in v.shape)  # a scalar, [1], [1, 1] ...
    if zero_point is not None and tuple(zero_point.shape) != tuple(scale.shape) and not (
            one(zero_point) and one(scale) and not block):
        raise CompileError(f"the zero point's shape {list(zero_point.shape)} differs from the "
                           f"scale's {list(scale.shape)}", node)
    if block:
        if block < 0:
            raise CompileError(f"block_size {block} is negative", node)
        length = x.shape[axis]
        if scale.rank != x.rank or not is_static(length):
            raise CompileError(f"blocked quantization needs a scale of x's rank and a known size "
                               f"along axis {axis}", node)
        if length % block:
            raise CompileError(f"block_size {block} does not divide x's size {length} along axis "
                               f"{axis} (a partial last block is not supported)", node)
        want = tuple(x.shape[:axis]) + (length // block,) + tuple(x.shape[axis + 1:])
        if tuple(scale.shape) != want:
            raise CompileError(f"the scale's shape {list(scale.shape)} is not {list(want)} "
                               f"(block_size {block} along axis {axis})", node)
        return "block", axis, block
    if per_tensor:
        return "tensor", axis, 0
    if node.version < 13:
        raise CompileError(f"opset {node.version} takes a scalar scale (shape {list(scale.shape)})", node)
    if scale.shape[0] != x.shape[axis]:
        raise CompileError(f"the scale has {scale.shape[0]} elements, x has {x.shape[axis]} along "
                           f"axis {axis}", node)
    return "axis", axis, 0


def _check_scale(node, x, scale, what):
    if scale.dtype.name != "float":
        raise CompileError(f"a scale of type {scale.dtype.name} is not supported (float)", node)
    if node.version >= 19 and what == "x" and scale.dtype != x.dtype:
        raise CompileError(f"the scale's type {scale.dtype.name} differs from x's {x.dtype.name}", node)


def infer_quantize(node, graph):
    x, scale, zero_point = node.input(0), node.input(1), node.input(2)
    if x.dtype.name != "float":
        raise CompileError(f"QuantizeLinear of {x.dtype.name} is not supported (float)", node)
    _check_scale(node, x, scale, "x")
    precision = int(node.attrs.get("precision", 0))
    if precision and dtype_from_onnx(precision, "precision", node) != x.dtype:
        raise CompileError("a precision other than x's type is not supported", node)
    if zero_point is not None:
        out = zero_point.dtype
    elif node.attrs.get("output_dtype", 0):
        out = dtype_from_onnx(node.attrs["output_dtype"], "output_dtype", node)
    else:
        out = UINT8
    if out.name not in QUANTIZED:
        raise CompileError(f"quantizing to {out.name} is not supported ({', '.join(QUANTIZED)})", node)
    _layout(node, x, scale, zero_point)
    set_output(node, 0, out, x.shape)


def infer_dequantize(node, graph):
    x, scale, zero_point = node.input(0), node.input(1), node.input(2)
    if x.dtype.name not in DEQUANTIZED:
        raise CompileError(f"DequantizeLinear of {x.dtype.name} is not supported "
                           f"({', '.join(DEQUANTIZED)})", node)
    if zero_point is not None and zero_point.dtype != x.dtype:
        raise CompileError(f"the zero point's type {zero_point.dtype.name} differs from x's "
                           f"{x.dtype.name}", node)
    _check_scale(node, x, scale, "scale")
    out = scale.dtype
    if node.attrs.get("output_dtype", 0):
        out = dtype_from_onnx(node.attrs["output_dtype"], "output_dtype", node)
        if out != scale.dtype:
            raise CompileError(f"output_dtype {out.name} other than the scale's type "
                               f"{scale.dtype.name} is not supported", node)
    _layout(node, x, scale, zero_point)
    set_output(node, 0, out, x.shape)


# -- compile-time evaluation (the reference semantics) --------------------------------------------

def _broadcast_params(node, x, *params):
    """The parameters reshaped (blocked: repeated) to broadcast against x with NumPy."""
    kind, axis, block = _layout(node, node.input(0), node.input(1), node.input(2))
    out = []
    for p in params:
        if p is None:
            out.append(None)
        elif kind == "tensor":
            out.append(p.reshape(()))
        elif kind == "axis":
            out.append(p.reshape((-1,) + (1,) * (x.ndim - axis - 1)))
        else:
            out.append(np.repeat(p, block, axis=axis))
    return out


def quantize(x, scale, zero_point, dtype):
    """saturate(round_half_even(x / scale) + zero_point) in x's float type."""
    lo, hi = _limits(dtype)
    q = np.rint(x / scale)
    if zero_point is not None:
        q = q + zero_point.astype(x.dtype)
    with np.errstate(invalid="ignore"):
        return np.fmin(np.fmax(q, lo), hi).astype(dtype.numpy)


def fold_quantize(node, x, scale, zero_point=None):
    scale, zero_point = _broadcast_params(node, x, scale, zero_point)
    return [quantize(x, scale, zero_point, node.output(0).dtype)]


def fold_dequantize(node, x, scale, zero_point=None):
    """Only 32-bit data folds (a quantized bias: no bytes to save); an 8- or 16-bit constant is a
    quantized weight that stays quantized in the generated code (passes/fold_int8_weights.py
    folds the int8 weights the int8 matrix kernels read)."""
    if x.dtype.itemsize < node.output(0).dtype.numpy.itemsize:
        return None
    return [dequantize(node, x, scale, zero_point)]


def dequantize(node, x, scale, zero_point=None):
    """DequantizeLinear `node` of the arrays x, scale and zero point, as onnxruntime computes it."""
    scale, zero_point = _broadcast_params(node, x, scale, zero_point)
    wide = np.int64 if x.dtype.itemsize >= 4 else np.int32
    q = x.astype(wide) - (zero_point.astype(wide) if zero_point is not None else 0)
    return q.astype(scale.dtype) * scale


# -- lowering ------------------------------------------------------------------------------------

def _reshaped(node, v, shape, what, nodes):
    """v with another shape (same elements): a reshaped constant, or a View."""
    shape = tuple(shape)
    if tuple(v.shape) == shape:
        return v
    if v.is_constant:
        return Value(f"{node.name}_{what}", v.dtype, shape, v.data.reshape(shape))
    out = Value(f"{node.name}_{what}", v.dtype, shape)
    nodes.append(ir("View", node, [v], [out]))
    return out


def _lower_linear(node, kind, **attrs):
    """One Elementwise `kind` over (x, scale[, zero point]) broadcast by the node's layout."""
    x, scale, zero_point, y = node.input(0), node.input(1), node.input(2), node.output(0)
    layout, axis, block = _layout(node, x, scale, zero_point)
    nodes, params = [], [p for p in (scale, zero_point) if p is not None]
    names = ["scale", "zero_point"]
    if layout == "axis":
        shape = (x.shape[axis],) + (1,) * (x.rank - axis - 1)
        params = [_reshaped(node, p, shape, n, nodes) for p, n in zip(params, names)]
    target = y
    if layout == "block":
        split = tuple(x.shape[:axis]) + (x.shape[axis] // block, block) + tuple(x.shape[axis + 1:])
        pshape = split[:axis + 1] + (1,) + split[axis + 2:]
        x = _reshaped(node, x, split, "x_blocks", nodes)
        params = [_reshaped(node, p, pshape, n + "_blocks", nodes) for p, n in zip(params, names)]
        target = Value(f"{node.name}_y_blocks", y.dtype, split)
    out = target.shape
    walk = nest(out, contiguous(out), *[broadcast_view(v.shape, out) for v in [x] + params])
    nodes.append(ir("Elementwise", node, [x] + params, [target], kind=kind, nest=walk, **attrs))
    if target is not y:
        nodes.append(ir("View", node, [target], [y]))
    return nodes


def lower_quantize(node, graph):
    lo, hi = _limits(node.output(0).dtype)
    return _lower_linear(node, "Quantize", min=lo, max=hi)


def lower_dequantize(node, graph):
    return _lower_linear(node, "Dequantize")


# -- DynamicQuantizeLinear ------------------------------------------------------------------------

def infer_dynamic(node, graph):
    x = node.input(0)
    if x.dtype.name != "float":
        raise CompileError(f"DynamicQuantizeLinear of {x.dtype.name} is not supported (float)", node)
    set_output(node, 0, UINT8, x.shape)
    set_output(node, 1, FLOAT, ())
    set_output(node, 2, UINT8, ())


def dynamic_parameters(x):
    """The spec's (scale, zero point) of float32 data x, as onnxruntime computes them."""
    lo = np.float32(min(np.min(x), 0)) if x.size else np.float32(0)
    hi = np.float32(max(np.max(x), 0)) if x.size else np.float32(0)
    scale = np.float32(1) if hi == lo else np.float32((hi - lo) / np.float32(255))
    return scale, quantize(-lo, scale, None, UINT8)


def fold_dynamic(node, x):
    scale, zero_point = dynamic_parameters(x)
    return [quantize(x, scale, zero_point, UINT8), np.asarray(scale, np.float32), np.asarray(zero_point)]


def _scalar_ir(node, kind, inputs, output, **attrs):
    return ir("Elementwise", node, inputs, [output], kind=kind, nest=nest([], (0, []), *[(0, [])] * len(inputs)),
              **attrs)


def lower_dynamic(node, graph):
    x, y = node.input(0), node.output(0)
    name = node.name
    scale = node.output(1) or Value(f"{name}_scale", FLOAT, ())
    zero_point = node.output(2) or Value(f"{name}_zero_point", UINT8, ())
    x_min, x_max = Value(f"{name}_min", FLOAT, ()), Value(f"{name}_max", FLOAT, ())
    low, neg_low = Value(f"{name}_low", FLOAT, ()), Value(f"{name}_neg_low", FLOAT, ())
    zero = Value(f"{name}_zero", FLOAT, (), np.zeros((), np.float32))
    axes = list(range(x.rank))
    src = lambda out: Node(node.op_type, name, [x], [out], {}, node.version, node.domain)
    nodes = [reduce_node(src(x_min), "Min", axes), reduce_node(src(x_max), "Max", axes),
             _scalar_ir(node, "Min", [x_min, zero], low),
             _scalar_ir(node, "DynamicScale", [low, x_max], scale),
             _scalar_ir(node, "Neg", [low], neg_low),
             _scalar_ir(node, "Quantize", [neg_low, scale], zero_point, min=0.0, max=255.0)]
    if y is not None:
        walk = nest(x.shape, contiguous(x.shape), contiguous(x.shape), (0, [0] * x.rank), (0, [0] * x.rank))
        nodes.append(ir("Elementwise", node, [x, scale, zero_point], [y], kind="Quantize", nest=walk,
                        min=0.0, max=255.0))
    return nodes


# -- MatMulInteger / ConvInteger: exact int32 arithmetic on the existing lowerings ----------------

def _check_int8(node, v, what):
    if v.dtype.name not in ("int8", "uint8"):
        raise CompileError(f"{what} of type {v.dtype.name} is not supported (int8, uint8)", node)


def _widened(node, v, zero_point, zp_shape, what, nodes):
    """int32 (v - zero_point), zero_point reshaped to zp_shape to broadcast over v."""
    out = Value(f"{node.name}_{what}", INT32, v.shape)
    walk_views = [contiguous(v.shape)]
    inputs = [v]
    if zero_point is not None:
        if zero_point.dtype != v.dtype:
            raise CompileError(f"the zero point of {what} has type {zero_point.dtype.name}, not "
                               f"{v.dtype.name}", node)
        zp = _reshaped(node, zero_point, zp_shape, f"{what}_zero_point", nodes)
        inputs.append(zp)
        walk_views.append(broadcast_view(zp.shape, v.shape))
    walk = nest(v.shape, contiguous(v.shape), *walk_views)
    kind = "SubWide" if zero_point is not None else "Cast"
    nodes.append(ir("Elementwise", node, inputs, [out], kind=kind, nest=walk))
    return out


def _per(node, zero_point, count, what):
    """The zero point's shape to broadcast: () for one value, else [count] as the spec allows."""
    if zero_point is None:
        return None
    size = int(np.prod([d for d in zero_point.shape])) if all(is_static(d) for d in zero_point.shape) else None
    if size == 1:
        return ()
    if zero_point.rank == 1 and zero_point.shape[0] == count:
        return (count,)
    raise CompileError(f"a zero point of shape {list(zero_point.shape)} for {what} is not supported "
                       f"(a scalar, or 1-D [{count}])", node)


def infer_matmul_integer(node, graph):
    a, b = node.input(0), node.input(1)
    _check_int8(node, a, "A")
    _check_int8(node, b, "B")
    sa, sb, batch = _matmul_shapes(Node(node.op_type, node.name, [a, b], []))
    _per(node, node.input(2), sa[-2], "A (per row)")
    _per(node, node.input(3), sb[-1], "B (per column)")
    shape = batch + ((sa[-2],) if a.rank > 1 else ()) + ((sb[-1],) if b.rank > 1 else ())
    set_output(node, 0, INT32, shape)


def fold_matmul_integer(node, a, b, a_zero_point=None, b_zero_point=None):
    a32 = a.astype(np.int32) - (0 if a_zero_point is None else a_zero_point.astype(np.int32).reshape(
        (-1, 1) if a_zero_point.size > 1 else ()))
    b32 = b.astype(np.int32) - (0 if b_zero_point is None else b_zero_point.astype(np.int32).reshape(
        (-1,) if b_zero_point.size > 1 else ()))
    return [np.matmul(a32, b32).astype(np.int32)]


def lower_matmul_integer(node, graph):
    a, b, y = node.input(0), node.input(1), node.output(0)
    sa, sb, _ = _matmul_shapes(Node(node.op_type, node.name, [a, b], []))
    nodes = []
    a_zp = _per(node, node.input(2), sa[-2], "A (per row)")
    b_zp = _per(node, node.input(3), sb[-1], "B (per column)")
    a32 = _widened(node, a, node.input(2), a_zp if a_zp == () else (sa[-2], 1), "A", nodes)
    b32 = _widened(node, b, node.input(3), b_zp, "B", nodes)
    return nodes + lower_matmul(Node(node.op_type, node.name, [a32, b32], [y], {}, node.version), graph)


def _conv_node(node, x, w):
    return Node(node.op_type, node.name, [x, w], node.outputs, dict(node.attrs), node.version)


def infer_conv_integer(node, graph):
    x, w = node.input(0), node.input(1)
    _check_int8(node, x, "x")
    _check_int8(node, w, "w")
    _per(node, node.input(2), 1, "x")
    _per(node, node.input(3), w.shape[0], "w (per output channel)")
    geo = geometry(_conv_node(node, Value(x.name, INT32, x.shape), Value(w.name, INT32, w.shape)), transposed=False)
    set_output(node, 0, INT32, [x.shape[0], geo.out_channels] + geo.out_shape)


def lower_conv_integer(node, graph):
    x, w = node.input(0), node.input(1)
    nodes = []
    w_zp = _per(node, node.input(3), w.shape[0], "w (per output channel)")
    x32 = _widened(node, x, node.input(2), (), "x", nodes)
    w32 = _widened(node, w, node.input(3), w_zp if w_zp == () else (w.shape[0],) + (1,) * (w.rank - 1),
                   "w", nodes)
    return nodes + lower_conv(_conv_node(node, x32, w32), graph)


# stream_same: x's time steps stay apart (the scale and zero point must not be per-step; a block
# never lies along the time axis, whose size is symbolic)
register("QuantizeLinear", 10, infer=infer_quantize, fold=fold_quantize, lower=lower_quantize, stream=stream_same)
register("DequantizeLinear", 10, infer=infer_dequantize, fold=fold_dequantize, lower=lower_dequantize,
         stream=stream_same)
def stream_dynamic(node, classes, time):
    raise refuse(node, "computes one scale and zero point from all of its input's time steps, so a "
                       "chunk's would differ from the whole sequence's")


def stream_matmul_integer(node, classes, time):
    """MatMul's rule on A and B; the zero points must be time-independent."""
    if any(isinstance(c, int) for c in classes[2:]):
        raise refuse(node, "takes a per-step zero point")
    return stream_matmul(Node(node.op_type, node.name, node.inputs[:2], node.outputs, node.attrs), classes[:2], time)


register("DynamicQuantizeLinear", 11, infer=infer_dynamic, fold=fold_dynamic, lower=lower_dynamic,
         stream=stream_dynamic)
register("MatMulInteger", 10, infer=infer_matmul_integer, fold=fold_matmul_integer, lower=lower_matmul_integer,
         stream=stream_matmul_integer)
register("ConvInteger", 10, infer=infer_conv_integer, lower=lower_conv_integer, stream=stream_conv)
