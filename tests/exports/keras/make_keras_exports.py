#!/usr/bin/env python3
"""Export the small tf.keras models with LayerNormalization over 256 features that
tests/test_portability.py (warning-free C at -O2, -O3, -Os) and tests/test_exports.py-style
comparisons check, so the tests never need TensorFlow. Issue 17: such a model's layer norm,
exported by tf2onnx as ReduceMean / Sub / Mul / ReduceMean / Add / Sqrt / Reciprocal / Mul
over 256 features, gave gcc 12 -O2 -Wall -Wextra six -Waggressive-loop-optimizations
warnings (a dead scalar tail after the reductions' groups of eight lanes).

  keras_lstm_ln_last  Input(batch None, time None, 16) → LSTM(32) (last state) → Dense(256, tanh)
                      → LayerNormalization → Dense(4); tf2onnx opset 13: the layer norm is
                      ReduceMean / Sub / Mul / ReduceMean / Add / Sqrt / Reciprocal / Mul over
                      rows of 256. Compiled as it is and with --fix-dim batch=1 (a streaming
                      caller's batch), which makes every size of those rows known at compile
                      time: the shape that warned. (A Keras Input with batch_size=1 itself
                      exports the LSTM as a Loop, which onnx2src does not take.)
  keras_lstm_ln_seq   Input(batch None, time None, 16) → LSTM(32, every step) → Dense(256, tanh)
                      → LayerNormalization → Dense(4); tf2onnx opset 17, which writes the means
                      over the 256 features as Transpose + GlobalAveragePool.

tf2onnx names the symbolic dims unk__N (the output's apart from the input's); the script
renames them batch and time.
Weights are random from fixed seeds (LayerNormalization's gamma and beta too, so they are not
the identity). Each export is checked against Keras with onnxruntime before it is written.
Requires tensorflow-cpu and tf2onnx (TensorFlow 2.21, tf2onnx 1.17 were used), onnxruntime.

    python tests/exports/keras/make_keras_exports.py
"""
import os

import numpy as np
import onnx
import onnxruntime as ort
import tensorflow as tf
import tf2onnx

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = [("keras_lstm_ln_last", False, 13), ("keras_lstm_ln_seq", True, 17)]


def make(every_step, seed):
    tf.keras.utils.set_random_seed(seed)
    x = tf.keras.Input(shape=(None, 16), name="x")
    h = tf.keras.layers.LSTM(32, return_sequences=every_step)(x)
    h = tf.keras.layers.Dense(256, activation="tanh")(h)
    ln = tf.keras.layers.LayerNormalization(epsilon=1e-3)
    h = ln(h)
    y = tf.keras.layers.Dense(4, name="y")(h)
    model = tf.keras.Model(x, y)
    rng = np.random.default_rng(seed)
    ln.set_weights([rng.uniform(0.5, 1.5, 256).astype(np.float32), rng.uniform(-0.5, 0.5, 256).astype(np.float32)])
    return model


def rename_dims(graph, names):
    """Every dim_param of the graph's inputs, outputs and value_info renamed by `names`."""
    for vi in list(graph.input) + list(graph.output) + list(graph.value_info):
        for d in vi.type.tensor_type.shape.dim:
            if d.dim_param in names:
                d.dim_param = names[d.dim_param]


def export(name, every_step, opset, seed):
    model = make(every_step, seed)
    spec = (tf.TensorSpec((None, None, 16), tf.float32, name="x"),)
    fn = tf.function(lambda x: model(x, training=False))
    proto, _ = tf2onnx.convert.from_function(fn, input_signature=spec, opset=opset)
    proto.producer_name, proto.producer_version = "tf2onnx", tf2onnx.__version__
    batch, time = (d.dim_param for d in proto.graph.input[0].type.tensor_type.shape.dim[:2])
    out = [d.dim_param for d in proto.graph.output[0].type.tensor_type.shape.dim if d.dim_param]
    rename_dims(proto.graph, {batch: "batch", time: "time", **dict(zip(out, ["batch", "time"]))})
    onnx.checker.check_model(proto)
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(seed + 1)
    for b, t in ((3, 5), (1, 2), (1, 7)):
        x = rng.uniform(-1, 1, (b, t, 16)).astype(np.float32)
        want = model(x, training=False).numpy()
        got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    path = os.path.join(HERE, name + ".onnx")
    onnx.save(proto, path)
    ops = sorted({n.op_type for n in proto.graph.node})
    print(f"{path}: {os.path.getsize(path)} bytes, opset {opset}, ops {' '.join(ops)}")


if __name__ == "__main__":
    for k, (name, every_step, opset) in enumerate(MODELS):
        export(name, every_step, opset, seed=17 + k)
