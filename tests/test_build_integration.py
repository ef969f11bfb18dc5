"""Build-time code generation as a user runs it, with the real tools: the CMake sample (Ninja and
Unix Makefiles, from fresh build folders), the Make sample and the wheel of the Python sample.
Each program's output is compared with onnxruntime; touching the model (or its external data)
regenerates on the next build, building again regenerates nothing, and `make check` (onnx2src
--check) tells a generated folder made from another model from an up-to-date one. Every build
runs on copies in tmp_path, beside copies of the sample models they read from `..`."""
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest

from conftest import assert_close, ort_run

SAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "samples")
EXPORTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "exports")
VENV_BIN = os.path.dirname(sys.executable)
BATCH, SEQ = 2, 5


def need(tool):
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed (.ci/run installs it)")


def sample_input():
    """The input every sample program builds: [2, 5, 10], ((b*5 + t)*10 + i) % 7 * 0.25 - 0.75."""
    index = np.arange(BATCH * SEQ * 10).reshape(BATCH, SEQ, 10)
    return ((index % 7) * 0.25 - 0.75).astype(np.float32)


def reference(model):
    """onnxruntime's outputs for the sample input (and a zero hidden state if the model has one)."""
    path = os.path.join(SAMPLES, f"{model}.onnx")
    inputs = [sample_input()]
    if model != "simple_lstm":
        inputs.append(np.zeros((1, BATCH, 20), np.float32))
    return ort_run(path, inputs)


def rows(stdout, label):
    """The rows a sample program printed as `label[i]: values`, as one float32 array."""
    found = re.findall(rf"^{re.escape(label)}\[\d+\]:(.*)$", stdout, re.M)
    assert found, f"no {label} rows in:\n{stdout}"
    return np.array([[float(v) for v in line.split()] for line in found], np.float32)


def copy_sample(tmp_path, sample, models):
    """tmp_path/samples/<sample> and the .onnx files (with external data) it reads from `..`."""
    root = tmp_path / "samples"
    shutil.copytree(os.path.join(SAMPLES, sample), root / sample)
    for model in models:
        shutil.copy(os.path.join(SAMPLES, model), root / os.path.basename(model))
    return root


def run(cmd, cwd, env=None, status=0):
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == status, f"{cmd} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def activated_env():
    """The environment `source .venv/bin/activate` gives: the venv's bin first on PATH."""
    env = dict(os.environ, VIRTUAL_ENV=sys.prefix)
    env["PATH"] = VENV_BIN + os.pathsep + env.get("PATH", "")
    return env


def plain_env():
    """No virtualenv active: PATH without the venv's bin."""
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if os.path.abspath(p) != os.path.abspath(VENV_BIN))
    return env


def mtimes(paths):
    return {p: os.stat(p).st_mtime_ns for p in paths}


def touch(path, built):
    """`touch path`, a clear 10 ms after the newest of the `built` files (a future mtime would
    leave it newer than every later build)."""
    newest = max(mtimes(built).values())
    while time.time_ns() < newest + 10_000_000:
        time.sleep(0.01)
    os.utime(path)


def cmake_dir():
    done = subprocess.run([sys.executable, "-m", "onnx2src", "--cmake-dir"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    folder = done.stdout.strip()
    assert os.path.isfile(os.path.join(folder, "onnx2src-config.cmake")), folder
    return folder


def cmake_configure(source, build, generator, env, *defines):
    return run(["cmake", "-S", str(source), "-B", str(build), "-G", generator,
                f"-Donnx2src_DIR={cmake_dir()}", *defines], source, env)


def cmake_build(build, env):
    return run(["cmake", "--build", str(build)], build, env)


@pytest.mark.parametrize("generator", ["Ninja", "Unix Makefiles"])
def test_cmake_sample_two_models(generator, tmp_path):
    """samples/cmake: two models (two NAMEs) in one program, from a fresh build folder; with
    Ninja the Python is found as an activated venv leaves it, with Makefiles it is given as
    ONNX2SRC_PYTHON and the venv is not on PATH."""
    need("cmake")
    need("ninja" if generator == "Ninja" else "make")
    root = copy_sample(tmp_path, "cmake", ["simple_rnn.onnx", "simple_lstm.onnx"])
    build = tmp_path / "build"
    if generator == "Ninja":
        env, defines = activated_env(), []
    else:
        env, defines = plain_env(), [f"-DONNX2SRC_PYTHON={sys.executable}"]
    log = cmake_configure(root / "cmake", build, generator, env, *defines)
    assert "onnx2src 0.1.0" in log, log
    log = cmake_build(build, env)
    assert "onnx2src: generating simple_rnn.c" in log and "onnx2src: generating lstm_model.c" in log, log

    out = run([str(build / "two_models")], tmp_path)
    assert_close([rows(out, "simple_rnn output"), rows(out, "simple_rnn next_hidden")[None]],
                 reference("simple_rnn"), "simple_rnn")
    assert_close([rows(out, "lstm_model output")], reference("simple_lstm"), "lstm_model")

    rnn = [str(build / "onnx2src-out" / "rnn" / f) for f in ("simple_rnn.c", "simple_rnn_weights.c", "simple_rnn.h")]
    lstm = [str(build / "onnx2src-out" / "lstm" / f) for f in ("lstm_model.c", "lstm_model_weights.c", "lstm_model.h")]
    before = mtimes(rnn + lstm)
    log = cmake_build(build, env)
    assert "onnx2src:" not in log and mtimes(rnn + lstm) == before, log

    touch(root / "simple_lstm.onnx", rnn + lstm)
    log = cmake_build(build, env)
    assert "onnx2src: generating lstm_model.c" in log and "simple_rnn.c" not in log, log
    after = mtimes(rnn + lstm)
    assert all(after[p] != before[p] for p in lstm) and all(after[p] == before[p] for p in rnn)

    log = cmake_build(build, env)
    assert "onnx2src:" not in log and mtimes(rnn + lstm) == after, log


EXTERNAL = "gru_l1_uni_bf_noh0_last_dy.onnx"  # weights in gru_l1_uni_bf_noh0_last_dy.onnx.data


@pytest.mark.parametrize("generator", ["Ninja", "Unix Makefiles"])
def test_cmake_regenerates_on_external_data_and_options(generator, tmp_path):
    """The external-data file is a dependency without being named (depfile.py finds it), and a
    changed MAX_DIMS regenerates with the Makefile generators too (which do not track commands)."""
    need("cmake")
    need("ninja" if generator == "Ninja" else "make")
    source = tmp_path / "project"
    source.mkdir()
    for f in (EXTERNAL, EXTERNAL + ".data"):
        shutil.copy(os.path.join(EXPORTS, f), source / f)
    project = ("cmake_minimum_required(VERSION 3.20)\nproject(external C)\n"
               "find_package(onnx2src CONFIG REQUIRED)\n"
               f"onnx2src_add_model(gru MODEL {EXTERNAL} NAME gru {{}})\n")
    (source / "CMakeLists.txt").write_text(project.format(""))
    build, env = tmp_path / "build", activated_env()
    cmake_configure(source, build, generator, env)
    assert "onnx2src: generating gru.c" in cmake_build(build, env)
    header = build / "onnx2src-out" / "gru" / "gru.h"

    touch(source / (EXTERNAL + ".data"), [header])
    assert "onnx2src: generating gru.c" in cmake_build(build, env)
    log = cmake_build(build, env)
    assert "onnx2src:" not in log, log

    assert "GRU_MAX_BATCH 7" not in re.sub(r"\s+", " ", header.read_text())
    (source / "CMakeLists.txt").write_text(project.format("MAX_DIMS batch=7"))
    assert "onnx2src: generating gru.c" in cmake_build(build, env)  # re-configures, then builds
    assert re.search(r"#define GRU_MAX_BATCH\s+\(?7", header.read_text()), header.read_text()
    log = cmake_build(build, env)
    assert "onnx2src:" not in log, log


def test_make_sample(tmp_path):
    """samples/make: the pattern rule generates, the program matches onnxruntime, a touched
    model regenerates once, and `make check` passes on gen/ and fails on a gen/ made from
    another model under the same name (a stale vendored copy)."""
    need("make")
    root = copy_sample(tmp_path, "make", ["simple_gru.onnx"])
    folder = root / "make"
    make = ["make", f"ONNX2SRC={os.path.join(VENV_BIN, 'onnx2src')}"]
    log = run(make, folder)
    assert "--name simple_gru" in log, log
    out = run(["./gru_demo"], folder)
    assert_close([rows(out, "output"), rows(out, "next_hidden")[None]], reference("simple_gru"), "simple_gru")

    generated = [str(folder / "gen" / f) for f in ("simple_gru.c", "simple_gru_weights.c", "simple_gru.h")]
    before = mtimes(generated)
    log = run(make, folder)
    assert "onnx2src" not in log and mtimes(generated) == before, log
    touch(root / "simple_gru.onnx", generated)
    log = run(make, folder)
    assert log.count("--name simple_gru") == 1, log
    assert all(t != before[p] for p, t in mtimes(generated).items())
    log = run(make, folder)
    assert "onnx2src" not in log, log

    run(make + ["check"], folder)
    shutil.copy(os.path.join(SAMPLES, "simple_rnn.onnx"), root / "other.onnx")
    run([sys.executable, "-m", "onnx2src", str(root / "other.onnx"), "--target", "c", "-o",
         str(folder / "gen"), "--name", "simple_gru", "--max-dim", "batch=2", "--max-dim", "seq=5"], folder)
    vendored = mtimes(generated)
    log = run(make + ["check"], folder, status=2)  # make's status when onnx2src --check exits 1
    assert "simple_gru.c" in log and "simple_gru.h" in log, log  # one line per stale file
    assert mtimes(generated) == vendored  # --check never writes


# Runs the installed package with onnx and onnx2src made unimportable; saves the output.
WITHOUT_ONNX = """
import sys
import numpy as np
sys.modules["onnx"] = sys.modules["onnx2src"] = None  # `import onnx` now raises ImportError
sys.path.insert(0, sys.argv[1])
import lstm_demo
np.save(sys.argv[3], lstm_demo.run(np.load(sys.argv[2])))
assert not any(m.split(".")[0] in ("onnx", "onnx2src") for m, v in sys.modules.items() if v is not None)
"""


def test_python_sample_wheel_carries_the_generated_module(tmp_path):
    """samples/python: the wheel built by pip holds lstm_demo/model.py, and the package runs from
    the wheel's content without onnx or onnx2src, matching onnxruntime."""
    root = copy_sample(tmp_path, "python", ["simple_lstm.onnx"])
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "-w", str(tmp_path / "dist"), str(root / "python")], tmp_path)
    (wheel,) = (tmp_path / "dist").glob("lstm_demo-*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as z:
        assert "lstm_demo/model.py" in z.namelist(), z.namelist()
        z.extractall(site)
    assert "import onnx" not in (site / "lstm_demo" / "model.py").read_text()

    np.save(tmp_path / "x.npy", sample_input())
    run([sys.executable, "-c", WITHOUT_ONNX, str(site), str(tmp_path / "x.npy"), str(tmp_path / "y.npy")],
        tmp_path)
    assert_close([np.load(tmp_path / "y.npy")], reference("simple_lstm"), "lstm_demo")
