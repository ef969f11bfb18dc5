#!/usr/bin/env python3
"""Export the real-PyTorch ONNX models with non-recurrent ops that the test suite checks
(tests/exports/ops/, listed in tests/exports/ops/manifest.json; run by tests/test_exports.py).

These are the small models users start from around an RNN: conditional heads, custom
activations, conv front-ends, a tiny ResNet, normalisation, padding and the activation zoo,
an audio-style feature front-end.  Each is tiny (weights of a few KB up to ~30 KB):

  where_global    torch.where(x.mean() > 0, lin1(x), lin2(x))           x [batch, 6]
                  (one scalar condition broadcast over the whole batch: Where, ReduceMean)
  where_rows      torch.where(x.mean(-1, keepdim=True) > 0, lin1(x), lin2(x))   per-row
  gru_act         GRU(batch_first) → tanh(y) + 0.5 * y → Linear          x [batch, seq, 4]
  crnn            Conv1d(k3, pad 1) + BatchNorm1d + ReLU + MaxPool1d(2) over [batch, 4, time],
                  transpose, LSTM(batch_first), Linear on every step    (time dynamic)
  resnet          Conv2d 3x3 + BN + ReLU stem, MaxPool2d(2), BasicBlock(8→8),
                  BasicBlock(8→16, stride 2, 1x1 conv + BN downsample), AdaptiveAvgPool2d(1)
                  (→ GlobalAveragePool), Flatten, Linear(16, 10); x [batch, 3, 32, 32]
  ln_gru          LayerNorm(6) → GRU(batch_first) → Linear               x [batch, seq, 6]
  pad_conv_acts   F.pad reflect + Conv2d(2→4, 3x3) → five outputs: GELU; F.pad constant +
                  Softplus + clamp; ReLU6 + Hardswish + Hardsigmoid; Mish + ELU + SELU;
                  sqrt(|y|) + exp(-|y|) + log(|y| + 1) + 0.1 * y ** 2 + pow(|y|, 1.5)
                  x [batch, 2, height, width] with all four dims dynamic
  audio_frontend  x [batch, time, 16] frames: RMS = x.pow(2).mean(-1).sqrt(), clamp(min
                  1e-3), log1p, cumsum over time (two outputs), and an argmax over a
                  Linear(16, 5) head per frame (int64 output)

BatchNorm layers get random running statistics and affine parameters (so the folded
scale/shift is not the identity); every model is put in eval mode.

Exporters:
  * TorchScript, torch.onnx.export(dynamo=False, opset_version=17), every model but
    where_cond, dynamic_axes on batch and time/seq/height/width; weights inline.  suffix _ts17
    This exporter fuses eval-mode BatchNorm into the Conv before it, so crnn and resnet are
    also exported with do_constant_folding=False, which keeps BatchNormalization.  _ts17nf
    where_if is torch.jit.script-ed first, so its Python `if` becomes an ONNX If.
  * torch.export-based, torch.onnx.export(dynamo=True) at its default opset with
    dynamic_shapes torch.export.Dim(<name>) for the models listed in DYNAMO below;
    weights inline (external_data=False).  Each runs in a fresh interpreter (torch 2.13's
    while_loop LSTM/GRU decomposition that keeps seq dynamic only takes effect for the
    first export in a process).  A dim the exporter specialised anyway is recorded in the
    manifest's "static_dims" and only verified at its example size.        suffix _dy

Every model is checked with onnxruntime against torch (torch.no_grad, eval) at the three
sizes of its SIZES entry before it is written; the manifest records those sizes (by the dim
names in the file), the inputs' and outputs' declared dims, the opset, the op types and a
description.

Requires torch (2.13 was used), onnxscript, onnx, onnxruntime.

    python tests/exports/make_op_exports.py [NAME-SUBSTRING ...]
"""
import collections
import json
import os
import subprocess
import sys
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ops")
TOL = 1e-5


# ---------------------------------------------------------------- models

class WhereGlobal(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin1, self.lin2 = nn.Linear(6, 4), nn.Linear(6, 4)

    def forward(self, x):
        return torch.where(x.mean() > 0, self.lin1(x), self.lin2(x))


class WhereRows(WhereGlobal):
    def forward(self, x):
        return torch.where(x.mean(-1, keepdim=True) > 0, self.lin1(x), self.lin2(x))


class WhereIf(WhereGlobal):
    """Scripted (torch.jit.script) so the TorchScript exporter emits an ONNX If."""
    def forward(self, x):
        if bool(x.mean() > 0):
            return self.lin1(x)
        return self.lin2(x)


class WhereCond(WhereGlobal):
    """torch.cond: the dynamo exporter emits an ONNX If with two subgraphs."""
    def forward(self, x):
        return torch.cond(x.mean() > 0, lambda t: self.lin1(t), lambda t: self.lin2(t), (x,))


class GruAct(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(4, 8, batch_first=True)
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        y, _ = self.rnn(x)
        return self.fc(torch.tanh(y) + 0.5 * y)


class Crnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(4, 8, 3, padding=1)
        self.bn = nn.BatchNorm1d(8)
        self.pool = nn.MaxPool1d(2)
        self.rnn = nn.LSTM(8, 8, batch_first=True)
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        h = self.pool(F.relu(self.bn(self.conv(x))))  # [batch, 8, time // 2]
        y, _ = self.rnn(h.transpose(1, 2))
        return self.fc(y)


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.down is None else self.down(x)))


class TinyResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 1, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.pool = nn.MaxPool2d(2)
        self.block1 = BasicBlock(8, 8)
        self.block2 = BasicBlock(8, 16, stride=2)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        y = self.block2(self.block1(self.pool(self.stem(x))))
        return self.fc(torch.flatten(self.gap(y), 1))


class LnGru(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln = nn.LayerNorm(6)
        self.rnn = nn.GRU(6, 8, batch_first=True)
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        y, _ = self.rnn(self.ln(x))
        return self.fc(y)


class PadConvActs(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3)

    def forward(self, x):
        y = self.conv(F.pad(x, (1, 1, 1, 1), mode="reflect"))
        a = F.gelu(y)
        b = torch.clamp(F.softplus(F.pad(y, (1, 0, 0, 2), mode="constant", value=0.25)), -1.0, 2.0)
        c = F.relu6(3 * y) + F.hardswish(y) + F.hardsigmoid(y)
        d = F.mish(y) + F.elu(y) + F.selu(y)
        m = y.abs()
        e = m.sqrt() + torch.exp(-m) + torch.log(m + 1) + 0.1 * y.pow(2) + m.pow(1.5)
        return a, b, c, d, e


class AudioFrontend(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(16, 5)

    def forward(self, x):
        rms = x.pow(2).mean(-1).sqrt()                  # [batch, time]
        feat = torch.log1p(torch.clamp(rms, min=1e-3))
        total = torch.cumsum(feat, dim=1)
        cls = torch.argmax(self.fc(x), dim=-1)          # [batch, time] int64
        return feat, total, cls


def randomize_bn(model, seed):
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.3)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.2)
    return model


# name: (class, inputs [(name, dims)], outputs, example sizes, check sizes, description)
MODELS = {
    "where_global": (WhereGlobal, [("x", ("batch", 6))], ["y"],
                     {"batch": 3}, [{"batch": 1}, {"batch": 3}, {"batch": 5}],
                     "torch.where(x.mean() > 0, Linear(6,4)(x), Linear(6,4)(x)): scalar condition"),
    "where_rows": (WhereRows, [("x", ("batch", 6))], ["y"],
                   {"batch": 3}, [{"batch": 1}, {"batch": 3}, {"batch": 5}],
                   "torch.where(x.mean(-1, keepdim=True) > 0, Linear(6,4)(x), Linear(6,4)(x)): per-row condition"),
    "where_if": (WhereIf, [("x", ("batch", 6))], ["y"],
                 {"batch": 3}, [{"batch": 1}, {"batch": 3}, {"batch": 5}],
                 "torch.jit.script: if x.mean() > 0: Linear(6,4)(x) else Linear(6,4)(x) → ONNX If"),
    "where_cond": (WhereCond, [("x", ("batch", 6))], ["y"],
                   {"batch": 3}, [{"batch": 1}, {"batch": 3}, {"batch": 5}],
                   "torch.cond(x.mean() > 0, Linear(6,4), Linear(6,4), (x,)) → ONNX If (dynamo only)"),
    "gru_act": (GruAct, [("x", ("batch", "seq", 4))], ["y"],
                {"batch": 3, "seq": 7}, [{"batch": 1, "seq": 1}, {"batch": 3, "seq": 7}, {"batch": 2, "seq": 4}],
                "GRU(4, 8, batch_first) → tanh(y) + 0.5 * y → Linear(8, 3) on every step"),
    "crnn": (Crnn, [("x", ("batch", 4, "time"))], ["y"],
             {"batch": 3, "time": 10}, [{"batch": 1, "time": 2}, {"batch": 3, "time": 10}, {"batch": 2, "time": 7}],
             "Conv1d(4, 8, 3, pad 1) + BatchNorm1d + ReLU + MaxPool1d(2) over [batch, 4, time], "
             "transpose, LSTM(8, 8, batch_first), Linear(8, 3) on every step"),
    "resnet": (TinyResNet, [("x", ("batch", 3, 32, 32))], ["y"],
               {"batch": 2}, [{"batch": 1}, {"batch": 2}, {"batch": 4}],
               "tiny ResNet: Conv2d 3x3 + BN + ReLU stem, MaxPool2d(2), BasicBlock(8→8), "
               "BasicBlock(8→16, stride 2, 1x1 conv + BN downsample), AdaptiveAvgPool2d(1), Flatten, Linear(16, 10)"),
    "ln_gru": (LnGru, [("x", ("batch", "seq", 6))], ["y"],
               {"batch": 3, "seq": 7}, [{"batch": 1, "seq": 1}, {"batch": 3, "seq": 7}, {"batch": 2, "seq": 4}],
               "LayerNorm(6) → GRU(6, 8, batch_first) → Linear(8, 3) on every step"),
    "pad_conv_acts": (PadConvActs, [("x", ("batch", 2, "height", "width"))], ["gelu", "softplus_clamp", "hard", "smooth", "math"],
                      {"batch": 2, "height": 6, "width": 5},
                      [{"batch": 1, "height": 2, "width": 3}, {"batch": 2, "height": 6, "width": 5},
                       {"batch": 3, "height": 4, "width": 9}],
                      "F.pad reflect + Conv2d(2, 4, 3) → GELU; F.pad constant + Softplus + clamp; "
                      "ReLU6 + Hardswish + Hardsigmoid; Mish + ELU + SELU; sqrt/exp/log/abs/pow"),
    "audio_frontend": (AudioFrontend, [("x", ("batch", "time", 16))], ["feat", "total", "cls"],
                       {"batch": 3, "time": 8}, [{"batch": 1, "time": 1}, {"batch": 3, "time": 8}, {"batch": 2, "time": 5}],
                       "RMS x.pow(2).mean(-1).sqrt() → clamp(min 1e-3) → log1p, its cumsum over time, "
                       "argmax(Linear(16, 5)(x), -1) per frame (int64)"),
}
# models also exported with the dynamo exporter
DYNAMO = ["where_cond", "where_rows", "gru_act", "resnet", "ln_gru", "pad_conv_acts", "audio_frontend", "crnn"]
# dims whose torch.export.Dim needs a lower bound (MaxPool1d(2) needs time >= 2)
DIM_MIN = {("crnn", "time"): 2, ("pad_conv_acts", "height"): 2, ("pad_conv_acts", "width"): 2}

# why a dim the dynamo exporter was asked to keep dynamic came out static (found by experiment)
STATIC_REASON = {
    ("crnn", "dy", "time"): "torch 2.13: the while_loop LSTM decomposition specialises the LSTM's seq "
                            "when it is derived (time // 2 after MaxPool1d); without the pool time stays dynamic",
}
# dynamo GRU/LSTM exports declare the example seq (7) in the output shape although seq is dynamic
# (onnxruntime warns and computes the right shape)
STALE = {("gru_act", "dy"), ("ln_gru", "dy")}

# TorchScript exports without constant folding: these keep BatchNormalization nodes (with
# folding on, the exporter fuses eval-mode BN into the Conv before it)
NOFOLD = ["crnn", "resnet"]
TS_SKIP = ["where_cond"]  # torch.cond does not go through the TorchScript exporter

EXPORTS = ([(n, "ts17") for n in MODELS if n not in TS_SKIP] + [(n, "ts17nf") for n in NOFOLD]
           + [(n, "dy") for n in DYNAMO])


def make_model(name):
    torch.manual_seed(sum(map(ord, name)))
    return randomize_bn(MODELS[name][0](), len(name)).eval()


def make_inputs(name, sizes, gen):
    return tuple(torch.randn(*[sizes[d] if isinstance(d, str) else d for d in dims], generator=gen)
                 for _, dims in MODELS[name][1])


def fname(name, exporter):
    return f"{name}_{exporter}.onnx"


def export_one(name, exporter):
    _, ins, outs, example, _, _ = MODELS[name]
    path = os.path.join(HERE, fname(name, exporter))
    if os.path.exists(path):
        os.remove(path)
    model = make_model(name)
    x = make_inputs(name, example, torch.Generator().manual_seed(0))
    in_names = [n for n, _ in ins]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if exporter in ("ts17", "ts17nf"):
            dyn = {n: {i: d for i, d in enumerate(dims) if isinstance(d, str)} for n, dims in ins}
            if name == "where_if":
                model = torch.jit.script(model)
            torch.onnx.export(model, x, path, dynamo=False, opset_version=17,
                              input_names=in_names, output_names=outs, dynamic_axes=dyn,
                              do_constant_folding=exporter == "ts17")
        else:
            dim = {}
            for _, dims in ins:
                for d in dims:
                    if isinstance(d, str) and d not in dim:
                        dim[d] = torch.export.Dim(d, min=DIM_MIN.get((name, d), 1))
            ds = {n: {i: dim[d] for i, d in enumerate(dims) if isinstance(d, str)} for n, dims in ins}
            ds = {"x": ds["x"]}
            torch.onnx.export(model, x, path, dynamo=True, input_names=in_names, output_names=outs,
                              dynamic_shapes=ds, external_data=False, verbose=False)


def dims_of(vi):
    return [d.dim_param if d.dim_param else d.dim_value for d in vi.type.tensor_type.shape.dim]


def main(only=None):
    torch.set_num_threads(1)
    os.makedirs(HERE, exist_ok=True)
    manifest, table, failures = [], [], []
    for name, exporter in EXPORTS:
        f = fname(name, exporter)
        if only and not any(s in f for s in only):
            continue
        path = os.path.join(HERE, f)
        if exporter == "dy":
            r = subprocess.run([sys.executable, os.path.abspath(__file__), "--export-one", name, exporter],
                               capture_output=True, text=True)
            err = " ".join(r.stderr.strip().splitlines()[-1:]) if r.returncode else None
        else:
            try:
                export_one(name, exporter)
                err = None
            except Exception as e:  # noqa: BLE001
                err = f"{type(e).__name__}: {e}"
        if err is not None:
            failures.append((f, f"export failed: {err[:300]}"))
            continue
        _, ins, outs, example, check, desc = MODELS[name]
        m = onnx.load(path)
        onnx.checker.check_model(m)
        opset = next(o.version for o in m.opset_import if o.domain in ("", "ai.onnx"))
        inputs = {i.name: dims_of(i) for i in m.graph.input}
        outputs = {o.name: dims_of(o) for o in m.graph.output}
        # map our dim names to the file's (they should agree) and find specialised ones
        file_dims, static = {}, []
        for (n, dims), (fn, fdims) in zip(ins, inputs.items()):
            for d, fd in zip(dims, fdims):
                if isinstance(d, str):
                    if isinstance(fd, str):
                        file_dims[d] = fd
                    elif d not in static:
                        static.append(d)
        sizes = [{d: (example[d] if d in static else s[d]) for d in s} for s in check]
        sizes = [dict(t) for t in dict.fromkeys(tuple(s.items()) for s in sizes)]
        model = make_model(name)
        gen = torch.Generator().manual_seed(1)
        try:
            sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
            errs = []
            for s in sizes:
                x = make_inputs(name, s, gen)
                with torch.no_grad():
                    ref = model(*x)
                ref = (ref,) if isinstance(ref, torch.Tensor) else ref
                got = sess.run(None, {i.name: t.numpy() for i, t in zip(sess.get_inputs(), x)})
                assert len(got) == len(ref), f"{len(got)} outputs vs torch {len(ref)}"
                for r_, g in zip(ref, got):
                    assert tuple(r_.shape) == g.shape, f"shape {tuple(r_.shape)} vs {g.shape} at {s}"
                    if g.dtype.kind in "iu":
                        assert (r_.numpy() == g).all(), f"integer output differs at {s}"
                    else:
                        errs.append(float(np.max(np.abs(r_.numpy() - g))) if g.size else 0.0)
            maxerr = max(errs, default=0.0)
            assert maxerr <= TOL, f"max abs err {maxerr}"
        except Exception as e:  # noqa: BLE001
            failures.append((f, f"onnxruntime check failed: {type(e).__name__}: {str(e)[:300]}"))
            os.remove(path)
            continue
        ops = collections.Counter(n.op_type for n in m.graph.node)
        entry = {
            "file": f,
            "model": name,
            "exporter": "dynamo" if exporter == "dy" else "torchscript",
            "constant_folding": exporter != "ts17nf",
            "opset": opset,
            "description": desc,
            "inputs": inputs,
            "outputs": list(outputs),
            "output_shapes": outputs,
            "example_sizes": dict(example),
            "static_dims": static,
            "static_dims_reason": {d: STATIC_REASON.get((name, exporter, d), "unknown") for d in static},
            "declared_output_dims_stale": (name, exporter) in STALE,
            "verified_sizes": [{file_dims.get(d, d): v for d, v in s.items() if d not in static} for s in sizes],
            "size_bytes": os.path.getsize(path),
            "op_types": sorted(ops),
        }
        manifest.append(entry)
        table.append((f, opset, os.path.getsize(path), maxerr, ",".join(static) or "-",
                      " ".join(f"{k}:{c}" for k, c in sorted(ops.items()))))
    w = max((len(r[0]) for r in table), default=10)
    print(f"{'file':{w}s} opset {'bytes':>7s} {'max_err':>8s} static  ops")
    for f, o, b, e, st, ops in table:
        print(f"{f:{w}s} {o:5d} {b:7d} {e:8.1e} {st:7s} {ops}")
    print(f"{len(table)} exported and verified, {len(failures)} failed; "
          f"total {sum(r[2] for r in table)} bytes")
    for f, why in failures:
        print(f"FAILED {f}: {why}")
    if not only:
        with open(os.path.join(HERE, "manifest.json"), "w") as fh:
            json.dump(manifest, fh, indent=1)
            fh.write("\n")
    return 1 if failures else 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--export-one"]:
        export_one(sys.argv[2], sys.argv[3])
    else:
        sys.exit(main(sys.argv[1:]))
