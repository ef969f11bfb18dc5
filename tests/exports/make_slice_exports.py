#!/usr/bin/env python3
"""Export the real-PyTorch ONNX models with slicing heads and loop-counter names that the
test suite checks (tests/exports/slicing/, listed in tests/exports/slicing/manifest.json).

Each model is a one-layer nn.LSTM / nn.GRU / nn.RNN (input 3-5, hidden 4-6) whose output
sequence y goes through a head that slices the *dynamic* seq axis (axis 1 when batch_first,
axis 0 when seq-first; written below for batch_first):

  s1_3     y[:, 1:3]                 clamped: 0 steps at seq=1, 1 at seq=2
  last2    y[:, -2:]                 negative start: 1 step at seq=1
  inner    y[:, 1:-1]                length max(seq-2, 0): empty at seq=1 and 2
  step2    y[:, ::2]                 step 2: ceil(seq/2) steps
  rev3     torch.flip(y[:, -3:], [1])  PyTorch slicing refuses a negative step; both
                                     exporters turn the flip into a Slice with step -1
  chunk2   torch.chunk(y, 2, dim=1)  both chunks are outputs (Shape/Add/Div/Mul → 2 Slices)
  split2   y.split(2, dim=1)[0]      see the note on Split below
  fc_s1_3  fc(y[:, 1:3])             Linear after the slice (MatMul + Add)
  fc_inner fc(y[:, 1:-1])
  last     fc(y[:, -1])              no slice: for the models that only test names
  none     y                         no head: likewise

Exporters:
  * TorchScript, torch.onnx.export(dynamo=False) at opset 14 (suffix _ts14) and 17 (_ts17),
    weights inline. dynamic_axes name the batch and seq axes of the inputs, the batch axis
    of every output and the seq axis of an output only where it *is* the input's seq (head
    "last" has none; the sliced outputs' seq axis is left for torch to name, e.g.
    "Slicey_dim_1", because its length is not seq).
  * torch.export-based, torch.onnx.export(dynamo=True) at its default opset (suffix _dy),
    dynamic_shapes torch.export.Dim(<name>), weights moved into X.onnx.data as in
    make_exports.py. Only batch_first LSTM / GRU: that is where torch 2.13's dynamo exporter
    keeps seq dynamic (nn.RNN is unrolled over the example seq, seq-first LSTM/GRU bake it
    into a Reshape, chunk / split specialise seq). As in make_exports.py each dynamo export
    runs in a fresh interpreter (the while_loop LSTM/GRU decomposition that keeps seq
    dynamic only takes effect for the first export in a process). Note: these graphs keep
    the example seq (7) in the declared shape of the LSTM/GRU output and of a sliced graph
    output (e.g. y: [b, 2, 4] for y[:, 1:3], [b, 5, 4] for y[:, 1:-1]) although seq is
    dynamic; onnxruntime warns and computes the right shape. The manifest marks them with
    "declared_output_dims_stale".

Names: besides the usual "batch"/"seq" and "input"/"output", models use dims named like
loop counters (b, t, i, n, x) and inputs/outputs named x, h, c, y, m, t, including a dim
and an input or output with the same name (dim "x" with input "x", dim "t" with output
"t"). File names: {module}_{bf|sf}_{head}_{names}_{ts14|ts17|dy}.onnx where names is
"std" (batch/seq, input/output) or the two dim names (batch first).

Split: for y.split(2, dim=1) on a dynamic seq the TorchScript exporter writes a Split with
the constant sizes [2] * ceil(example_seq / 2) — wrong at the example itself when it is odd
and refused by onnxruntime at any other seq ("Split size 2 exceeds the remaining size").
split2 models are exported with an even example seq (6) and verified only at it; the
dropped sizes and onnxruntime's reason are in the manifest ("dropped_sizes"). onnx2src
refuses these models (manifest field "refused"), as a model valid at one length only.

torch.chunk(y, 2) returns a single chunk when seq is 1 while the exported graph returns
two (the second empty); the check treats the missing chunk as empty.

Every model is checked with onnxruntime against torch at (batch, seq) in CHECK_SIZES plus
the example size; a size where onnxruntime raises is dropped and recorded with the reason;
a numeric mismatch or a wrong shape fails the export. manifest.json lists, per model, the
input and output dims read back from the file, verified_sizes keyed by the model's own dim
names, op_types, the head and the names used.

Requires torch (2.13 was used), onnxscript, onnx, onnxruntime.

    python tests/exports/make_slice_exports.py            # all models, rewrites the manifest
    python tests/exports/make_slice_exports.py lstm_bf    # only files containing a word (no manifest)
"""
import collections
import json
import math
import os
import subprocess
import sys
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn as nn
from onnx.external_data_helper import set_external_data

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "slicing")
EXAMPLE = {"batch": 3, "seq": 7}
SPLIT_EXAMPLE_SEQ = 6
SPLIT_REFUSED = ("torch's exporter writes Split with the fixed sizes [2, 2, 2] on the dynamic seq "
                 "axis, so the model is valid only at seq 6; onnx2src refuses it rather than "
                 "compile a model that fails at every other length")
# (batch, seq) pairs checked with onnxruntime: empty / short slices at seq 1 and 2.
CHECK_SIZES = [(1, 1), (3, 1), (1, 2), (3, 2), (3, 5), (1, 7), (3, 7)]
TOL = 1e-5

HEADS = {
    "s1_3": "y[:, 1:3]",
    "last2": "y[:, -2:]",
    "inner": "y[:, 1:-1]",
    "step2": "y[:, ::2]",
    "rev3": "torch.flip(y[:, -3:], [1]) (negative-step Slice)",
    "chunk2": "torch.chunk(y, 2, dim=1), both chunks",
    "split2": "y.split(2, dim=1)[0]",
    "fc_s1_3": "fc(y[:, 1:3])",
    "fc_inner": "fc(y[:, 1:-1])",
    "last": "fc(y[:, -1])",
    "none": "y (every step, no head)",
}

# names tag -> (batch dim, seq dim, input names [x, h0, c0], output names in order)
NAMES = {
    "std": ("batch", "seq", ["input", "h0", "c0"], ["output", "h_n", "c_n"]),
    "bt": ("b", "t", ["x", "h", "c"], ["y", "m", "t"]),
    "ni": ("n", "i", ["x", "h", "c"], ["y", "m", "t"]),
    "bx": ("b", "x", ["t", "h", "c"], ["y", "m", "x"]),
    "xi": ("x", "i", ["x", "h", "c"], ["y", "m", "t"]),
}

# (module, nonlinearity, bidirectional, batch_first, head, initial_state, return_state, names, exporter)
# exporter: "ts14" / "ts17" TorchScript at that opset, "dy" dynamo.
VARIANTS = [
    # ---- slicing heads, TorchScript ----
    ("LSTM", None, False, True, "s1_3", False, False, "std", "ts14"),
    ("GRU", None, False, False, "s1_3", False, False, "std", "ts17"),
    ("RNN", "tanh", False, True, "s1_3", True, False, "bt", "ts17"),
    ("LSTM", None, False, False, "s1_3", True, True, "ni", "ts14"),
    ("GRU", None, False, True, "last2", False, False, "std", "ts14"),
    ("LSTM", None, False, True, "last2", False, False, "ni", "ts17"),
    ("RNN", "relu", False, False, "last2", False, False, "std", "ts14"),
    ("RNN", "tanh", False, True, "inner", False, False, "std", "ts14"),
    ("LSTM", None, False, False, "inner", False, False, "bt", "ts17"),
    ("GRU", None, False, True, "inner", True, True, "xi", "ts17"),
    ("LSTM", None, False, True, "step2", False, False, "std", "ts14"),
    ("GRU", None, False, True, "step2", False, False, "bx", "ts17"),
    ("RNN", "tanh", False, False, "step2", False, False, "std", "ts17"),
    ("GRU", None, False, True, "rev3", False, False, "std", "ts14"),
    ("LSTM", None, False, False, "rev3", False, False, "std", "ts17"),
    ("RNN", "relu", False, True, "rev3", False, False, "ni", "ts17"),
    ("LSTM", None, False, True, "chunk2", False, False, "bt", "ts14"),
    ("GRU", None, False, False, "chunk2", False, False, "std", "ts17"),
    ("RNN", "tanh", False, True, "chunk2", False, False, "std", "ts14"),
    ("LSTM", None, False, True, "split2", False, False, "std", "ts14"),
    ("GRU", None, False, True, "split2", False, False, "bt", "ts17"),
    ("GRU", None, False, True, "fc_s1_3", False, False, "std", "ts14"),
    ("LSTM", None, False, True, "fc_s1_3", True, False, "bx", "ts17"),
    ("RNN", "tanh", False, False, "fc_s1_3", False, False, "std", "ts14"),
    ("LSTM", None, True, False, "fc_inner", False, False, "std", "ts14"),
    ("GRU", None, True, True, "fc_inner", False, False, "ni", "ts17"),
    # ---- loop-counter names only (no slice), TorchScript ----
    ("LSTM", None, False, True, "last", True, True, "bt", "ts14"),
    ("GRU", None, False, False, "last", True, True, "ni", "ts17"),
    ("RNN", "tanh", False, True, "none", False, False, "bx", "ts14"),
    ("LSTM", None, False, True, "last", True, False, "xi", "ts17"),
    # ---- dynamo (batch_first LSTM / GRU keep seq dynamic) ----
    ("LSTM", None, False, True, "s1_3", False, False, "bt", "dy"),
    ("GRU", None, False, True, "inner", False, False, "std", "dy"),
    ("LSTM", None, False, True, "rev3", False, False, "ni", "dy"),
    ("GRU", None, False, True, "fc_s1_3", True, False, "bx", "dy"),
    ("LSTM", None, False, True, "last", True, True, "ni", "dy"),
]


def head_description(head, batch_first):
    """HEADS[head] written for the model's layout (seq axis 1 or 0)."""
    text = HEADS[head]
    if batch_first:
        return text
    return text.replace("[:, ", "[").replace("dim=1", "dim=0").replace("[1])", "[0])")


def variant_name(v):
    module, nonlin, bi, bf, head, init, ret, names, exporter = v
    parts = [module.lower()] + ([nonlin] if module == "RNN" else []) + (["bi"] if bi else [])
    tag = names if names == "std" else NAMES[names][0] + NAMES[names][1]
    parts += ["bf" if bf else "sf", head, tag, exporter]
    return "_".join(parts) + ".onnx"


class Net(nn.Module):
    def __init__(self, module, nonlinearity, isz, hsz, osz, bi, bf, head, return_state):
        super().__init__()
        self.return_state = return_state
        kw = {"nonlinearity": nonlinearity} if module == "RNN" else {}
        self.rnn = getattr(nn, module)(isz, hsz, bidirectional=bi, batch_first=bf, **kw)
        self.fc = nn.Linear(hsz * (2 if bi else 1), osz) if head.startswith("fc") or head == "last" else None
        self.axis = 1 if bf else 0
        self.head = head

    def _head(self, y):
        a, h = self.axis, self.head

        def sl(s):  # y[s] along the seq axis
            return y[:, s] if a == 1 else y[s]

        if h == "s1_3":
            return sl(slice(1, 3))
        if h == "last2":
            return sl(slice(-2, None))
        if h == "inner":
            return sl(slice(1, -1))
        if h == "step2":
            return sl(slice(None, None, 2))
        if h == "rev3":
            return torch.flip(sl(slice(-3, None)), [a])
        if h == "chunk2":
            return torch.chunk(y, 2, dim=a)
        if h == "split2":
            return y.split(2, dim=a)[0]
        if h == "fc_s1_3":
            return self.fc(sl(slice(1, 3)))
        if h == "fc_inner":
            return self.fc(sl(slice(1, -1)))
        if h == "last":
            return self.fc(y[:, -1] if a == 1 else y[-1])
        return y


class NoState(Net):
    def forward(self, x):
        y, _ = self.rnn(x)
        return self._head(y)


class WithH0(Net):
    def forward(self, x, h0):
        y, h = self.rnn(x, h0)
        out = self._head(y)
        return (out, h) if self.return_state else out


class WithH0C0(Net):
    def forward(self, x, h0, c0):
        y, (h, c) = self.rnn(x, (h0, c0))
        out = self._head(y)
        return (out, h, c) if self.return_state else out


def build(idx):
    """Model, input maker, I/O names and sizes for VARIANTS[idx] (deterministic)."""
    module, nonlin, bi, bf, head, init, ret, names, exporter = VARIANTS[idx]
    isz, hsz, osz = 3 + idx % 3, 4 + idx % 3, 2 + idx % 2
    torch.manual_seed(2000 + idx)
    cls = (WithH0C0 if module == "LSTM" else WithH0) if init else NoState
    model = cls(module, nonlin, isz, hsz, osz, bi, bf, head, ret).eval()
    dirs = 2 if bi else 1

    def make_inputs(batch, seq, gen):
        ins = [torch.randn(*((batch, seq, isz) if bf else (seq, batch, isz)), generator=gen)]
        if init:
            ins.append(torch.randn(dirs, batch, hsz, generator=gen))
            if module == "LSTM":
                ins.append(torch.randn(dirs, batch, hsz, generator=gen))
        return tuple(ins)

    bname, sname, in_pool, out_pool = NAMES[names]
    n_in = 1 + int(init) + int(init and module == "LSTM")
    in_names = in_pool[:n_in]
    n_head = 2 if head == "chunk2" else 1
    n_state = (1 + (module == "LSTM")) if ret else 0
    if names == "std":
        heads = ["output0", "output1"] if n_head == 2 else ["output"]
        out_names = heads + ["h_n", "c_n"][:n_state]
    else:
        out_names = out_pool[:n_head + n_state]
    return model, make_inputs, in_names, out_names, (isz, hsz, osz), (bname, sname)


def example_seq(idx):
    return SPLIT_EXAMPLE_SEQ if VARIANTS[idx][4] == "split2" else EXAMPLE["seq"]


def externalize_weights(path):
    """Re-save `path` with every float initializer of >= 2 elements in `path`.data."""
    model = onnx.load(path)
    data_name = os.path.basename(path) + ".data"
    if os.path.exists(path + ".data"):
        os.remove(path + ".data")
    for t in model.graph.initializer:
        if t.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE) and math.prod(t.dims) >= 2:
            if not t.HasField("raw_data"):
                t.CopyFrom(onnx.numpy_helper.from_array(onnx.numpy_helper.to_array(t), t.name))
            set_external_data(t, data_name)
    onnx.save_model(model, path)
    os.chmod(path + ".data", 0o644)  # onnx writes it 0600


def export_one(idx):
    """Export VARIANTS[idx] to tests/exports/slicing/<name>.onnx (+ .data for dynamo)."""
    module, nonlin, bi, bf, head, init, ret, names, exporter = VARIANTS[idx]
    path = os.path.join(HERE, variant_name(VARIANTS[idx]))
    for p in (path, path + ".data"):
        if os.path.exists(p):
            os.remove(p)
    model, make_inputs, in_names, out_names, _, (bname, sname) = build(idx)
    example = make_inputs(EXAMPLE["batch"], example_seq(idx), torch.Generator().manual_seed(idx))
    xb, xs = (0, 1) if bf else (1, 0)
    n_head = 2 if head == "chunk2" else 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if exporter.startswith("ts"):
            dyn = {in_names[0]: {xb: bname, xs: sname}}
            for n in in_names[1:]:
                dyn[n] = {1: bname}
            for n in out_names[:n_head]:
                if head == "last":
                    dyn[n] = {0: bname}
                elif head == "none":
                    dyn[n] = {xb: bname, xs: sname}
                else:  # the seq axis of a sliced output is not seq: torch names it
                    dyn[n] = {xb: bname}
            for n in out_names[n_head:]:
                dyn[n] = {1: bname}
            torch.onnx.export(model, example, path, dynamo=False, opset_version=int(exporter[2:]),
                              input_names=in_names, output_names=out_names, dynamic_axes=dyn)
        else:
            B, S = torch.export.Dim(bname), torch.export.Dim(sname)
            arg_names = ["x", "h0", "c0"]
            ds = {"x": {xb: B, xs: S}}
            for n in arg_names[1:len(in_names)]:
                ds[n] = {1: B}
            torch.onnx.export(model, example, path, dynamo=True,
                              input_names=in_names, output_names=out_names,
                              dynamic_shapes=ds, external_data=True, verbose=False)
            externalize_weights(path)


def dims_of(value_info):
    return [d.dim_param if d.dim_param else d.dim_value for d in value_info.type.tensor_type.shape.dim]


def slice_summary(model):
    """Each Slice / Split node on a tensor (not on a Shape) with its constant starts / ends / axes
    / steps or split sizes ("run-time" when computed in the graph), for the manifest."""
    from_shape = {n.output[0] for n in model.graph.node if n.op_type == "Shape"}
    consts = {n.output[0]: onnx.numpy_helper.to_array(n.attribute[0].t).tolist()
              for n in model.graph.node if n.op_type == "Constant" and n.attribute
              and n.attribute[0].name == "value"}
    consts.update({t.name: onnx.numpy_helper.to_array(t).tolist() for t in model.graph.initializer
                   if math.prod(t.dims) <= 8 and t.data_type == onnx.TensorProto.INT64})
    out = []
    for n in model.graph.node:
        if n.op_type == "Slice" and n.input[0] not in from_shape:
            keys = ["starts", "ends", "axes", "steps"]
            out.append({"op": "Slice", **{k: consts.get(i, "run-time") for k, i in zip(keys, n.input[1:])}})
        elif n.op_type == "Split":
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
            split = consts.get(n.input[1], "run-time") if len(n.input) > 1 else attrs.get("split")
            out.append({"op": "Split", "axis": attrs.get("axis", 0), "split": split,
                        "outputs": len(n.output)})
    return out


def check(idx, path, sizes, make_inputs, model, in_names, out_names, gen):
    """Run onnxruntime against torch at `sizes`: (kept sizes, dropped [(size, reason)], max err)."""
    opts = ort.SessionOptions()
    opts.log_severity_level = 4  # refused sizes are recorded below; stale dims make ORT warn
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    kept, dropped, errs = [], [], [0.0]
    for b, s in sizes:
        ins = make_inputs(b, s, gen)
        with torch.no_grad():
            ref = model(*ins)
        ref = list((ref,) if isinstance(ref, torch.Tensor) else ref)
        if VARIANTS[idx][4] == "chunk2" and len(ref) == len(out_names) - 1:
            # torch.chunk gives one chunk when seq is 1; the graph gives an empty second one
            ref.insert(1, ref[0][:, :0] if VARIANTS[idx][3] else ref[0][:0])
        try:
            got = sess.run(out_names, dict(zip(in_names, (t.numpy() for t in ins))))
        except Exception as e:  # noqa: BLE001 - onnxruntime refuses the size: record why
            msg = str(e).split("Status Message:")[-1].strip().splitlines()[0][:200]
            dropped.append(((b, s), f"onnxruntime raised: {msg}"))
            continue
        assert len(ref) == len(got), f"{len(ref)} torch outputs vs {len(got)} at {(b, s)}"
        for r, g in zip(ref, got):
            assert tuple(r.shape) == g.shape, f"shape {tuple(r.shape)} vs {g.shape} at {(b, s)}"
            if g.size:
                errs.append(float(np.max(np.abs(r.numpy() - g))))
        kept.append((b, s))
    return kept, dropped, max(errs)


def main(only=None):
    torch.set_num_threads(1)
    os.makedirs(HERE, exist_ok=True)
    manifest, table, failures = [], [], []
    for idx, v in enumerate(VARIANTS):
        module, nonlin, bi, bf, head, init, ret, names, exporter = v
        fname = variant_name(v)
        if only and not any(s in fname for s in only):
            continue
        path = os.path.join(HERE, fname)
        if exporter == "dy":  # fresh interpreter per dynamo export (see the docstring)
            r = subprocess.run([sys.executable, os.path.abspath(__file__), "--export-one", str(idx)],
                               capture_output=True, text=True)
            err_text = r.stderr.strip().splitlines()[-1:] if r.returncode else None
        else:
            try:
                export_one(idx)
                err_text = None
            except Exception as e:  # noqa: BLE001
                err_text = [f"{type(e).__name__}: {e}"]
        if err_text is not None:
            failures.append((fname, f"export failed: {' '.join(err_text)[:300]}"))
            continue
        model, make_inputs, in_names, out_names, (isz, hsz, osz), (bname, sname) = build(idx)
        gen = torch.Generator().manual_seed(idx)
        ex_seq = example_seq(idx)
        make_inputs(EXAMPLE["batch"], ex_seq, gen)  # same stream as the export example

        m = onnx.load(path)
        onnx.checker.check_model(path)
        opset = next(o.version for o in m.opset_import if o.domain in ("", "ai.onnx"))
        inputs = {i.name: dims_of(i) for i in m.graph.input}
        outputs = {o.name: dims_of(o) for o in m.graph.output}
        xb, xs = (0, 1) if bf else (1, 0)
        x_dims = inputs[in_names[0]]
        assert x_dims[xb] == bname and x_dims[xs] == sname, f"{fname}: input dims {x_dims}"
        sizes = list(dict.fromkeys(CHECK_SIZES + [(1, ex_seq), (EXAMPLE["batch"], ex_seq)]))
        try:
            kept, dropped, err = check(idx, path, sizes, make_inputs, model, in_names, out_names, gen)
            assert kept, "onnxruntime refused every size"
            assert err <= TOL, f"max abs err {err}"
        except Exception as e:  # noqa: BLE001
            failures.append((fname, f"onnxruntime check failed: {type(e).__name__}: {str(e)[:300]}"))
            for p in (path, path + ".data"):
                if os.path.exists(p):
                    os.remove(p)
            continue

        ops = collections.Counter(n.op_type for n in m.graph.node)
        n_head = 2 if head == "chunk2" else 1
        stale = exporter == "dy" and head not in ("last", "none")
        entry = {
            "file": fname,
            "module": module,
            "nonlinearity": nonlin if module == "RNN" else None,
            "exporter": "torchscript" if exporter.startswith("ts") else "dynamo",
            "opset": opset,
            "layers": 1,
            "bidirectional": bi,
            "batch_first": bf,
            "initial_state": init,
            "returns_state": ret,
            "head": head,
            "head_description": head_description(head, bf),
            "names": names,
            "dims": {"batch": bname, "seq": sname},
            "input_size": isz,
            "hidden_size": hsz,
            "output_size": osz if (head.startswith("fc") or head == "last") else None,
            "inputs": inputs,
            "outputs": list(outputs),
            "output_shapes": outputs,
            "head_outputs": list(outputs)[:n_head],
            "declared_output_dims_stale": stale,
            "example_sizes": {"batch": EXAMPLE["batch"], "seq": ex_seq},
            "static_dims": [],
            "static_dims_reason": {},
            "verified_sizes": [{bname: b, sname: s} for b, s in kept],
            "dropped_sizes": [{"sizes": {bname: b, sname: s}, "reason": why} for (b, s), why in dropped],
            "external_data": (fname + ".data") if exporter == "dy" else None,
            "op_types": sorted(ops),
            "slices": slice_summary(m),
        }
        if head == "split2":
            entry["refused"] = SPLIT_REFUSED
        manifest.append(entry)
        table.append((fname, opset, " ".join(f"{b},{s}" for b, s in kept), err,
                      " ".join(f"{b},{s}" for (b, s), _ in dropped) or "-",
                      " ".join(f"{k}:{c}" for k, c in sorted(ops.items()))))

    w = max(len(r[0]) for r in table) if table else 10
    print(f"{'file':{w}s} opset {'verified (batch,seq)':30s} {'max_err':>8s} dropped  ops")
    for f, o, s, e, d, ops in table:
        print(f"{f:{w}s} {o:5d} {s:30s} {e:8.1e} {d:8s} {ops}")
    print(f"{len(table)} exported and verified, {len(failures)} failed")
    for f, why in failures:
        print(f"FAILED {f}: {why}")
    if not only:
        with open(os.path.join(HERE, "manifest.json"), "w") as fh:
            json.dump(manifest, fh, indent=1)
            fh.write("\n")
    return 1 if failures else 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--export-one"]:
        export_one(int(sys.argv[2]))
    else:
        sys.exit(main(sys.argv[1:]))
