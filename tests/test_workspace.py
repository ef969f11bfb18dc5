"""The caller-owned workspace and the reentrancy it gives, against onnxruntime.

NAME_run_workspace runs each model on exactly NAME_workspace_size bytes (the harness puts guard
bytes on both sides and fails on any write outside them) and matches onnxruntime; bad
workspaces and states get their error codes; dims out of bounds have the workspace size
NAME_WORKSPACE_INVALID, a model without working memory 0 (and runs on NULL); a state of
NAME_state_size bytes from malloc streams; and a C program running two models, each in two
threads at once on different inputs with their own workspaces and stream states (malloc'd,
of NAME_workspace_size and NAME_state_size bytes), is clean under ThreadSanitizer and gives
every thread onnxruntime's outputs.
"""
import ctypes
import glob
import os
import shutil
import subprocess
import types

import numpy as np
import pytest

import onnx
from onnx import TensorProto, helper

from conftest import assert_close, build, ort_run
from onnx2src import Options, generate
from onnx2src.harness import WORKSPACE_INVALID as INVALID, CModel, CStream, Interface

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = sorted(glob.glob(os.path.join(ROOT, "samples", "*.onnx")) +
                glob.glob(os.path.join(ROOT, "tests", "exports", "*_ts.onnx")) +
                glob.glob(os.path.join(ROOT, "tests", "exports", "stream", "*.onnx")))


def random_inputs(iface, size, rng):
    env = {s: size for s in iface.symbols}
    return [rng.standard_normal(shape).astype(dtype) for (_, dtype, _), shape
            in zip(iface.inputs, iface.input_shapes(env))]


@pytest.mark.parametrize("path", MODELS, ids=os.path.basename)
def test_workspace_matches_onnxruntime(path, tmp_path):
    model = build(path, "c", tmp_path, max_dims=None)
    rng = np.random.default_rng(1)
    sizes = []
    for size in (1, 5):
        inputs = random_inputs(model.interface, size, rng)
        code, outputs = model.call(*inputs, workspace=True)
        assert code == 0
        assert_close(outputs, ort_run(path, inputs), f"size {size}")
        sizes.append(model.workspace_size(*[ctypes.c_int64(size)] * len(model.interface.symbols)))
    assert sizes[0] <= sizes[1]


def test_bad_workspace_and_state_are_refused(tmp_path):
    path = os.path.join(ROOT, "tests", "exports", "stream", "kws_lstm_ts.onnx")
    model = build(path, "c", tmp_path, max_dims={"batch": 4, "seq": 8})
    lib, x = model.lib, np.zeros((2, 3, 8), np.float32)
    outs = [np.zeros((2, 3, 4), np.float32), np.zeros((2, 4), np.float32)]
    pointers = [a.ctypes.data_as(ctypes.c_void_p) for a in [x, *outs]]
    dims = [ctypes.c_int64(2), ctypes.c_int64(3)]
    assert 0 < model.workspace_size(*dims) < INVALID
    assert model.workspace_size(ctypes.c_int64(5), ctypes.c_int64(3)) == INVALID  # batch above its bound
    assert model.workspace_size(ctypes.c_int64(0), ctypes.c_int64(3)) == INVALID  # below 1
    run = getattr(lib, "model_run_workspace")
    assert run(None, *dims, *pointers) == 5  # MODEL_EWORKSPACE
    memory = np.zeros(model.workspace_size(*dims) + 64, np.uint8)
    start = memory.ctypes.data + (-memory.ctypes.data) % 64
    aligned, odd = ctypes.c_void_p(start), ctypes.c_void_p(start + 4)
    assert run(odd, *dims, *pointers) == 5
    assert run(aligned, *dims, *pointers) == 0
    stream = CStream(model, batch=2)
    step = getattr(lib, "model_step")
    assert step(stream.pointer, aligned, ctypes.c_int64(3), ctypes.c_int64(3), *pointers) == 6  # MODEL_ESTATE
    assert step(stream.pointer, aligned, *dims, *pointers) == 0
    with pytest.raises(RuntimeError, match="model_init returned 1"):
        CStream(model, batch=5)  # above the batch bound: MODEL_EDIM


def test_a_model_without_working_memory_needs_no_workspace(tmp_path):
    """Y = Relu(X) writes straight into the output: NAME_workspace_size is 0 (not the answer for
    dims out of bounds, NAME_WORKSPACE_INVALID), and NAME_run_workspace runs on NULL."""
    graph = helper.make_graph([helper.make_node("Relu", ["X"], ["Y"])], "relu",
                              [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["n", 4])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["n", 4])])
    path = str(tmp_path / "relu.onnx")
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    model = build(path, "c", tmp_path, max_dims={"n": 8})
    header = (tmp_path / "model.h").read_text()
    assert "#define MODEL_WORKSPACE_INVALID ((size_t)-1)" in header
    assert model.workspace_size(ctypes.c_int64(8)) == 0
    assert model.workspace_size(ctypes.c_int64(9)) == INVALID
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    y = np.zeros_like(x)
    run = model.lib.model_run_workspace
    assert run(None, ctypes.c_int64(3), x.ctypes.data_as(ctypes.c_void_p), y.ctypes.data_as(ctypes.c_void_p)) == 0
    assert_close([y], ort_run(path, [x]))
    assert run(None, ctypes.c_int64(9), x.ctypes.data_as(ctypes.c_void_p), y.ctypes.data_as(ctypes.c_void_p)) == 1


def test_a_state_of_state_size_bytes_streams_chunk_by_chunk(tmp_path):
    """NAME_state_size() is sizeof(NAME_state); a state of that many bytes from malloc runs a
    sequence chunk by chunk like onnxruntime runs it whole, and after each chunk the last-step
    output holds the value for the steps so far (onnxruntime on the sequence up to there)."""
    path = os.path.join(ROOT, "tests", "exports", "stream", "kws_lstm_ts.onnx")
    files = generate(path, Options("c", name="model", max_dims={"batch": 2, "seq": 8}))
    assert "size_t model_state_size(void);" in files["model.h"]
    files["sizeof.c"] = '#include "model.h"\nsize_t test_sizeof_state(void) { return sizeof(model_state); }\n'
    model = CModel(files, "model", Interface(path), str(tmp_path), ("-O1", "-DO2S_NO_DISPATCH"))
    size, sizeof = model.lib.model_state_size, model.lib.test_sizeof_state
    size.restype = sizeof.restype = ctypes.c_size_t
    assert size() == sizeof() > 0
    libc = ctypes.CDLL(None)
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    state = types.SimpleNamespace(pointer=ctypes.c_void_p(libc.malloc(size())))
    try:
        assert model.lib.model_init(state.pointer, ctypes.c_int64(2)) == 0
        x = np.random.default_rng(4).standard_normal((2, 8, 8)).astype(np.float32)
        whole = ort_run(path, [x])
        start = 0
        for steps in (3, 1, 4):
            end = start + steps
            code, (scores, last) = model.call(x[:, start:end], state=state)
            assert code == 0
            assert_close([scores], [whole[0][:, start:end]], f"steps {start}..{end}")
            assert_close([last], [ort_run(path, [x[:, :end]])[1]], f"the last step's output after {end} steps")
            start = end
        assert_close([last], [whole[1]], "the last chunk's last-step output")
    finally:
        libc.free(state.pointer)


THREADS_MAIN = r"""
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include "a.h"
#include "b.h"

/* each thread runs both models on its own inputs, workspaces and stream states, many times */
typedef struct { int id; float *xa, *xb, ya[A_OUT], yb[B_OUT], sa[A_OUT], sb[B_OUT]; int status; } job;

static void *work(void *arg)
{
    job *j = (job *)arg;
    void *wa = malloc(a_workspace_size(BATCH, SEQ)), *wb = malloc(b_workspace_size(BATCH, SEQ));
    void *wa1 = malloc(a_workspace_size(BATCH, 1)), *wb1 = malloc(b_workspace_size(BATCH, 1));
    a_state *sa = (a_state *)malloc(a_state_size());
    b_state *sb = (b_state *)malloc(b_state_size());
    for (int r = 0; r < 20 && !j->status; r++) {
        j->status |= a_run_workspace(wa, BATCH, SEQ, j->xa, j->ya, j->ya + A_OUT0);
        j->status |= b_run_workspace(wb, BATCH, SEQ, j->xb, j->yb, j->yb + B_OUT0);
        /* the same sequences one step at a time: per-step outputs land in sa / sb, step by step */
        j->status |= a_init(sa, BATCH) | b_init(sb, BATCH);
        for (int t = 0; t < SEQ; t++) {
            float xa[BATCH * A_IN], xb[BATCH * B_IN], ya[BATCH * A_OUT0 / SEQ], yb[BATCH * B_OUT0 / SEQ];
            for (int b = 0; b < BATCH; b++) {
                for (int k = 0; k < A_IN; k++) xa[b * A_IN + k] = j->xa[(b * SEQ + t) * A_IN + k];
                for (int k = 0; k < B_IN; k++) xb[b * B_IN + k] = j->xb[(b * SEQ + t) * B_IN + k];
            }
            j->status |= a_step(sa, wa1, BATCH, 1, xa, ya, j->sa + A_OUT0);
            j->status |= b_step(sb, wb1, BATCH, 1, xb, yb, j->sb + B_OUT0);
            for (int b = 0; b < BATCH; b++) {
                for (int k = 0; k < A_OUT0 / SEQ / BATCH; k++)
                    j->sa[(b * SEQ + t) * (A_OUT0 / SEQ / BATCH) + k] = ya[b * (A_OUT0 / SEQ / BATCH) + k];
                for (int k = 0; k < B_OUT0 / SEQ / BATCH; k++)
                    j->sb[(b * SEQ + t) * (B_OUT0 / SEQ / BATCH) + k] = yb[b * (B_OUT0 / SEQ / BATCH) + k];
            }
        }
    }
    free(wa); free(wb); free(wa1); free(wb1); free(sa); free(sb);
    return NULL;
}

static void load(const char *path, float *x, size_t n)
{
    FILE *f = fopen(path, "rb");
    if (!f || fread(x, sizeof(float), n, f) != n) exit(2);
    fclose(f);
}

static void save(const char *path, const float *x, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(x, sizeof(float), n, f) != n) exit(3);
    fclose(f);
}

int main(void)
{
    static float xa[2][BATCH * SEQ * A_IN], xb[2][BATCH * SEQ * B_IN];
    static job jobs[2];
    pthread_t threads[2];
    char name[64];
    for (int i = 0; i < 2; i++) {
        sprintf(name, "xa%d.bin", i); load(name, xa[i], sizeof xa[i] / sizeof(float));
        sprintf(name, "xb%d.bin", i); load(name, xb[i], sizeof xb[i] / sizeof(float));
        jobs[i].id = i; jobs[i].xa = xa[i]; jobs[i].xb = xb[i];
        pthread_create(&threads[i], NULL, work, &jobs[i]);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(threads[i], NULL);
        if (jobs[i].status) return 1;
        sprintf(name, "ya%d.bin", i); save(name, jobs[i].ya, A_OUT);
        sprintf(name, "yb%d.bin", i); save(name, jobs[i].yb, B_OUT);
        sprintf(name, "sa%d.bin", i); save(name, jobs[i].sa, A_OUT);
        sprintf(name, "sb%d.bin", i); save(name, jobs[i].sb, B_OUT);
    }
    return 0;
}
"""


@pytest.mark.skipif(shutil.which("gcc") is None, reason="ThreadSanitizer needs gcc")
def test_two_models_in_two_threads_under_thread_sanitizer(tmp_path):
    """kws_lstm (LSTM; per-step scores [b, t, 4] and the last step's [b, 4]) as `a` and mask_gru
    (GRU; a per-step mask [b, t, 6] and h [1, b, 12]) as `b`, in one program."""
    batch, seq = 2, 6
    paths = {k: os.path.join(ROOT, "tests", "exports", "stream", f) for k, f in
             (("a", "kws_lstm_ts.onnx"), ("b", "mask_gru_ts.onnx"))}
    for k, path in paths.items():
        options = Options("c", name=k, max_dims={"batch": batch, "seq": seq})
        for fname, text in generate(path, options).items():
            (tmp_path / fname).write_text(text)
    features = {"a": 8, "b": 6}
    shapes = {"a": [(batch, seq, 4), (batch, 4)], "b": [(batch, seq, 6), (1, batch, 12)]}
    defines = [f"-DBATCH={batch}", f"-DSEQ={seq}", "-DA_IN=8", "-DB_IN=6"]
    for k in "ab":
        sizes = [int(np.prod(s)) for s in shapes[k]]
        defines += [f"-D{k.upper()}_OUT0={sizes[0]}", f"-D{k.upper()}_OUT={sum(sizes)}"]
    (tmp_path / "main.c").write_text(THREADS_MAIN)
    exe = tmp_path / "threads"
    subprocess.run(["gcc", "-std=c99", "-O1", "-g", "-fsanitize=thread", "-Wall", "-Wextra", "-Werror",
                    *defines, "main.c", "a.c", "a_weights.c", "b.c", "b_weights.c", "-o", str(exe), "-lm", "-lpthread"],
                   cwd=tmp_path, check=True, capture_output=True, text=True)
    rng = np.random.default_rng(3)
    inputs = {(k, i): rng.standard_normal((batch, seq, features[k])).astype(np.float32)
              for k in "ab" for i in range(2)}
    for (k, i), x in inputs.items():
        x.tofile(tmp_path / f"x{k}{i}.bin")
    done = subprocess.run([str(exe)], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, TSAN_OPTIONS="halt_on_error=1"))
    assert "ThreadSanitizer" not in done.stderr, done.stderr
    assert done.returncode == 0, done.stderr
    for (k, i), x in inputs.items():
        expected = ort_run(paths[k], [x])
        flat = np.fromfile(tmp_path / f"y{k}{i}.bin", np.float32)
        split = np.cumsum([int(np.prod(s)) for s in shapes[k]])[:-1]
        assert_close([p.reshape(s) for p, s in zip(np.split(flat, split), shapes[k])], expected, f"{k} thread {i}")
        flat = np.fromfile(tmp_path / f"s{k}{i}.bin", np.float32)
        assert_close([p.reshape(s) for p, s in zip(np.split(flat, split), shapes[k])], expected,
                     f"{k} thread {i}, one step at a time")
