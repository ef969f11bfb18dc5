#!/usr/bin/env python3
"""Export the benchmark models in samples/bench/ and write models.json.

All models: torch.onnx.export(dynamo=False, opset_version=14), batch_first=True,
Linear(hidden*dirs, 5) head on the last step (fc(out[:, -1, :])), input
"input" [batch, seq, input_size], output "output" [batch, 5], dynamic axes
'batch' (dim 0) and 'seq' (dim 1). Weights are stored inline.

Requires torch (2.13 was used), onnx and onnxruntime.

    python samples/bench/export_bench.py
"""
import collections
import json
import os

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
OUTPUT_SIZE = 5

# file, module, input_size, hidden_size, num_layers, bidirectional, bench batch, bench seq, description
MODELS = [
    ("rnn_i10_h20.onnx", "RNN", 10, 20, 1, False, 1, 5, "nn.RNN(10, 20) + Linear(20, 5), seed size"),
    ("lstm_i10_h20.onnx", "LSTM", 10, 20, 1, False, 1, 5, "nn.LSTM(10, 20) + Linear(20, 5), seed size"),
    ("gru_i10_h20.onnx", "GRU", 10, 20, 1, False, 1, 5, "nn.GRU(10, 20) + Linear(20, 5), seed size"),
    ("lstm_i32_h64.onnx", "LSTM", 32, 64, 1, False, 1, 50, "nn.LSTM(32, 64) + Linear(64, 5)"),
    ("gru_i64_h128.onnx", "GRU", 64, 128, 1, False, 1, 100, "nn.GRU(64, 128) + Linear(128, 5)"),
    ("lstm_i64_h256.onnx", "LSTM", 64, 256, 1, False, 1, 100, "nn.LSTM(64, 256) + Linear(256, 5)"),
    ("lstm_i64_h512.onnx", "LSTM", 64, 512, 1, False, 1, 100, "nn.LSTM(64, 512) + Linear(512, 5)"),
    ("lstm2bi_i64_h256.onnx", "LSTM", 64, 256, 2, True, 8, 100,
     "nn.LSTM(64, 256, num_layers=2, bidirectional=True) + Linear(512, 5)"),
]


class LastStep(nn.Module):
    def __init__(self, module, input_size, hidden_size, num_layers, bidirectional):
        super().__init__()
        self.rnn = getattr(nn, module)(input_size, hidden_size, num_layers=num_layers,
                                       bidirectional=bidirectional, batch_first=True)
        self.fc = nn.Linear(hidden_size * (2 if bidirectional else 1), OUTPUT_SIZE)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.fc(out[:, -1, :])


def main():
    rows = []
    gen = torch.Generator().manual_seed(1234)
    for fname, module, isz, hsz, layers, bi, bbatch, bseq, desc in MODELS:
        torch.manual_seed(0)
        model = LastStep(module, isz, hsz, layers, bi).eval()
        path = os.path.join(HERE, fname)
        torch.onnx.export(
            model, (torch.randn(2, 3, isz, generator=gen),), path,
            dynamo=False, opset_version=14,
            input_names=["input"], output_names=["output"],
            dynamic_axes={"input": {0: "batch", 1: "seq"}, "output": {0: "batch"}},
        )
        m = onnx.load(path)
        onnx.checker.check_model(m)
        ops = dict(collections.Counter(n.op_type for n in m.graph.node))
        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        errs = []
        for b, s in ((1, 1), (bbatch, bseq)):
            x = torch.randn(b, s, isz, generator=gen)
            with torch.no_grad():
                ref = model(x).numpy()
            got = sess.run(None, {"input": x.numpy()})[0]
            assert ref.shape == got.shape
            errs.append(float(np.max(np.abs(ref - got))))
        assert max(errs) < 1e-5, (fname, errs)
        size = os.path.getsize(path)
        print(f"{fname:24s} {size:>10d} bytes  max_abs_err={max(errs):.2g}  ops={ops}")
        rows.append({"file": fname, "batch": bbatch, "seq": bseq, "description": desc,
                     "input_size": isz, "hidden_size": hsz, "num_layers": layers,
                     "bidirectional": bi})
    with open(os.path.join(HERE, "models.json"), "w") as f:
        json.dump(rows, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
