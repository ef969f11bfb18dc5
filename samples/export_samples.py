#!/usr/bin/env python3
"""Export the seed sample models (samples/simple_{rnn,lstm,gru}.onnx).

Requires torch (2.13 was used), onnx and onnxruntime. The committed .onnx
files are what tests and users consume; this script only documents and
reproduces how they were made.

    python samples/export_samples.py
"""
import collections
import os

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
INPUT_SIZE, HIDDEN_SIZE, OUTPUT_SIZE = 10, 20, 5
EXAMPLE_BATCH, EXAMPLE_SEQ = 3, 5


class SimpleRNN(nn.Module):
    def __init__(self, input_size=INPUT_SIZE, hidden_size=HIDDEN_SIZE, output_size=OUTPUT_SIZE):
        super().__init__()
        self.rnn = nn.RNN(input_size, hidden_size, batch_first=True)
        self.fc = nn.Linear(hidden_size, output_size)

    def forward(self, x, hidden):
        out, hidden = self.rnn(x, hidden)
        return self.fc(out[:, -1, :]), hidden


class SimpleGRU(nn.Module):
    def __init__(self, input_size=INPUT_SIZE, hidden_size=HIDDEN_SIZE, output_size=OUTPUT_SIZE):
        super().__init__()
        self.gru = nn.GRU(input_size, hidden_size, batch_first=True)
        self.fc = nn.Linear(hidden_size, output_size)

    def forward(self, x, hidden):
        out, hidden = self.gru(x, hidden)
        return self.fc(out[:, -1, :]), hidden


class SimpleLSTM(nn.Module):
    def __init__(self, input_size=INPUT_SIZE, hidden_size=HIDDEN_SIZE, output_size=OUTPUT_SIZE):
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden_size, batch_first=True)
        self.fc = nn.Linear(hidden_size, output_size)

    def forward(self, x):
        _, (h_n, _) = self.lstm(x)
        return self.fc(h_n.squeeze(0))


def export(model, args, path, input_names, output_names, dynamic_axes):
    model.eval()
    torch.onnx.export(
        model, args, path,
        dynamo=False, opset_version=14,
        input_names=input_names, output_names=output_names,
        dynamic_axes=dynamic_axes,
    )
    m = onnx.load(path)
    onnx.checker.check_model(m)
    ops = collections.Counter(n.op_type for n in m.graph.node)
    print(f"{os.path.basename(path)}: opset {m.opset_import[0].version}, "
          f"{os.path.getsize(path)} bytes, ops {dict(ops)}")
    for v in list(m.graph.input) + list(m.graph.output):
        dims = [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
        print(f"    {v.name}: {dims}")
    return m


def check(model, path, make_inputs, sizes=((1, 1), (EXAMPLE_BATCH, EXAMPLE_SEQ), (4, 9))):
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    worst = 0.0
    for batch, seq in sizes:
        tin = make_inputs(batch, seq)
        with torch.no_grad():
            tout = model(*tin)
        if isinstance(tout, torch.Tensor):
            tout = (tout,)
        oout = sess.run(None, {n: t.numpy() for n, t in zip(names, tin)})
        for t, o in zip(tout, oout):
            assert tuple(t.shape) == o.shape, (t.shape, o.shape)
            err = float(np.max(np.abs(t.numpy() - o)))
            worst = max(worst, err)
            print(f"    batch={batch} seq={seq} shape={o.shape} max_abs_err={err:.3g}")
    assert worst < 1e-5, worst
    return worst


def main():
    gen = torch.Generator().manual_seed(1234)

    def rand(*shape):
        return torch.randn(*shape, generator=gen)

    # (a) SimpleRNN: input + hidden in, output + next_hidden out
    torch.manual_seed(0)
    rnn = SimpleRNN().eval()
    path = os.path.join(HERE, "simple_rnn.onnx")
    export(rnn, (rand(EXAMPLE_BATCH, EXAMPLE_SEQ, INPUT_SIZE), rand(1, EXAMPLE_BATCH, HIDDEN_SIZE)),
           path, ["input", "hidden"], ["output", "next_hidden"],
           {"input": {0: "batch", 1: "seq"}, "hidden": {1: "batch"},
            "output": {0: "batch"}, "next_hidden": {1: "batch"}})
    check(rnn, path, lambda b, s: (rand(b, s, INPUT_SIZE), rand(1, b, HIDDEN_SIZE)))

    # (b) SimpleLSTM: input in, output out
    torch.manual_seed(0)
    lstm = SimpleLSTM().eval()
    path = os.path.join(HERE, "simple_lstm.onnx")
    export(lstm, (rand(EXAMPLE_BATCH, EXAMPLE_SEQ, INPUT_SIZE),), path, ["input"], ["output"],
           {"input": {0: "batch", 1: "seq"}, "output": {0: "batch"}})
    check(lstm, path, lambda b, s: (rand(b, s, INPUT_SIZE),))

    # (c) SimpleGRU: GRU counterpart of (a)
    torch.manual_seed(0)
    gru = SimpleGRU().eval()
    path = os.path.join(HERE, "simple_gru.onnx")
    export(gru, (rand(EXAMPLE_BATCH, EXAMPLE_SEQ, INPUT_SIZE), rand(1, EXAMPLE_BATCH, HIDDEN_SIZE)),
           path, ["input", "hidden"], ["output", "next_hidden"],
           {"input": {0: "batch", 1: "seq"}, "hidden": {1: "batch"},
            "output": {0: "batch"}, "next_hidden": {1: "batch"}})
    check(gru, path, lambda b, s: (rand(b, s, INPUT_SIZE), rand(1, b, HIDDEN_SIZE)))


if __name__ == "__main__":
    main()
