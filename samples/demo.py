"""Run the seed samples through both targets and print them next to onnxruntime.

    python samples/demo.py            # needs a C compiler; onnxruntime if installed

For each of simple_rnn, simple_lstm and simple_gru it generates the NumPy module, runs it on a
fixed input and prints its outputs beside onnxruntime's; for simple_rnn it also builds the C
program samples/simple_rnn_main.c against the generated C and prints its output the same way.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np

import onnx2src
from onnx2src.harness import compiler, load_numpy

HERE = os.path.dirname(os.path.abspath(__file__))
BATCH, SEQ, INPUT, HIDDEN = 2, 5, 10, 20


def fixed_input():
    """The input samples/simple_rnn_main.c builds: values in [-0.75, 0.75]."""
    index = np.arange(BATCH * SEQ * INPUT).reshape(BATCH, SEQ, INPUT)
    return ((index % 7) * 0.25 - 0.75).astype(np.float32)


def onnxruntime_outputs(path, inputs):
    try:
        import onnxruntime
    except ImportError:
        return None
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    return session.run(None, {i.name: x for i, x in zip(session.get_inputs(), inputs)})


def show(label, ours, reference):
    for i, value in enumerate(ours):
        print(f"  {label:>11} output {i}: {np.array2string(value.ravel()[:5], precision=6)}")
        if reference is not None:
            print(f"  {'onnxruntime':>11} output {i}: {np.array2string(reference[i].ravel()[:5], precision=6)}"
                  f"   max |diff| {np.max(np.abs(value - reference[i])):.2e}")


def main():
    work = tempfile.mkdtemp(prefix="onnx2src-demo-")
    for name in ("simple_rnn", "simple_lstm", "simple_gru"):
        path = os.path.join(HERE, f"{name}.onnx")
        inputs = [fixed_input()]
        if name != "simple_lstm":
            inputs.append(np.zeros((1, BATCH, HIDDEN), np.float32))
        reference = onnxruntime_outputs(path, inputs)
        module = load_numpy(onnx2src.generate(path, onnx2src.Options("numpy"))[f"{name}.py"], name, work)
        print(f"{name} (first 5 values of each output):")
        show("numpy", [np.asarray(o) for o in module.run(*inputs)], reference)

    path = os.path.join(HERE, "simple_rnn.onnx")
    onnx2src.compile_model(path, onnx2src.Options("c", max_dims={"batch": BATCH}), work)
    exe = os.path.join(work, "simple_rnn")
    subprocess.run([compiler(), "-std=c99", "-O2", "-Wall", "-Wextra", "-I", work,
                    os.path.join(HERE, "simple_rnn_main.c"), os.path.join(work, "simple_rnn.c"),
                    os.path.join(work, "simple_rnn_weights.c"),
                    "-lm", "-o", exe], check=True)
    printed = subprocess.run([exe], check=True, capture_output=True, text=True).stdout
    rows = [np.array(line.split(":")[1].split(), np.float32) for line in printed.splitlines()]
    c_outputs = [np.stack(rows[:BATCH]), np.stack(rows[BATCH:])[None]]
    print("simple_rnn, C program samples/simple_rnn_main.c:")
    show("C", c_outputs, onnxruntime_outputs(path, [fixed_input(), np.zeros((1, BATCH, HIDDEN), np.float32)]))


if __name__ == "__main__":
    sys.exit(main())
