#!/usr/bin/env python3
"""Export the streaming test models (tests/exports/stream/): small PyTorch models shaped like the
ones users stream (a keyword spotter, a denoiser's mask estimator, a sequence tagger), with a
dynamic batch and time axis, by the TorchScript exporter (opset 14, suffix _ts) and the
torch.export-based one (suffix _dy). Four of them stream (per-step heads, last-step heads, both);
two don't (a Conv kernel over time, a mean over time), and the tests check the reason given.
Each export is checked with onnxruntime against torch at two sizes.

Requires torch (2.13 was used), onnxscript, onnx, onnxruntime.

    python tests/exports/stream/make_stream_exports.py
"""
import os

import numpy as np
import onnxruntime as ort
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))


class KeywordSpotter(nn.Module):
    """Per-step Linear + ReLU front end, 2-layer LSTM, per-step class scores and the last step's."""

    def __init__(self):
        super().__init__()
        self.front = nn.Linear(8, 12)
        self.lstm = nn.LSTM(12, 16, num_layers=2, batch_first=True)
        self.head = nn.Linear(16, 4)

    def forward(self, x):
        y, _ = self.lstm(torch.relu(self.front(x)))
        scores = torch.softmax(self.head(y), dim=-1)
        return scores, scores[:, -1]


class MaskEstimator(nn.Module):
    """A denoiser's mask: pointwise Conv1d over features, GRU, sigmoid mask applied to the input."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Conv1d(6, 10, kernel_size=1)
        self.gru = nn.GRU(10, 12, batch_first=True)
        self.mask = nn.Linear(12, 6)

    def forward(self, x):  # x: [batch, time, 6]
        z = self.proj(x.transpose(1, 2)).transpose(1, 2)
        y, h = self.gru(z)
        m = torch.sigmoid(self.mask(y))
        return torch.where(m > 0.1, m * x, torch.zeros_like(x)), h


class Tagger(nn.Module):
    """Seq-first RNN with LayerNorm and a Linear head per step."""

    def __init__(self):
        super().__init__()
        self.rnn = nn.RNN(5, 9)
        self.norm = nn.LayerNorm(9)
        self.head = nn.Linear(9, 3)

    def forward(self, x):  # x: [time, batch, 5]
        y, _ = self.rnn(x)
        return self.head(self.norm(y))


class ConvFrontEnd(nn.Module):
    """Conv1d with kernel 3 over time before a GRU: reads neighbouring steps, can't stream."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(4, 8, kernel_size=3, padding=1)
        self.gru = nn.GRU(8, 8, batch_first=True)

    def forward(self, x):
        y, _ = self.gru(self.conv(x.transpose(1, 2)).transpose(1, 2))
        return y


class MeanPool(nn.Module):
    """LSTM then the mean over time: every output depends on every step, can't stream."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(4, 8, batch_first=True)

    def forward(self, x):
        y, _ = self.lstm(x)
        return y.mean(dim=1)


MODELS = [  # (file stem, module, batch-first input feature size or None for seq-first, exporters)
    ("kws_lstm", KeywordSpotter, 8, ("ts", "dy")),
    ("mask_gru", MaskEstimator, 6, ("ts",)),
    ("tagger_rnn_seqfirst", Tagger, None, ("ts",)),
    ("conv_time_gru", ConvFrontEnd, 4, ("ts",)),
    ("meanpool_lstm", MeanPool, 4, ("ts",)),
]


def export(stem, module, features, exporter):
    torch.manual_seed(0)
    model = module().eval()
    size = features or 5
    batch_first = features is not None
    example = torch.randn(3, 7, size) if batch_first else torch.randn(7, 3, size)
    path = os.path.join(HERE, f"{stem}_{exporter}.onnx")
    with torch.no_grad():
        outputs = model(example)
    n_out = len(outputs) if isinstance(outputs, tuple) else 1
    names = [f"out{k}" for k in range(n_out)]
    if exporter == "ts":
        axes = {0: "batch", 1: "seq"} if batch_first else {0: "seq", 1: "batch"}
        torch.onnx.export(model, (example,), path, dynamo=False, opset_version=14, input_names=["x"],
                          output_names=names, dynamic_axes={"x": axes})
    else:
        dims = {0: torch.export.Dim("batch", max=64), 1: torch.export.Dim("seq", max=1024)}
        torch.onnx.export(model, (example,), path, dynamo=True, input_names=["x"], output_names=names,
                          dynamic_shapes={"x": dims}, external_data=False)
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    for b, t in [(1, 1), (2, 5)]:
        x = torch.randn(b, t, size) if batch_first else torch.randn(t, b, size)
        with torch.no_grad():
            want = model(x)
        want = want if isinstance(want, tuple) else (want,)
        got = session.run(None, {session.get_inputs()[0].name: x.numpy()})
        for w, g in zip(want, got):
            np.testing.assert_allclose(g, w.numpy(), rtol=1e-4, atol=1e-5)
    print("wrote", os.path.relpath(path))


if __name__ == "__main__":
    for stem, module, features, exporters in MODELS:
        for exporter in exporters:
            export(stem, module, features, exporter)
