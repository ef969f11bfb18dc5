"""MaxPool (opsets 1-22, with the optional Indices output), AveragePool (1-22), GlobalMaxPool
and GlobalAveragePool, over any number of spatial axes: X is [N, C, D1, ..., Dk].

All lower to the IR op `Pool`. Lowering decides every size: per spatial axis the input and
output sizes (symbolic along batch or time axes), kernel, stride, dilation, the pad before the
first window, and for AveragePool the range of positions the divisor counts (the declared pads
too when count_include_pad is 1). Output sizes follow onnxruntime:
  floor mode   out = floor((D + pads - window) / stride) + 1
  ceil mode    the same rounded up, less a last window that would start in the end padding
  SAME_*       out = ceil(D / stride), pads (out - 1) * stride + window - D, the odd one at the
               end (SAME_UPPER) or the start (SAME_LOWER)
where window = (kernel - 1) * dilation + 1. When a symbolic input may be shorter than the window
the first window is a partial one (onnxruntime does that too, when it is short by less than the
stride). Max is the largest element of the window that is not NaN (NaN if all are), the first
such for Indices, as onnxruntime's kernel with Indices computes it (its kernels without Indices
differ on -inf: they give the type's lowest finite value, and on NaN); a window holding only
padding gives -inf (the lowest integer) and index -1 of its plane. Average divides by the number
of counted positions (0 when there are none).

Refused, one line each: auto_pad with dilations (onnxruntime ignores the dilation in the pads,
the spec does not) or with ceil_mode (onnxruntime rounds VALID up, the spec does not); pads that
are negative or not smaller than the kernel (onnxruntime refuses them); SAME padding that would
be negative (a kernel smaller than the stride).
"""
import numpy as np

from ..dims import Func, ceil_div, floor_div, is_static, maximum, minimum, product
from ..ir import BY_NUMPY, CompileError
from ..loops import strides as row_major
from . import ir, refuse, register, set_output, stream_same

AUTO_PADS = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")
FLOATS = ("float", "double")
MAXPOOL_TYPES = {1: FLOATS, 12: FLOATS + ("int8", "uint8")}
LIMIT = 2**31  # kernels, strides, dilations and pads at or beyond this are refused


def _check_type(node, x):
    if node.op_type == "MaxPool" and node.version >= 12:
        allowed = MAXPOOL_TYPES[12]
    else:
        allowed = FLOATS
    if x.dtype.name not in allowed:
        raise CompileError(f"{node.op_type} on {x.dtype.name} is not supported (it takes "
                           f"{', '.join(allowed)})", node)
    if x.rank < 3:
        raise CompileError(f"the input must be [N, C, spatial...], not rank {x.rank}", node)


def _ints(node, name, n, default, least):
    values = [int(v) for v in node.attrs.get(name, [default] * n)]
    if any(abs(v) >= LIMIT for v in values):
        raise CompileError(f"{name} {values} are beyond 2^31", node)
    if len(values) != n:
        raise CompileError(f"{name} has {len(values)} values for {n} spatial axes", node)
    if any(v < least for v in values):
        raise CompileError(f"{name} {values} must be at least {least}", node)
    return values


def _flag(node, name):
    value = int(node.attrs.get(name, 0))
    if value not in (0, 1):
        raise CompileError(f"{name} must be 0 or 1, not {value}", node)
    return value


def plan(node, x):
    """Per spatial axis: (in, out, kernel, stride, dilation, pad begin, pad end)."""
    spatial = x.shape[2:]
    r = len(spatial)
    if "kernel_shape" not in node.attrs:
        raise CompileError("kernel_shape is missing", node)
    kernel = _ints(node, "kernel_shape", r, 1, 1)
    stride = _ints(node, "strides", r, 1, 1)
    dilation = _ints(node, "dilations", r, 1, 1)
    auto_pad = node.attrs.get("auto_pad", "NOTSET")
    if auto_pad not in AUTO_PADS:
        raise CompileError(f'auto_pad "{auto_pad}" is not one of {", ".join(AUTO_PADS)}', node)
    ceil = _flag(node, "ceil_mode")
    if auto_pad != "NOTSET" and any(d != 1 for d in dilation):
        raise CompileError(f"auto_pad {auto_pad} with dilations {dilation} is not supported "
                           f"(onnxruntime and the spec compute its pads differently)", node)
    if auto_pad != "NOTSET" and ceil:
        raise CompileError(f"auto_pad {auto_pad} with ceil_mode 1 is not supported "
                           f"(onnxruntime and the spec size its output differently)", node)
    pads = [0] * (2 * r)
    if auto_pad == "NOTSET":
        pads = _ints(node, "pads", 2 * r, 0, 0) if "pads" in node.attrs else pads
        for i, k in enumerate(kernel):
            if pads[i] >= k or pads[i + r] >= k:
                raise CompileError(f"pads {pads} must be smaller than the kernel {kernel}", node)
    axes = []
    for i, (d, k, s, dil) in enumerate(zip(spatial, kernel, stride, dilation)):
        window = (k - 1) * dil + 1
        try:
            if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
                out = ceil_div(d, s)
                total = (out - 1) * s + window - d
                if window < s and not (is_static(total) and total >= 0):
                    raise CompileError(f"auto_pad {auto_pad} would need a negative pad on spatial axis {i} "
                                       f"(kernel {k} is smaller than stride {s})", node)
                # total >= window - s >= 0 (out * s >= d), which dims can't prove by itself
                half = floor_div(total, 2) if is_static(total) else Func("floordiv", (total, 2)).as_dim()
                rest = total - half
                begin, end = (half, rest) if auto_pad == "SAME_UPPER" else (rest, half)
            else:
                begin, end = pads[i], pads[i + r]
                room = d + begin + end - window
                if is_static(room) and room < 0:
                    raise CompileError(f"the window ({window}) is larger than the padded input "
                                       f"({d + begin + end}) on spatial axis {i}", node)
                room = maximum(room, 0)
                if ceil:  # rounded up, but the last window must start before the end padding
                    out = floor_div(minimum(room + s - 1, d + begin - 1), s) + 1
                else:
                    out = floor_div(room, s) + 1
        except ValueError as e:
            raise CompileError(f"cannot size the output of spatial axis {i}: {e}", node)
        axes.append((d, out, k, s, dil, begin, end))
    return axes


def infer(node, graph):
    x = node.input(0)
    _check_type(node, x)
    if node.op_type.startswith("Global"):
        out = list(x.shape[:2]) + [1] * (x.rank - 2)
    else:
        out = list(x.shape[:2]) + [a[1] for a in plan(node, x)]
        _flag(node, "count_include_pad")
        _flag(node, "storage_order")
    set_output(node, 0, x.dtype, out)
    set_output(node, 1, BY_NUMPY[np.dtype(np.int64)], out)


def _lowest(dtype):
    """Max's value over nothing but padding; also NumPy's pad value."""
    kind = dtype.numpy
    return -float("inf") if kind.kind == "f" else float(np.iinfo(kind).min)


def lower(node, graph):
    x, y = node.input(0), node.output(0)
    if y is None:  # nothing reads Y (dead-code elimination dropped it), only Indices
        raise CompileError("a MaxPool whose Indices are used but not its output Y is not supported", node)
    kind = "max" if "Max" in node.op_type else "avg"
    spatial = list(x.shape[2:])
    r = len(spatial)
    common = dict(kind=kind, outer=x.shape[0] * x.shape[1], in_plane=product(spatial),
                  lowest=_lowest(x.dtype), axes=list(range(2, 2 + r)), window_axes=list(range(-r, 0)))
    if node.op_type.startswith("Global"):
        return [ir("Pool", node, [x], [y], global_pool=True, **common)]

    axes = plan(node, x)
    outs = [a[1] for a in axes]
    window = [(k - 1) * dil + 1 for _, _, k, _, dil, _, _ in axes]
    begin, end = [a[5] for a in axes], [a[6] for a in axes]
    cip = bool(node.attrs.get("count_include_pad", 0))
    indices = node.output(1) is not None
    column = bool(node.attrs.get("storage_order", 0))  # Indices column-major within each plane
    index_strides = row_major(spatial[::-1])[::-1] if column else row_major(spatial)
    attrs = dict(global_pool=False, out_plane=product(outs), in_dims=spatial, out_dims=outs,
                 in_strides=row_major(spatial), out_strides=row_major(outs), kernel=[a[2] for a in axes],
                 strides=[a[3] for a in axes], dilations=[a[4] for a in axes], window=window,
                 pad_begin=begin, count_lo=[-b if cip else 0 for b in begin],
                 count_hi=[d + e if cip else d for d, e in zip(spatial, end)],
                 count_include_pad=cip, indices=indices, column_major=column,
                 index_strides=index_strides, **common)
    # NumPy pads the input once: the pads, and room at the end for the windows of ceil mode or
    # of a symbolic input shorter than the window (the result is cut to the output size)
    room = []
    for (d, out, _, s, _, b, e), w in zip(axes, window):
        if is_static(d):
            room.append(max(0, (out - 1) * s + w - (d + b + e)))
        elif all(is_static(p) for p in (b, e)):  # any size: the last window starts < s past the end
            room.append(s - 1 + max(w - 1 - b - e, 0))
        else:  # SAME pads of a symbolic axis: they fit the windows exactly
            room.append(0)
    attrs.update(pads=[[b, e] for b, e in zip(begin, end)], room=[[0, m] for m in room],
                 padded=[[0, 0], [0, 0]] + [[b, e + m] for b, e, m in zip(begin, end, room)],
                 any_pad=any(not (is_static(p) and p == 0) for p in begin + end + room),
                 any_room=any(room))
    return [ir("Pool", node, [x], node.outputs, **attrs)]


def stream(node, classes, time):
    """Per-step along the batch axis, or along a spatial axis the window does not slide over:
    kernel 1, stride 1, no padding. Not with Indices, which count positions from the start."""
    k = stream_same(node, classes, time)[0]
    if node.output(1) is not None:
        raise refuse(node, "gives Indices, which count positions from the start of the sequence")
    if k == 0:
        return [k]
    if node.op_type.startswith("Global"):
        raise refuse(node, "pools over the time axis")
    _, _, kernel, stride, _, begin, end = plan(node, node.input(0))[k - 2]
    if kernel != 1 or stride != 1 or not all(is_static(p) and p == 0 for p in (begin, end)):
        raise refuse(node, f"slides along the time axis (kernel {kernel}, stride {stride}, pads {begin} and {end}): "
                           f"each output step reads its neighbours")
    return [k]


register("MaxPool AveragePool GlobalMaxPool GlobalAveragePool", 1, infer=infer, lower=lower, stream=stream)
