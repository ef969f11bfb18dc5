#!/usr/bin/env python3
"""Export the real-PyTorch ONNX variants the test suite checks (tests/exports/).

Each variant is a small nn.RNN / nn.LSTM / nn.GRU (input 3-5, hidden 4-7,
output 2-3) wrapped with an optional Linear head, exported by either

  * the TorchScript exporter: torch.onnx.export(dynamo=False, opset_version=14)
    with dynamic_axes 'batch' and 'seq'; weights inline;        suffix _ts
  * the torch.export-based exporter: torch.onnx.export(dynamo=True) at its
    default opset, dynamic_shapes Dim('batch') / Dim('seq');    suffix _dy
    weights in an external data file X.onnx.data beside X.onnx.

torch.onnx's own external-data save only moves tensors larger than 256 bytes
out of the model, which for these tiny models is none or few, so after the
export the model is re-saved with every float initializer of 2+ elements
(all weights and biases) in X.onnx.data; scalar / int64 shape constants stay
inline.  The graph itself is exactly what torch produced.

Dims the dynamo exporter cannot keep dynamic are exported static (the
integer shows in the manifest's "inputs", plus "static_dims" and
"static_dims_reason"):
  * nn.RNN: torch.export unrolls the recurrence over the example seq length
    (7): MatMul/Add/Tanh|Relu per step, a negative-step Slice for the reverse
    direction.  seq static.
  * seq-first (batch_first=False) LSTM/GRU: torch 2.13 bakes the example seq
    into the Reshape after the ONNX LSTM/GRU node, so a "dynamic" seq fails in
    onnxruntime at any other length; these are exported with seq static.
  * bidirectional seq-first GRU: torch.export also specialises batch.
torch 2.13's dynamo exporter patches in a while_loop LSTM/GRU decomposition
(that is what keeps seq dynamic) but it only takes effect for the first export
in a process, so each dynamo export runs in a fresh interpreter.

Every model is checked with onnxruntime against torch at two (batch, seq)
sizes and written to manifest.json with the shapes read back from the file.
File names: {module}[_{nonlin}]_l{layers}_{uni|bi}_{bf|sf}_{h0|noh0}_{head}[_state]_{ts|dy}.onnx
(bf = batch_first, sf = seq first).

Requires torch (2.13 was used), onnxscript, onnx, onnxruntime.

    python tests/exports/make_exports.py
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

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLE = {"batch": 3, "seq": 7}
CHECK_SIZES = [(1, 1), (3, 7), (2, 4)]  # (batch, seq) pairs verified with onnxruntime
TOL = 1e-5


def static_reason(exporter, module, bidirectional, batch_first, dim):
    """Why the dynamo exporter left `dim` static (see notes in export_one)."""
    if exporter != "dynamo":
        return None
    if dim == "seq":
        if module == "RNN":
            return "torch.export unrolls nn.RNN over the example seq length"
        if not batch_first:
            return (f"torch 2.13 seq-first {module} export bakes the example seq into a "
                    "Reshape after the ONNX op, so seq was exported static")
    if dim == "batch" and module == "GRU" and bidirectional and not batch_first:
        return ("torch.export's while_loop GRU decomposition specialises batch for "
                "bidirectional seq-first GRU")
    return "unknown"

# (module, nonlinearity, layers, bidirectional, batch_first, initial_state, head, return_state, exporter)
# head: "last" = fc(last step), "every" = fc(out), "none" = raw out sequence.
# return_state: final h_n (and c_n for LSTM) are extra outputs.
VARIANTS = [
    # ---- TorchScript exporter, opset 14 ----
    ("RNN", "tanh", 1, False, True, False, "last", False, "torchscript"),
    ("RNN", "tanh", 1, True, True, False, "none", True, "torchscript"),
    ("RNN", "tanh", 2, True, False, True, "every", False, "torchscript"),
    ("RNN", "tanh", 3, True, True, False, "last", False, "torchscript"),
    ("RNN", "relu", 1, False, False, True, "last", False, "torchscript"),
    ("RNN", "relu", 1, True, False, False, "none", False, "torchscript"),
    ("RNN", "relu", 2, True, True, False, "every", False, "torchscript"),
    ("RNN", "relu", 3, False, True, True, "last", True, "torchscript"),
    ("LSTM", None, 1, False, True, False, "last", False, "torchscript"),
    ("LSTM", None, 1, True, False, False, "last", False, "torchscript"),
    ("LSTM", None, 1, False, False, True, "none", True, "torchscript"),
    ("LSTM", None, 2, False, True, True, "every", False, "torchscript"),
    ("LSTM", None, 2, True, True, True, "last", True, "torchscript"),
    ("LSTM", None, 3, True, False, False, "every", False, "torchscript"),
    ("LSTM", None, 3, False, True, False, "last", False, "torchscript"),
    ("GRU", None, 1, False, True, False, "last", False, "torchscript"),
    ("GRU", None, 1, True, True, True, "every", False, "torchscript"),
    ("GRU", None, 2, False, False, False, "last", False, "torchscript"),
    ("GRU", None, 2, True, False, True, "last", True, "torchscript"),
    ("GRU", None, 3, False, True, True, "every", False, "torchscript"),
    ("GRU", None, 3, True, True, False, "none", False, "torchscript"),
    # ---- torch.export-based (dynamo) exporter, default opset ----
    ("RNN", "tanh", 1, False, True, False, "last", False, "dynamo"),
    ("RNN", "tanh", 1, True, True, False, "last", False, "dynamo"),
    ("RNN", "tanh", 2, True, False, True, "every", False, "dynamo"),
    ("RNN", "relu", 1, False, True, True, "last", True, "dynamo"),
    ("RNN", "relu", 2, True, True, False, "last", False, "dynamo"),
    ("LSTM", None, 1, False, True, False, "last", False, "dynamo"),
    ("LSTM", None, 1, True, False, True, "every", False, "dynamo"),
    ("LSTM", None, 2, False, True, True, "last", True, "dynamo"),
    ("LSTM", None, 2, True, True, False, "last", False, "dynamo"),
    ("LSTM", None, 3, False, False, False, "none", False, "dynamo"),
    ("GRU", None, 1, False, True, False, "last", False, "dynamo"),
    ("GRU", None, 1, True, True, True, "last", True, "dynamo"),
    ("GRU", None, 2, True, False, False, "every", False, "dynamo"),
    ("GRU", None, 2, False, True, True, "last", False, "dynamo"),
    ("GRU", None, 1, False, False, True, "last", True, "dynamo"),
]


class Wrapper(nn.Module):
    def __init__(self, module, nonlinearity, input_size, hidden_size, output_size,
                 layers, bidirectional, batch_first, head, return_state):
        super().__init__()
        kw = {"nonlinearity": nonlinearity} if module == "RNN" else {}
        self.rnn = getattr(nn, module)(input_size, hidden_size, num_layers=layers,
                                       bidirectional=bidirectional, batch_first=batch_first, **kw)
        self.fc = nn.Linear(hidden_size * (2 if bidirectional else 1), output_size) if head != "none" else None
        self.batch_first = batch_first
        self.head = head
        self.return_state = return_state
        self.is_lstm = module == "LSTM"

    def _finish(self, out, state):
        if self.head == "last":
            y = self.fc(out[:, -1, :] if self.batch_first else out[-1])
        elif self.head == "every":
            y = self.fc(out)
        else:
            y = out
        if not self.return_state:
            return y
        if self.is_lstm:
            return y, state[0], state[1]
        return y, state


class NoState(Wrapper):
    def forward(self, x):
        out, state = self.rnn(x)
        return self._finish(out, state)


class WithH0(Wrapper):
    def forward(self, x, h0):
        out, state = self.rnn(x, h0)
        return self._finish(out, state)


class WithH0C0(Wrapper):
    def forward(self, x, h0, c0):
        out, state = self.rnn(x, (h0, c0))
        return self._finish(out, state)


def variant_name(v):
    module, nonlin, layers, bi, bf, init, head, ret, exporter = v
    parts = [module.lower()] + ([nonlin] if module == "RNN" else [])
    parts += [f"l{layers}", "bi" if bi else "uni", "bf" if bf else "sf", "h0" if init else "noh0", head]
    if ret:
        parts.append("state")
    parts.append("ts" if exporter == "torchscript" else "dy")
    return "_".join(parts) + ".onnx"


def externalize_weights(path):
    """Re-save `path` with every float initializer of >= 2 elements in `path`.data."""
    model = onnx.load(path)  # pulls any external data torch wrote into memory
    data_name = os.path.basename(path) + ".data"
    data_path = path + ".data"
    if os.path.exists(data_path):
        os.remove(data_path)
    moved = 0
    for t in model.graph.initializer:
        if t.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE,
                           onnx.TensorProto.FLOAT16) and math.prod(t.dims) >= 2:
            if not t.HasField("raw_data"):
                t.CopyFrom(onnx.numpy_helper.from_array(onnx.numpy_helper.to_array(t), t.name))
            set_external_data(t, data_name)
            moved += 1
    onnx.save_model(model, path)
    return moved


def dims_of(value_info):
    return [d.dim_param if d.dim_param else d.dim_value
            for d in value_info.type.tensor_type.shape.dim]


def build(idx):
    """Model, input maker and I/O names for VARIANTS[idx] (deterministic)."""
    module, nonlin, layers, bi, bf, init, head, ret, exporter = VARIANTS[idx]
    isz, hsz, osz = 3 + idx % 3, 4 + idx % 4, 2 + idx % 2
    dirs = 2 if bi else 1
    torch.manual_seed(1000 + idx)
    cls = (WithH0C0 if module == "LSTM" else WithH0) if init else NoState
    model = cls(module, nonlin, isz, hsz, osz, layers, bi, bf, head, ret).eval()

    def make_inputs(batch, seq, gen):
        x = torch.randn(*((batch, seq, isz) if bf else (seq, batch, isz)), generator=gen)
        ins = [x]
        if init:
            ins.append(torch.randn(layers * dirs, batch, hsz, generator=gen))
            if module == "LSTM":
                ins.append(torch.randn(layers * dirs, batch, hsz, generator=gen))
        return tuple(ins)

    in_names = ["input"] + (["h0"] + (["c0"] if module == "LSTM" else []) if init else [])
    out_names = ["output"] + (["h_n"] + (["c_n"] if module == "LSTM" else []) if ret else [])
    return model, make_inputs, in_names, out_names, (isz, hsz, osz)


def export_one(idx):
    """Export VARIANTS[idx] to tests/exports/<name>.onnx (+ .data for dynamo)."""
    module, nonlin, layers, bi, bf, init, head, ret, exporter = VARIANTS[idx]
    path = os.path.join(HERE, variant_name(VARIANTS[idx]))
    for p in (path, path + ".data"):
        if os.path.exists(p):
            os.remove(p)
    model, make_inputs, in_names, out_names, _ = build(idx)
    example = make_inputs(EXAMPLE["batch"], EXAMPLE["seq"], torch.Generator().manual_seed(idx))
    xb, xs = (0, 1) if bf else (1, 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if exporter == "torchscript":
            dyn = {"input": {xb: "batch", xs: "seq"}}
            for n in in_names[1:] + out_names[1:]:
                dyn[n] = {1: "batch"}
            dyn["output"] = {0: "batch"} if head == "last" else {xb: "batch", xs: "seq"}
            torch.onnx.export(model, example, path, dynamo=False, opset_version=14,
                              input_names=in_names, output_names=out_names,
                              dynamic_axes=dyn)
        else:
            B, S = torch.export.Dim("batch"), torch.export.Dim("seq")
            ds = {"x": {xb: B, xs: S}}
            if module in ("LSTM", "GRU") and not bf:
                # torch 2.13 bug: the seq-first LSTM/GRU translation bakes the
                # example seq length into the Reshape after the ONNX LSTM/GRU
                # node, so a "dynamic" seq fails in onnxruntime for any other
                # length.  Export seq static instead (recorded in manifest).
                ds["x"] = {xb: B}
            if init:
                ds["h0"] = {1: B}
                if module == "LSTM":
                    ds["c0"] = {1: B}
            torch.onnx.export(model, example, path, dynamo=True,
                              input_names=in_names, output_names=out_names,
                              dynamic_shapes=ds, external_data=True, verbose=False)
            externalize_weights(path)
            assert os.path.getsize(path + ".data") > 0


def main(only=None):
    torch.set_num_threads(1)
    manifest, table, failures = [], [], []
    for idx, v in enumerate(VARIANTS):
        module, nonlin, layers, bi, bf, init, head, ret, exporter = v
        fname = variant_name(v)
        if only and not any(s in fname for s in only):
            continue
        path = os.path.join(HERE, fname)
        # torch 2.13's dynamo exporter patches in a while_loop LSTM/GRU
        # decomposition (dynamic seq) that only takes effect for the first
        # export in a process; later exports specialise seq.  So each dynamo
        # export runs in a fresh interpreter.
        if exporter == "dynamo":
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
        model, make_inputs, in_names, out_names, (isz, hsz, osz) = build(idx)
        xb, xs = (0, 1) if bf else (1, 0)
        gen = torch.Generator().manual_seed(idx)
        make_inputs(EXAMPLE["batch"], EXAMPLE["seq"], gen)  # same stream as the export example

        m = onnx.load(path)  # by path: resolves X.onnx.data
        onnx.checker.check_model(path)
        opset = next(o.version for o in m.opset_import if o.domain in ("", "ai.onnx"))
        inputs = {i.name: dims_of(i) for i in m.graph.input}
        outputs = {o.name: dims_of(o) for o in m.graph.output}
        x_dims = inputs["input"]
        static = [n for n, ax in (("batch", xb), ("seq", xs)) if not isinstance(x_dims[ax], str)]
        sizes = [(b, EXAMPLE["seq"] if "seq" in static else s) for b, s in CHECK_SIZES]
        if "batch" in static:
            sizes = [(EXAMPLE["batch"], s) for _, s in sizes]
        sizes = list(dict.fromkeys(sizes))
        try:
            sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
            errs = []
            for b, s in sizes:
                ins = make_inputs(b, s, gen)
                with torch.no_grad():
                    ref = model(*ins)
                ref = (ref,) if isinstance(ref, torch.Tensor) else ref
                got = sess.run(out_names, dict(zip(in_names, (t.numpy() for t in ins))))
                for r, g in zip(ref, got):
                    assert tuple(r.shape) == g.shape, f"shape {tuple(r.shape)} vs {g.shape} at {(b, s)}"
                    errs.append(float(np.max(np.abs(r.numpy() - g))))
            err = max(errs)
            assert err <= TOL, f"max abs err {err}"
        except Exception as e:  # noqa: BLE001
            failures.append((fname, f"onnxruntime check failed: {type(e).__name__}: {str(e)[:300]}"))
            for p in (path, path + ".data"):
                if os.path.exists(p):
                    os.remove(p)
            continue

        ops = collections.Counter(n.op_type for n in m.graph.node)
        entry = {
            "file": fname,
            "module": module,
            "nonlinearity": nonlin if module == "RNN" else None,
            "exporter": exporter,
            "opset": opset,
            "layers": layers,
            "bidirectional": bi,
            "batch_first": bf,
            "initial_state": init,
            "head": head,
            "returns_state": ret,
            "input_size": isz,
            "hidden_size": hsz,
            "output_size": osz if head != "none" else None,
            "inputs": inputs,
            "outputs": list(outputs),
            "output_shapes": outputs,
            "example_sizes": dict(EXAMPLE),
            "static_dims": static,
            "static_dims_reason": {d: static_reason(exporter, module, bi, bf, d) for d in static},
            "verified_sizes": [{"batch": b, "seq": s} for b, s in sizes],
            "external_data": (fname + ".data") if exporter == "dynamo" else None,
            "op_types": sorted(ops),
        }
        manifest.append(entry)
        table.append((fname, opset, "x".join(f"({b},{s})" for b, s in sizes), err,
                      ",".join(static) or "-", " ".join(f"{k}:{c}" for k, c in sorted(ops.items()))))

    w = max(len(r[0]) for r in table) if table else 10
    print(f"{'file':{w}s} opset {'checked (batch,seq)':19s} {'max_err':>8s} static  ops")
    for f, o, s, e, st, ops in table:
        print(f"{f:{w}s} {o:5d} {s:19s} {e:8.1e} {st:7s} {ops}")
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
