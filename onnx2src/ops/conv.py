"""Conv and ConvTranspose (opsets 1, 11 and 22) over 1 to 3 spatial axes, lowered onto the
packed matrix kernel of templates/c/kernels.c.j2.

A Conv with `groups` groups of cpg input and opg output channels, S output positions and K
kernel taps per input channel computes

    Y[n][g*opg + o][s] = B[g*opg + o] + sum_{c, k} W[g*opg + o][c][k] * X[n][g*cpg + c][s*stride + k*dilation - pad]

An `Im2col` node writes cols, the X element under tap k of position s for each (c, k) (0 where
the tap falls in the padding; a row of positions per (c, k), copied between the zeros of the
padding), and one IR `Gemm`, batched over (n, g), does the sums in one of two orientations:

  by position  YT[n][g][s][o] = sum_j cols[j][s] * WT[g][j][o] (+ B[o]), then copied into
               NCHW by `ChannelsFirst` (a View when S or opg is 1). The weights are the Gemm's right operand, so
               passes/pack_weights packs them into panels once, at compile time, and the
               positions are the kernel's rows: any number of them runs at full width, which
               is what a streaming model's one or four frames need. The transposing copy costs
               opg*S; cols is stored [c*K + k][s][g][n] so that Im2col writes rows of positions
               and the Gemm reads it transposed (NumPy: `cols.T`, a view).
  by channel   Y[n][g][o][s] = sum_j W[g][o][j] * cols[n][g][j][s] (+ B[o]), NCHW as it
               comes; the Gemm packs cols at run time (cpg*K*S) and wastes most of a 16-wide
               panel when S is small. Taken when there are at least 16 positions at every
               size of the symbolic dims, and the columns are no more than the output channels
               (a first layer on one channel), or the convolution is pointwise (1x1, stride 1,
               no padding: cols is X itself, no copy) or grouped (each group's weights read in
               place), but not for int8 weights (Value.int8), which the int8 kernel reads as B.
Several groups in the by-position form share one Gemm whose constant weights are one B per
group (passes/pack_weights packs each at compile time); the bias is then added by an
Elementwise Add.

Depthwise convolutions (one input channel per group, any channel multiplier) do K-long dot
products, no matrix product: they lower to `DepthwiseConv`, direct loops that add a row of taps
(the last axis's) per vectorized pass over each output row.

ConvTranspose is the adjoint: XT[n][g][s][c] = X transposed, cols = XT x W[g] ([cpg][opg*K],
W's own layout, packed at compile time), then `Col2im` adds each column into the output positions
s*stride + k*dilation - pad; depthwise ones lower to DepthwiseConv with `transposed` set (one
multiply-add pass per tap).

Output sizes follow the spec (auto_pad NOTSET, SAME_UPPER, SAME_LOWER, VALID; ConvTranspose's
output_padding and output_shape as onnxruntime takes them); along a symbolic axis they are dims
(ceil/floor divisions, clamped at 0 where the input may be shorter than the kernel). The NumPy
templates do the same with sliding windows of the padded input and np.matmul.
"""
from dataclasses import dataclass
from typing import List, Optional

import numpy as np

from ..dims import ceil_div, floor_div, interval, is_static, maximum, minimum, product
from ..ir import CompileError, Value
from ..loops import PANEL, broadcast_view, contiguous, nest, strides
from . import ir, refuse, register, set_output, stream_same

AUTO_PADS = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")
FLOATS = ("float", "double")
TILE = 16  # channels per step of the transposing copy after a Gemm


@dataclass
class Geometry:
    """Everything about one Conv / ConvTranspose node that lowering needs, checked."""
    transposed: bool
    groups: int
    channels: int          # input channels C
    out_channels: int      # output channels
    cpg: int               # input channels per group
    opg: int               # output channels per group
    kernel: List[int]
    strides: List[int]
    dilations: List[int]
    pads: list             # begin of each spatial axis (dims for SAME on a symbolic axis)
    pads_end: list
    in_shape: list         # spatial sizes of X
    out_shape: list        # spatial sizes of Y
    same: Optional[str]    # "SAME_UPPER" / "SAME_LOWER" when auto_pad set the pads, else None
    output_padding: List[int]

    @property
    def taps(self) -> int:
        return int(np.prod(self.kernel))

    @property
    def spans(self) -> List[int]:
        """Extent of the dilated kernel along each axis."""
        return [d * (k - 1) + 1 for k, d in zip(self.kernel, self.dilations)]

    @property
    def depthwise(self) -> bool:
        return self.cpg == 1 and self.groups > 1

    @property
    def pointwise(self) -> bool:
        return (not self.transposed and self.taps == 1 and all(s == 1 for s in self.strides)
                and all(is_static(p) and p == 0 for p in self.pads + self.pads_end))


def _ints(node, name, default, count, least):
    values = node.attrs.get(name)
    values = list(default) if values is None else [int(v) for v in values]
    if len(values) != count:
        raise CompileError(f"{name} has {len(values)} values, expected {count}", node)
    if any(v < least for v in values):
        raise CompileError(f"{name} {values} must be at least {least}", node)
    return values


def geometry(node, transposed: bool) -> Geometry:
    x, w, b = node.input(0), node.input(1), node.input(2)
    # ConvInteger (ops/quantize.py) runs here on its operands widened to int32
    if x.dtype.name not in FLOATS and not (node.op_type == "ConvInteger" and x.dtype.name == "int32"):
        raise CompileError(f"{node.op_type} on {x.dtype.name} is not supported (float or double)", node)
    for v, what in ((w, "W"), (b, "B")):
        if v is not None and v.dtype != x.dtype:
            raise CompileError(f"{what} is {v.dtype.name} but X is {x.dtype.name}", node)
    if x.rank < 3:
        raise CompileError(f"X must have a batch, a channel and at least one spatial axis, "
                           f"not shape {list(x.shape)}", node)
    if w.rank != x.rank:
        raise CompileError(f"W has rank {w.rank} but X has rank {x.rank}", node)
    if not all(is_static(d) for d in w.shape) or not is_static(x.shape[1]):
        raise CompileError("the channel counts and the kernel size must be known at compile time", node)
    r = x.rank - 2
    if r > 3:
        raise CompileError(f"{node.op_type} over {r} spatial axes is not supported (at most 3)", node)
    kernel = [int(k) for k in w.shape[2:]]
    if any(k < 1 for k in kernel):
        raise CompileError(f"kernel {kernel} has an empty axis", node)
    if "kernel_shape" in node.attrs and [int(k) for k in node.attrs["kernel_shape"]] != kernel:
        raise CompileError(f"kernel_shape {list(node.attrs['kernel_shape'])} differs from W's "
                           f"spatial shape {kernel}", node)
    groups = int(node.attrs.get("group", 1))
    channels = int(x.shape[1])
    if groups < 1 or channels % groups:
        raise CompileError(f"group {groups} does not divide the {channels} input channels", node)
    cpg = channels // groups
    if transposed:
        if w.shape[0] != channels:
            raise CompileError(f"W has {w.shape[0]} input channels, X has {channels}", node)
        opg = int(w.shape[1])
    else:
        if w.shape[1] != cpg or w.shape[0] % groups:
            raise CompileError(f"W of shape {list(w.shape)} does not fit {channels} input "
                               f"channels in {groups} groups", node)
        opg = int(w.shape[0]) // groups
    if opg < 1 or cpg < 1:
        raise CompileError(f"W of shape {list(w.shape)} has no channels", node)
    out_channels = opg * groups
    if b is not None and (b.rank != 1 or b.shape[0] != out_channels):
        raise CompileError(f"B of shape {list(b.shape)} is not [{out_channels}]", node)

    stride = _ints(node, "strides", [1] * r, r, 1)
    dilation = _ints(node, "dilations", [1] * r, r, 1)
    pads = _ints(node, "pads", [0] * 2 * r, 2 * r, 0)
    auto_pad = node.attrs.get("auto_pad", "NOTSET")
    if auto_pad not in AUTO_PADS:
        raise CompileError(f"auto_pad {auto_pad!r} is not one of {', '.join(AUTO_PADS)}", node)
    if auto_pad == "VALID":
        pads = [0] * 2 * r
    in_shape = list(x.shape[2:])
    spans = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    geo = Geometry(transposed, groups, channels, out_channels, cpg, opg, kernel, stride, dilation,
                   pads[:r], pads[r:], in_shape, [], None, [0] * r)
    if transposed:
        _transposed_sizes(node, geo, auto_pad, spans)
    else:
        _conv_sizes(node, geo, auto_pad, spans)
    return geo


def _conv_sizes(node, geo, auto_pad, spans):
    same = auto_pad in ("SAME_UPPER", "SAME_LOWER")
    geo.same = auto_pad if same else None
    for a, (n, s, span) in enumerate(zip(geo.in_shape, geo.strides, spans)):
        if same:  # out = ceil(n / s); the padding the last window needs, split per auto_pad
            out = ceil_div(n, s)
            total = (out - 1) * s + span - n
            total = max(total, 0) if is_static(total) else maximum(total, 0)
            half = floor_div(total, 2)
            geo.pads[a] = half if auto_pad == "SAME_UPPER" else total - half
            geo.pads_end[a] = total - geo.pads[a]
        else:
            free = n + geo.pads[a] + geo.pads_end[a] - span  # room for the window to move
            if is_static(free):
                if free < 0:
                    raise CompileError(f"the kernel (extent {span} along spatial axis {a}) is larger "
                                       f"than the padded input ({free + span})", node)
                out = free // s + 1
            else:  # no windows at all when the input is shorter than the kernel
                out = floor_div(maximum(free + s, 0), s)
        geo.out_shape.append(out)


def _transposed_sizes(node, geo, auto_pad, spans):
    r = len(geo.kernel)
    geo.output_padding = _ints(node, "output_padding", [0] * r, r, 0)
    for a, (p, s, d) in enumerate(zip(geo.output_padding, geo.strides, geo.dilations)):
        if p >= max(s, d):
            raise CompileError(f"output_padding {geo.output_padding} must be below the stride "
                               f"or the dilation of its axis", node)
    shape = node.attrs.get("output_shape")
    if shape is not None:
        shape = [int(v) for v in shape]
        shape = shape[2:] if len(shape) == r + 2 else shape
        if len(shape) != r or any(v < 1 for v in shape):
            raise CompileError(f"output_shape {list(node.attrs['output_shape'])} is not {r} sizes", node)
    for a, (n, s, span, op) in enumerate(zip(geo.in_shape, geo.strides, spans, geo.output_padding)):
        full = s * (n - 1) + op + span          # every position some tap reaches, plus output_padding
        if shape is not None or auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            out = shape[a] if shape is not None else n * s
            total = full - out
            if not is_static(total):
                raise CompileError("output_shape on a symbolic spatial axis is not supported", node)
            if total < 0:  # a few more positions than the taps reach: they hold only the bias
                if -total >= s:  # (as onnxruntime; more would not fit the input size)
                    raise CompileError(f"output_shape {shape} does not fit the input size "
                                       f"{n} along spatial axis {a} (at most {full + s - 1})", node)
                geo.output_padding[a] -= total
                full, total = out, 0
            half = total // 2
            geo.pads[a] = half if auto_pad == "SAME_UPPER" else total - half
            geo.pads_end[a] = total - geo.pads[a]
        out = full - geo.pads[a] - geo.pads_end[a]
        if is_static(out) and out < 1:
            raise CompileError(f"the pads leave no output along spatial axis {a}", node)
        geo.out_shape.append(out)


# -- shape rules ------------------------------------------------------------------------------

def infer_conv(node, graph):
    geo = geometry(node, transposed=node.op_type == "ConvTranspose")
    x = node.input(0)
    set_output(node, 0, x.dtype, [x.shape[0], geo.out_channels] + geo.out_shape)


# -- compile-time evaluation (all inputs constant) ----------------------------------------------

def _windows(x, geo):
    """[N, C, *out, *kernel] view: the input under each tap of each output position."""
    r = len(geo.kernel)
    xp = np.pad(x, [(0, 0), (0, 0)] + [(int(p), int(e)) for p, e in zip(geo.pads, geo.pads_end)])
    v = np.lib.stride_tricks.sliding_window_view(xp, geo.spans, axis=tuple(range(2, 2 + r)))
    return v[(slice(None), slice(None)) + tuple(slice(None, None, s) for s in geo.strides)
             + tuple(slice(None, None, d) for d in geo.dilations)]


def fold_conv(node, x, w, b=None):
    geo = geometry(node, transposed=False)
    r, n = len(geo.kernel), x.shape[0]
    v = _windows(x, geo)                               # [N, C, *out, *k]
    out = v.shape[2:2 + r]
    v = v.reshape(n, geo.groups, geo.cpg, *out, *geo.kernel)
    v = np.moveaxis(v, 2, 2 + r).reshape(n, geo.groups, -1, geo.cpg * geo.taps)  # [N, G, S, CK]
    wg = w.reshape(geo.groups, geo.opg, geo.cpg * geo.taps)
    y = np.matmul(v, wg.transpose(0, 2, 1))            # [N, G, S, opg]
    y = np.moveaxis(y, 3, 2).reshape(n, geo.out_channels, *out)
    if b is not None:
        y = y + b.reshape(-1, *[1] * r)
    return [y.astype(x.dtype)]


def fold_conv_transpose(node, x, w, b=None):
    geo = geometry(node, transposed=True)
    r, n = len(geo.kernel), x.shape[0]
    full = [s * (i - 1) + sp + op for i, s, sp, op in
            zip(x.shape[2:], geo.strides, geo.spans, geo.output_padding)]
    y = np.zeros((n, geo.groups, geo.opg, *full), dtype=np.float64)
    xg = x.reshape(n, geo.groups, geo.cpg, *x.shape[2:])
    wg = w.reshape(geo.groups, geo.cpg, geo.opg, *geo.kernel)
    for k in np.ndindex(*geo.kernel):
        part = np.einsum("ngc...,gco->ngo...", xg, wg[(Ellipsis,) + k])
        where = tuple(slice(t * d, t * d + (i - 1) * s + 1, s)
                      for t, d, i, s in zip(k, geo.dilations, x.shape[2:], geo.strides))
        y[(slice(None),) * 3 + where] += part
    crop = tuple(slice(p, p + o) for p, o in zip(geo.pads, geo.out_shape))
    y = y.reshape(n, geo.out_channels, *full)[(slice(None), slice(None)) + crop]
    if b is not None:
        y = y + b.reshape(-1, *[1] * r)
    return [y.astype(x.dtype)]


# -- lowering ------------------------------------------------------------------------------------

def _transpose(node, x, perm, y):
    """IR Transpose of x into y (y's shape is x's permuted)."""
    xs = strides(x.shape)
    part = nest(y.shape, contiguous(y.shape), (0, [xs[p] for p in perm]))
    return ir("Transpose", node, [x], [y], perm=list(perm), parts=[part])


def _is_one(d) -> bool:
    return is_static(d) and d == 1


def _window_attrs(geo):
    """The attributes Im2col, Col2im and DepthwiseConv share: sizes per spatial axis."""
    return dict(in_shape=list(geo.in_shape), out_shape=list(geo.out_shape),
                in_strides=strides(geo.in_shape), out_strides=strides(geo.out_shape),
                in_plane=product(geo.in_shape), out_plane=product(geo.out_shape),
                kernel=list(geo.kernel), taps=geo.taps, kernel_strides=strides(geo.kernel), spans=geo.spans,
                strides=list(geo.strides), dilations=list(geo.dilations),
                pads=list(geo.pads), pads_end=list(geo.pads_end), same=geo.same,
                output_padding=list(geo.output_padding))


def _channel_view(node, v, rank, what):
    """A per-channel vector [C] as [C, 1, ..., 1] (rank-1 ones), to broadcast over [N, C, ...]:
    a new constant, or a View."""
    shape = (v.shape[0],) + (1,) * (rank - 2)
    if v.is_constant:
        return Value(f"{node.name}_{what}", v.dtype, shape, v.data.reshape(shape)), []
    out = Value(f"{node.name}_{what}", v.dtype, shape)
    return out, [ir("View", node, [v], [out])]


def _add_bias(node, pre, b, y):
    """y = pre + b per channel (one Elementwise Add)."""
    bias, nodes = _channel_view(node, b, pre.rank, "bias")
    walk = nest(y.shape, contiguous(y.shape), contiguous(pre.shape), broadcast_view(bias.shape, y.shape))
    return nodes + [ir("Elementwise", node, [pre, bias], [y], kind="Add", nest=walk)]


def _depthwise(node, geo, x, w, b, y):
    n = x.shape[0]
    # Conv: the positions along the last axis whose taps all lie inside the input, [lo, hi)
    size, stride, span, pad = geo.in_shape[-1], geo.strides[-1], geo.spans[-1], geo.pads[-1]
    hi = minimum(floor_div(maximum(size - span + pad + stride, 0), stride), geo.out_shape[-1])
    lo = minimum(ceil_div(pad, stride), hi)
    return ir("DepthwiseConv", node, [x, w] + ([b] if b is not None else []), [y],
              planes=n * geo.out_channels, channels=geo.channels, out_channels=geo.out_channels,
              multiplier=geo.opg, transposed=geo.transposed, inner=[lo, hi], **_window_attrs(geo))


def _gemm(node, a, b, c, y, m, n_cols, k, batch, a_view, b_view, y_view, a_strides, b_strides,
          c_strides=None, trans_a=False, trans_b=False):
    """The IR Gemm y = a x b (+ c), batched over batch = (N, groups) with the views' strides
    (trans_a / trans_b: NumPy reads the operand transposed, `.T`)."""
    return ir("Gemm", node, [a, b] + ([c] if c is not None else []), [y], M=m, N=n_cols, K=k,
              batch=nest(list(batch), (0, a_view), (0, b_view), (0, y_view)), a_strides=a_strides,
              b_strides=b_strides, c_strides=c_strides if c is not None else None, trans_a=trans_a,
              trans_b=trans_b, alpha=1.0, beta=1.0 if c is not None else 0.0)


def lower_conv(node, graph):
    x, w, b, y = node.input(0), node.input(1), node.input(2), node.output(0)
    geo = geometry(node, transposed=False)
    if geo.depthwise:
        return [_depthwise(node, geo, x, w, b, y)]
    few = interval(product(geo.out_shape))[0] < PANEL  # possibly fewer positions than a panel
    if not few and not w.int8 and (geo.pointwise or geo.groups > 1 or geo.cpg * geo.taps <= geo.opg):
        return _conv_by_channel(node, geo, x, w, b, y)
    return _conv_by_position(node, geo, x, w, b, y)


def _im2col(node, geo, x, cols, by_position):
    n, groups = x.shape[0], geo.groups
    ck, s = geo.cpg * geo.taps, product(geo.out_shape)
    # strides of cols along (n, g, row c*K + k, position s)
    layout = [1, n, s * groups * n, groups * n] if by_position else [groups * ck * s, ck * s, s, 1]
    return ir("Im2col", node, [x], [cols], batch=n, groups=groups, channels=geo.cpg,
              by_position=by_position, cols_strides=layout, **_window_attrs(geo))


def _conv_by_channel(node, geo, x, w, b, y):
    """Y[n][g] = W[g] x cols[n][g] ([opg][C*K] x [C*K][S]), in NCHW order as it comes: for
    pointwise and grouped convolutions (no transposes, and each group's weights read in place;
    the Gemm packs cols at run time)."""
    n, groups, cpg, opg = x.shape[0], geo.groups, geo.cpg, geo.opg
    ck, s = cpg * geo.taps, product(geo.out_shape)
    nodes = []
    cols = Value(f"{node.name}_cols", x.dtype, (n, groups, ck, s))
    if geo.pointwise:  # X itself
        nodes.append(ir("View", node, [x], [cols]))
    else:
        nodes.append(_im2col(node, geo, x, cols, by_position=False))
    shape = (opg, ck) if groups == 1 else (groups, opg, ck)
    if w.is_constant:
        wg = Value(f"{node.name}_W", w.dtype, shape, w.data.reshape(shape))
    else:
        wg = Value(f"{node.name}_W", w.dtype, shape)
        nodes.append(ir("View", node, [w], [wg]))
    bias = None
    if b is not None and groups == 1:  # one bias per row of the product
        bias, more = _channel_view(node, b, 3, "bias")
        nodes += more
    yg = Value(f"{node.name}_Yg", x.dtype, (n, groups, opg, s))
    nodes.append(_gemm(node, wg, cols, bias, yg, opg, s, ck, (n, groups), [0, opg * ck],
                       [groups * ck * s, ck * s], [groups * opg * s, opg * s], (ck, 1), (s, 1),
                       c_strides=(1, 0)))
    pre = y if b is None or bias is not None else Value(f"{node.name}_Y", y.dtype, y.shape)
    nodes.append(ir("View", node, [yg], [pre]))
    if pre is not y:
        nodes += _add_bias(node, pre, b, y)
    return nodes


def _conv_by_position(node, geo, x, w, b, y):
    """YT[n][g] = cols[n][g]^T x WT[g] ([S][C*K] x [C*K][opg]), then transposed into Y. The
    weights are the Gemm's B, packed at compile time (one group), and the positions its rows, so
    any number of them runs at full width. cols is stored [C*K][S][g][n]: Im2col writes its
    rows of positions contiguously (one batch entry), and the Gemm reads it transposed."""
    n, groups, cpg, opg = x.shape[0], geo.groups, geo.cpg, geo.opg
    ck, s = cpg * geo.taps, product(geo.out_shape)
    nodes = []
    cols = Value(f"{node.name}_cols", x.dtype, (ck, s, groups, n))
    if geo.pointwise and _is_one(n) and groups == 1:
        nodes.append(ir("View", node, [x], [cols]))
    elif geo.pointwise:
        xg = Value(f"{node.name}_x", x.dtype, (n, groups, cpg, s))
        nodes += [ir("View", node, [x], [xg]), _transpose(node, xg, (2, 3, 1, 0), cols)]
    else:
        nodes.append(_im2col(node, geo, x, cols, by_position=True))

    # the weights as the right operand: WT[g][c*K + k][o]
    trans_b = False
    if w.is_constant:
        data = w.data.reshape(groups, opg, ck).transpose(0, 2, 1)
        data = np.ascontiguousarray(data[0] if groups == 1 else data)
        wt = Value(f"{node.name}_W", w.dtype, data.shape, data, int8=w.int8)  # int8: the int8 kernel reads it
    elif groups == 1:  # its transpose, read through strides (packed at run time)
        wt, trans_b = Value(f"{node.name}_W", w.dtype, (opg, ck)), True
        nodes.append(ir("View", node, [w], [wt]))
    else:
        wg = Value(f"{node.name}_Wg", w.dtype, (groups, opg, ck))
        wt = Value(f"{node.name}_W", w.dtype, (groups, ck, opg))
        nodes.append(ir("View", node, [w], [wg]))
        nodes.append(ir("View", node, [wg], [wt]) if opg == 1 or ck == 1
                     else _transpose(node, wg, (0, 2, 1), wt))

    # YT[n][g][s][o], the bias folded in when one bias row serves every group
    bias = b if b is not None and groups == 1 else None
    yt = Value(f"{node.name}_YT", x.dtype, (n, groups, s, opg))
    nodes.append(_gemm(node, cols, wt, bias, yt, s, opg, ck, (n, groups), [1, n],
                       [0, ck * opg if groups > 1 else 0], [groups * s * opg, s * opg],
                       (groups * n, s * groups * n), (1, ck) if trans_b else (opg, 1), (0, 1),
                       trans_a=True, trans_b=trans_b))

    # Y[n][g*opg + o][s]
    pre = y if b is None or bias is not None else Value(f"{node.name}_Y", y.dtype, y.shape)
    nodes.append(ir("View", node, [yt], [pre]) if _is_one(s) or opg == 1 else _channels_first(node, yt, pre))
    if pre is not y:
        nodes += _add_bias(node, pre, b, y)
    return nodes


def _channels_first(node, x, y):
    """`ChannelsFirst`: y[n][g*opg + o][s] = x[n][g][s][o], copied in tiles of TILE channels:
    each step reads TILE neighbours and writes TILE rows that stay in cache for the next TILE
    positions. (A contiguous array in NumPy too, unlike a transposed view.)"""
    n, groups, s, opg = x.shape
    tile = next((t for t in (TILE, TILE // 2, TILE // 4) if opg % t == 0), 1)
    part = nest([n, groups, opg // tile, s, tile],
                (0, [groups * opg * s, opg * s, tile * s, 1, s]),
                (0, [groups * s * opg, s * opg, tile, opg, 1]))
    return ir("ChannelsFirst", node, [x], [y], parts=[part])


def lower_conv_transpose(node, graph):
    x, w, b, y = node.input(0), node.input(1), node.input(2), node.output(0)
    geo = geometry(node, transposed=True)
    if geo.depthwise:
        return [_depthwise(node, geo, x, w, b, y)]
    n, groups, cpg, opg = x.shape[0], geo.groups, geo.cpg, geo.opg
    ok, s, r = opg * geo.taps, product(geo.in_shape), len(geo.kernel)
    nodes = []

    # XT[n][g][*s][c] (NumPy's matmul sees the spatial axes as batch axes)
    xt = Value(f"{node.name}_XT", x.dtype, (n, groups, *geo.in_shape, cpg))
    if cpg == 1 or _is_one(s):
        nodes.append(ir("View", node, [x], [xt]))
    else:
        xg = Value(f"{node.name}_x", x.dtype, (n, groups, cpg, *geo.in_shape))
        perm = (0, 1, *range(3, 3 + r), 2)
        nodes += [ir("View", node, [x], [xg]), _transpose(node, xg, perm, xt)]

    # W[g][c][o*K + k] is W's own layout (one group: packed at compile time)
    shape = (cpg, ok) if groups == 1 else (groups,) + (1,) * (r - 1) + (cpg, ok)
    if w.is_constant:
        wg = Value(f"{node.name}_W", w.dtype, shape, w.data.reshape(shape))
    else:
        wg = Value(f"{node.name}_W", w.dtype, shape)
        nodes.append(ir("View", node, [w], [wg]))

    cols = Value(f"{node.name}_cols", x.dtype, (n, groups, *geo.in_shape, ok))
    nodes.append(_gemm(node, xt, wg, None, cols, s, ok, cpg, (n, groups), [groups * s * cpg, s * cpg],
                       [0, cpg * ok if groups > 1 else 0], [groups * s * ok, s * ok], (cpg, 1), (ok, 1)))
    nodes.append(ir("Col2im", node, [cols] + ([b] if b is not None else []), [y],
                    planes=n * groups, out_planes=n * geo.out_channels, groups=groups, channels=opg,
                    out_channels=geo.out_channels, **_window_attrs(geo)))
    return nodes


def stream(node, classes, time):
    """Per-step along the batch axis, or along a spatial axis the kernel does not slide over:
    kernel 1, stride 1, no padding (any dilation)."""
    k, = stream_same(node, classes, time)
    if k == 0:
        return [0]
    geo = geometry(node, transposed=node.op_type == "ConvTranspose")
    a = k - 2  # the channels are static: k >= 2
    pads = (geo.pads[a], geo.pads_end[a], geo.output_padding[a])
    if geo.kernel[a] != 1 or geo.strides[a] != 1 or not all(is_static(p) and p == 0 for p in pads):
        raise refuse(node, f"slides along the time axis (kernel {geo.kernel[a]}, stride {geo.strides[a]}, "
                           f"pads {geo.pads[a]} and {geo.pads_end[a]}): each output step reads its neighbours")
    return [k]


for _since in (1, 11, 22):
    register("Conv", _since, infer=infer_conv, fold=fold_conv, lower=lower_conv, stream=stream)
    register("ConvTranspose", _since, infer=infer_conv, fold=fold_conv_transpose, lower=lower_conv_transpose,
             stream=stream)
