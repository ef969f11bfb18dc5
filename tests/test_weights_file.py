"""The weights in their own file: NAME_weights.c (compiled in, the default) and NAME.weights
(--weights-file: a binary file the program loads and passes to every call).

NAME.weights runs the same code as the compiled-in weights and gives the same bits, matching
onnxruntime; a file made from a retrained model (other values, the same code) is accepted and
gives that model's outputs, so weights update without recompiling; a file from other code, a
damaged header, NULL or a misaligned pointer get NAME_EWEIGHTS; the streaming API takes the file
too. The weights source stays under 2.5 bytes per weight byte.
"""
import ctypes
import os
import subprocess

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from conftest import assert_close, ort_run
from onnx2src import CompileError, Options, generate
from onnx2src.harness import WARNINGS, compiler

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LSTM = os.path.join(ROOT, "samples", "simple_lstm.onnx")        # x [batch, seq, 10] -> 2 outputs
KWS = os.path.join(ROOT, "tests", "exports", "stream", "kws_lstm_ts.onnx")
EWEIGHTS = 7


def body(text):
    """A generated file without its provenance comment."""
    return text.split("*/\n\n", 1)[1]


def code(text):
    """NAME.c from its #include on: what the weights file's hash covers (not the file names)."""
    return text[text.index("#include"):]


def compile_library(files, workdir, name):
    for fname, content in files.items():
        with open(os.path.join(workdir, fname), "wb") as f:
            f.write(content if isinstance(content, bytes) else content.encode())
    sources = [os.path.join(workdir, f) for f in files if f.endswith(".c")]
    lib = os.path.join(workdir, f"lib{name}.so")
    done = subprocess.run([compiler(), *WARNINGS, "-O1", "-fPIC", "-shared", *sources, "-o", lib, "-lm"],
                          capture_output=True, text=True)
    assert done.returncode == 0 and not done.stderr, done.stderr
    return ctypes.CDLL(lib)


def aligned(data: bytes, offset=0):
    """`data` in memory aligned to 64 bytes (plus `offset`), kept alive by the returned array."""
    memory = np.zeros(len(data) + 128, np.uint8)
    start = (-memory.ctypes.data) % 64 + offset
    memory[start:start + len(data)] = np.frombuffer(data, np.uint8)
    return memory, ctypes.c_void_p(memory.ctypes.data + start)


def lstm_inputs(batch=1, seq=7, seed=0):
    return [np.random.default_rng(seed).standard_normal((batch, seq, 10)).astype(np.float32)]


def run(lib, name, weights, inputs, expected, dims):
    outputs = [np.zeros_like(e) for e in expected]
    pointers = [a.ctypes.data_as(ctypes.c_void_p) for a in [*inputs, *outputs]]
    status = getattr(lib, f"{name}_run")(weights, *[ctypes.c_int64(d) for d in dims], *pointers)
    return status, outputs


@pytest.fixture(scope="module")
def lstm(tmp_path_factory):
    """simple_lstm generated both ways, each compiled into a library."""
    work = tmp_path_factory.mktemp("weights")
    built = {}
    for kind in ("inline", "file"):
        folder = work / kind
        folder.mkdir()
        files = generate(LSTM, Options("c", name="m", weights_file=kind == "file"))
        built[kind] = (files, compile_library(files, str(folder), "m"))
    return built


def test_the_files_each_way(lstm):
    inline, _ = lstm["inline"]
    file, _ = lstm["file"]
    assert sorted(inline) == ["m.c", "m.h", "m_weights.c"]
    assert sorted(file) == ["m.c", "m.h", "m.weights"]
    assert isinstance(file["m.weights"], bytes) and file["m.weights"][:4] == b"O2SW"
    size = int(file["m.h"].split("#define M_WEIGHTS_BYTES ")[1].split()[0])
    assert size == len(file["m.weights"])
    assert "m_weights_float" not in file["m.c"]  # nothing compiled in


def test_weights_file_matches_compiled_in_weights_and_onnxruntime(lstm):
    x = lstm_inputs()
    expected = ort_run(LSTM, x)
    _, inline = lstm["inline"]
    files, lib = lstm["file"]
    keep, weights = aligned(files["m.weights"])
    fixed = getattr(inline, "m_run")
    outputs = [np.zeros_like(e) for e in expected]
    assert fixed(*[ctypes.c_int64(d) for d in (1, 7)],
                 *[a.ctypes.data_as(ctypes.c_void_p) for a in [*x, *outputs]]) == 0
    status, got = run(lib, "m", weights, x, expected, (1, 7))
    assert status == 0
    assert_close(got, expected, "NAME.weights")
    for a, b in zip(got, outputs):
        assert np.array_equal(a.view(np.uint32), b.view(np.uint32))  # the same code, the same bits


def test_bad_weights_are_refused(lstm):
    files, lib = lstm["file"]
    x = lstm_inputs()
    expected = ort_run(LSTM, x)
    blob = files["m.weights"]
    assert run(lib, "m", None, x, expected, (1, 7))[0] == EWEIGHTS
    keep, odd = aligned(blob, offset=4)
    assert run(lib, "m", odd, x, expected, (1, 7))[0] == EWEIGHTS
    for at in (0, 4, 8, 24, 55):  # magic, version, byte order, the code's hash
        damaged = bytearray(blob)
        damaged[at] ^= 0x40
        keep, pointer = aligned(bytes(damaged))
        assert run(lib, "m", pointer, x, expected, (1, 7))[0] == EWEIGHTS, at
    other = generate(os.path.join(ROOT, "samples", "simple_gru.onnx"), Options("c", name="m", weights_file=True))
    keep, pointer = aligned(other["m.weights"])
    assert run(lib, "m", pointer, x, expected, (1, 7))[0] == EWEIGHTS


def test_a_retrained_model_runs_on_the_same_code(lstm, tmp_path):
    """Other weight values, the same architecture: onnx2src makes the same NAME.c (but its
    provenance), and that code runs the new NAME.weights as the new model."""
    model = onnx.load(LSTM)
    rng = np.random.default_rng(5)
    for init in model.graph.initializer:
        data = numpy_helper.to_array(init)
        if data.dtype == np.float32 and data.size > 1:
            init.CopyFrom(numpy_helper.from_array(
                (data + 0.1 * rng.standard_normal(data.shape)).astype(np.float32), init.name))
    path = str(tmp_path / "retrained.onnx")
    onnx.save(model, path)
    files, lib = lstm["file"]
    retrained = generate(path, Options("c", name="m", weights_file=True))
    assert code(retrained["m.c"]) == code(files["m.c"])
    assert retrained["m.weights"] != files["m.weights"]
    x = lstm_inputs(seed=2)
    expected = ort_run(path, x)
    keep, pointer = aligned(retrained["m.weights"])
    status, got = run(lib, "m", pointer, x, expected, (1, 7))
    assert status == 0
    assert_close(got, expected, "retrained weights, old code")
    assert not np.allclose(got[0], ort_run(LSTM, x)[0])


def test_streaming_takes_the_weights_file(tmp_path):
    files = generate(KWS, Options("c", name="kws", weights_file=True, max_dims={"batch": 2, "seq": 8}))
    lib = compile_library(files, str(tmp_path), "kws")
    x = np.random.default_rng(3).standard_normal((2, 6, 8)).astype(np.float32)
    expected = ort_run(KWS, [x])
    keep, weights = aligned(files["kws.weights"])
    lib.kws_workspace_size.restype = ctypes.c_size_t
    workspace = np.zeros(lib.kws_workspace_size(ctypes.c_int64(2), ctypes.c_int64(6)) + 64, np.uint8)
    ws = ctypes.c_void_p(workspace.ctypes.data + (-workspace.ctypes.data) % 64)
    state = np.zeros(1 << 16, np.uint8)
    sp = state.ctypes.data_as(ctypes.c_void_p)
    assert lib.kws_init(sp, None, ctypes.c_int64(2)) == EWEIGHTS
    assert lib.kws_init(sp, weights, ctypes.c_int64(2)) == 0
    per_step, last = [], None
    for start, stop in ((0, 2), (2, 3), (3, 6)):
        chunk = np.ascontiguousarray(x[:, start:stop])
        outs = [np.zeros((2, stop - start, 4), np.float32), np.zeros((2, 4), np.float32)]
        status = lib.kws_step(sp, ws, weights, ctypes.c_int64(2), ctypes.c_int64(stop - start),
                              *[a.ctypes.data_as(ctypes.c_void_p) for a in [chunk, *outs]])
        assert status == 0
        per_step.append(outs[0])
        last = outs[1]
    assert_close([np.concatenate(per_step, axis=1), last], expected, "chunks with NAME.weights")


def test_numpy_refuses_a_weights_file():
    with pytest.raises(CompileError, match="--weights-file is for the C target"):
        generate(LSTM, Options("numpy", weights_file=True))


def test_weights_source_is_compact_and_exact(lstm):
    """Under 2.5 source bytes per weight byte; every float read back bit for bit (the whole
    suite runs compiled-in weights against onnxruntime; this checks the encoding itself)."""
    files, _ = lstm["inline"]
    text = body(files["m_weights.c"])
    weight_bytes = len(lstm["file"][0]["m.weights"]) - 64
    assert len(text) < 2.5 * weight_bytes, (len(text), weight_bytes)
    words = [w for line in text.splitlines() if line.startswith("0x") for w in line.rstrip(",").split(",")]
    values = np.array([int(w, 16) for w in words], np.uint64).astype("<u8")
    blob = np.frombuffer(lstm["file"][0]["m.weights"], np.uint8)[64:].view("<u8")
    assert np.array_equal(values, blob[:values.size])
