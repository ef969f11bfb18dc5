"""The command-line contract (DESIGN.md, "Contracts users rely on"), run as a user runs it: a
subprocess `python -m onnx2src ...`, and once through the installed `onnx2src` console script.

  onnx2src MODEL --target {c,numpy} [-o OUTDIR] [--name NAME] [--max-dim DIM=N ...]

Success writes OUTDIR/NAME.h + NAME.c (c) or OUTDIR/NAME.py (numpy), byte-identical from run
to run. An error exits with status 2 and one line on stderr, no traceback, and writes nothing.
"""
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto as TP
from onnx import helper, numpy_helper

from onnx2src.harness import WARNINGS, compiler, load_numpy

from conftest import assert_close, ort_run

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
C_KEYWORDS = {"int", "float", "double", "return", "static", "const", "void", "char", "long",
              "if", "for", "while", "do", "switch", "case", "default", "struct", "union", "enum"}


def onnx2src(*args, cwd=None, env=None, exe=None):
    """Run the CLI; returns the CompletedProcess (text mode)."""
    cmd = [exe] if exe else [sys.executable, "-m", "onnx2src"]
    return subprocess.run(cmd + [str(a) for a in args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=120)


def _graph_model(nodes, inputs, outputs, inits=(), opset=17):
    m = helper.make_model(helper.make_graph(nodes, "cli_test", inputs, outputs, list(inits)),
                          opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def good_model():
    """X[batch, seq, 8] → last step → Linear(8, 4) → Tanh: small, symbolic, with weights."""
    rng = np.random.default_rng(7)
    nodes = [helper.make_node("Gather", ["X", "last"], ["h"], axis=1, name="/Gather"),
             helper.make_node("Gemm", ["h", "fc.weight", "fc.bias"], ["y"], transB=1, name="/fc/Gemm"),
             helper.make_node("Tanh", ["y"], ["Y"], name="/Tanh")]
    inits = [numpy_helper.from_array(np.array(-1, np.int64), "last"),
             numpy_helper.from_array(rng.standard_normal((4, 8)).astype(np.float32), "fc.weight"),
             numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "fc.bias")]
    return _graph_model(nodes, [helper.make_tensor_value_info("X", TP.FLOAT, ["batch", "seq", 8])],
                        [helper.make_tensor_value_info("Y", TP.FLOAT, ["batch", 4])], inits)


@pytest.fixture
def model_path(tmp_path):
    path = tmp_path / "models" / "my-model.v2.onnx"
    path.parent.mkdir()
    onnx.save(good_model(), str(path))
    return path


def files_in(directory):
    return sorted(os.listdir(directory)) if os.path.isdir(directory) else []


# -- success ------------------------------------------------------------------------------------

def test_c_target_writes_header_and_source(model_path, tmp_path):
    out = tmp_path / "out"
    done = onnx2src(model_path, "--target", "c", "-o", out, "--name", "head")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    names = files_in(out)
    assert "head.h" in names and "head.c" in names, names
    # more .c files are allowed (e.g. weights), nothing else: no temp or hidden files left
    assert all(n == "head.h" or (n.startswith("head") and n.endswith(".c")) for n in names), names
    header = (out / "head.h").read_text()
    assert re.search(r"^int head_run\(", header, re.M), "head_run not declared in head.h"
    assert '#include "head.h"' in (out / "head.c").read_text()
    # the files build: a C compiler accepts every .c with the repo's warning flags
    for n in names:
        if n.endswith(".c"):
            done = subprocess.run([compiler(), *WARNINGS, "-c", str(out / n), "-o",
                                   str(tmp_path / (n + ".o"))], capture_output=True, text=True)
            assert done.returncode == 0 and not done.stderr, done.stderr


def test_numpy_target_writes_one_module(model_path, tmp_path):
    out = tmp_path / "out"
    done = onnx2src(model_path, "--target", "numpy", "-o", out, "--name", "head")
    assert done.returncode == 0, done.stderr
    assert files_in(out) == ["head.py"]
    # it is the model: import it and compare with onnxruntime
    module = load_numpy((out / "head.py").read_text(), "head_cli", str(tmp_path))
    x = np.random.default_rng(1).standard_normal((3, 5, 8)).astype(np.float32)
    assert_close(list(module.run(x)), ort_run(str(model_path), [x]))


def test_name_sets_file_names_and_symbol_prefix(model_path, tmp_path):
    for name in ("alpha", "beta_2"):
        out = tmp_path / name
        done = onnx2src(model_path, "--target", "c", "-o", out, "--name", name)
        assert done.returncode == 0, done.stderr
        header = (out / f"{name}.h").read_text()
        assert re.search(rf"^int {name}_run\(int64_t batch, int64_t seq, const float \*", header, re.M)
        assert not (out / "my_model_v2.h").exists()
        assert (out / f"{name}.c").exists()


@pytest.mark.parametrize("stem", ["my-model.v2", "2layer gru", "int"])
def test_default_name_is_the_stem_made_an_identifier(stem, tmp_path):
    path = tmp_path / f"{stem}.onnx"
    onnx.save(good_model(), str(path))
    out = tmp_path / "out"
    done = onnx2src(path, "--target", "c", "-o", out)
    assert done.returncode == 0, done.stderr
    headers = [n for n in files_in(out) if n.endswith(".h")]
    assert len(headers) == 1, files_in(out)
    name = headers[0][:-2]
    assert IDENTIFIER.fullmatch(name) and name not in C_KEYWORDS, name
    assert (out / f"{name}.c").exists()
    assert re.search(rf"^int {name}_run\(", (out / headers[0]).read_text(), re.M)
    if stem == "my-model.v2":
        assert name == "my_model_v2"
        # the same default for the NumPy target
        done = onnx2src(path, "--target", "numpy", "-o", out)
        assert done.returncode == 0, done.stderr
        assert (out / f"{name}.py").exists(), files_in(out)
    # the C compiles, so the identifier really is usable
    done = subprocess.run([compiler(), *WARNINGS, "-c", str(out / f"{name}.c"), "-o",
                           str(tmp_path / "x.o")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_default_outdir_is_the_working_directory(model_path, tmp_path):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    done = onnx2src(model_path, "--target", "numpy", cwd=cwd)
    assert done.returncode == 0, done.stderr
    assert files_in(cwd) == ["my_model_v2.py"]


# -- determinism --------------------------------------------------------------------------------

@pytest.mark.parametrize("target", ["c", "numpy"])
def test_output_is_byte_identical_across_runs(target, model_path, tmp_path):
    """Same model and flags → same bytes, whatever the output dir, the model's directory,
    the working directory or Python's hash seed."""
    copy_dir = tmp_path / "elsewhere" / "deeper"
    copy_dir.mkdir(parents=True)
    copy = copy_dir / model_path.name
    shutil.copy(model_path, copy)
    runs = [(model_path, tmp_path / "a", "0", tmp_path), (model_path, tmp_path / "b", "1", copy_dir),
            (copy, tmp_path / "c", "12345", tmp_path)]
    contents = []
    for path, out, seed, cwd in runs:
        env = dict(os.environ, PYTHONHASHSEED=seed)
        done = onnx2src(path, "--target", target, "-o", out, "--max-dim", "seq=9", env=env, cwd=cwd)
        assert done.returncode == 0, done.stderr
        contents.append({n: (out / n).read_bytes() for n in files_in(out)})
    assert contents[0] and contents[0] == contents[1] == contents[2]


# -- errors: status 2, one line, no traceback, nothing written -----------------------------------

def det_model():
    """An op onnx2src does not support (a determinant: no recurrent model needs one)."""
    return _graph_model([helper.make_node("Det", ["X"], ["Y"], name="det_node")],
                        [helper.make_tensor_value_info("X", TP.FLOAT, ["batch", 4, 4])],
                        [helper.make_tensor_value_info("Y", TP.FLOAT, ["batch"])])


def lpnorm_model():
    return _graph_model([helper.make_node("LpNormalization", ["X"], ["Y"], name="/norm/LpNorm")],
                        [helper.make_tensor_value_info("X", TP.FLOAT, [1, 9])],
                        [helper.make_tensor_value_info("Y", TP.FLOAT, [1, 9])])


def float16_input_model():
    return _graph_model([helper.make_node("Relu", ["X"], ["Y"], name="relu")],
                        [helper.make_tensor_value_info("X", TP.FLOAT16, ["batch", 4])],
                        [helper.make_tensor_value_info("Y", TP.FLOAT16, ["batch", 4])])


def float16_cast_model():
    """float16 only inside the graph: the error must name the Cast node that makes it."""
    return _graph_model([helper.make_node("Cast", ["X"], ["h"], to=TP.FLOAT16, name="to_half"),
                         helper.make_node("Cast", ["h"], ["Y"], to=TP.FLOAT, name="to_float")],
                        [helper.make_tensor_value_info("X", TP.FLOAT, [4])],
                        [helper.make_tensor_value_info("Y", TP.FLOAT, [4])])


def huge_constant_model():
    """ConstantOfShape of [10**12] floats: refused at once, without trying to allocate 4 TB."""
    nodes = [helper.make_node("ConstantOfShape", ["s"], ["z"], name="/huge",
                              value=numpy_helper.from_array(np.array([1.0], np.float32))),
             helper.make_node("Add", ["X", "z"], ["Y"], name="/add")]
    return _graph_model(nodes, [helper.make_tensor_value_info("X", TP.FLOAT, [1])],
                        [helper.make_tensor_value_info("Y", TP.FLOAT, None)],
                        [numpy_helper.from_array(np.array([10**12], np.int64), "s")])


def write_model(builder):
    def write(path):
        onnx.save(builder(), str(path))
    return write


def write_junk(path):
    path.write_bytes(bytes(range(256)) * 3 + np.random.default_rng(3).bytes(1000))


def write_nothing(path):
    pass


# name: (how to make MODEL, extra args, strings the one line must contain)
ERRORS = {
    "unsupported_op_det": (write_model(det_model), [], ["det_node", "Det", "not supported"]),
    "unsupported_op_lpnorm": (write_model(lpnorm_model), [], ["/norm/LpNorm", "LpNormalization",
                                                              "not supported"]),
    "float16_input": (write_model(float16_input_model), [], ["X", "FLOAT16", "not supported"]),
    "float16_cast": (write_model(float16_cast_model), [], ["to_half", "Cast", "FLOAT16"]),
    "missing_file": (write_nothing, [], ["model.onnx"]),
    "not_onnx": (write_junk, [], ["model.onnx"]),
    "max_dim_unknown_name": (write_model(good_model), ["--max-dim", "time=5"], ["time"]),
    "max_dim_zero": (write_model(good_model), ["--max-dim", "x=0"], ["x"]),
    "max_dim_batch_zero": (write_model(good_model), ["--max-dim", "batch=0"], ["batch"]),
    "huge_constant": (write_model(huge_constant_model), [], ["1,000,000,000,000 elements"]),
    "name_c_keyword": (write_model(good_model), ["--name", "int"], ["'int'", "keyword"]),
    "name_path": (write_model(good_model), ["--name", "../x"], ["'../x'", "letter"]),
    "name_reserved_prefix": (write_model(good_model), ["--name", "o2s_model"], ["o2s"]),
    "name_python_keyword": (write_model(good_model), ["--target", "numpy", "--name", "lambda"],
                            ["'lambda'", "keyword"]),
}
# argparse's own errors (a malformed flag) print the usage text before the error line
ERRORS_ARGPARSE = {
    "max_dim_not_a_number": (write_model(good_model), ["--max-dim", "batch=abc"], ["batch=abc"]),
    "max_dim_negative": (write_model(good_model), ["--max-dim", "batch=-1"], ["batch=-1"]),
    "unknown_target": (write_model(good_model), ["--target", "rust"], ["rust"]),
}


def _error_cases():
    cases = [pytest.param(k, *v, id=k) for k, v in ERRORS.items()]
    cases += [pytest.param(k, *v, id=k) for k, v in ERRORS_ARGPARSE.items()]
    return cases


def assert_one_line_error(done, must_contain):
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, f"stderr has {len(lines)} lines:\n{done.stderr}"
    for word in must_contain:
        assert word in lines[0], f"{word!r} not in {lines[0]!r}"


@pytest.mark.parametrize("case,make,extra,must_contain", _error_cases())
def test_error_exit_2_one_line_nothing_written(case, make, extra, must_contain, tmp_path):
    """Into an existing OUTDIR holding user files (among them an older model.h): it stays as
    it was. test_error_for_both_targets and test_console_script cover an OUTDIR that does not
    exist yet."""
    path = tmp_path / "model.onnx"
    make(path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("user file\n")
    (out / "model.h").write_text("/* an older header the user keeps */\n")
    before = files_in(out)
    args = [path, "-o", out, *extra]
    if "--target" not in extra:
        args += ["--target", "c"]
    done = onnx2src(*args)
    assert_one_line_error(done, must_contain)
    assert files_in(out) == before, f"{case}: the output dir changed: {files_in(out)}"
    assert (out / "model.h").read_text() == "/* an older header the user keeps */\n"
    # nothing beside OUTDIR either (e.g. a temp file next to it)
    assert set(os.listdir(tmp_path)) <= {"out", "model.onnx"}, os.listdir(tmp_path)


@pytest.mark.parametrize("sub", ["", "sub"], ids=["file", "file_sub"])
def test_error_outdir_is_a_file(sub, model_path, tmp_path):
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("x")
    done = onnx2src(model_path, "--target", "c", "-o", blocker / sub if sub else blocker)
    assert_one_line_error(done, ["not_a_dir"])
    assert blocker.read_text() == "x"


def test_error_for_both_targets(tmp_path):
    """The NumPy target refuses an unsupported op the same way."""
    path = tmp_path / "det.onnx"
    onnx.save(det_model(), str(path))
    done = onnx2src(path, "--target", "numpy", "-o", tmp_path / "out")
    assert_one_line_error(done, ["det_node", "Det"])
    assert not (tmp_path / "out").exists() or files_in(tmp_path / "out") == []


# -- output dir, --max-dim, console script ---------------------------------------------------

def test_existing_outdir_keeps_other_files(model_path, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine\n")
    (out / "other.c").write_text("int other(void) { return 1; }\n")
    (out / "head.c").write_text("stale\n")
    done = onnx2src(model_path, "--target", "c", "-o", out, "--name", "head")
    assert done.returncode == 0, done.stderr
    assert (out / "notes.txt").read_text() == "mine\n"
    assert (out / "other.c").read_text() == "int other(void) { return 1; }\n"
    assert (out / "head.c").read_text() != "stale\n"
    assert {"notes.txt", "other.c", "head.h", "head.c"} <= set(files_in(out))
    assert not [n for n in files_in(out) if n.startswith(".")], files_in(out)


def test_max_dim_sets_the_default_bound(model_path, tmp_path):
    out = tmp_path / "out"
    done = onnx2src(model_path, "--target", "c", "-o", out, "--name", "head",
                    "--max-dim", "batch=7")
    assert done.returncode == 0, done.stderr
    header = (out / "head.h").read_text()
    assert re.search(r"^#define HEAD_MAX_BATCH 7$", header, re.M), header
    assert re.search(r"^#define HEAD_MAX_SEQ 128$", header, re.M), header
    # repeatable: both bounds at once
    done = onnx2src(model_path, "--target", "c", "-o", out, "--name", "head",
                    "--max-dim", "batch=7", "--max-dim", "seq=300")
    assert done.returncode == 0, done.stderr
    header = (out / "head.h").read_text()
    assert re.search(r"^#define HEAD_MAX_BATCH 7$", header, re.M)
    assert re.search(r"^#define HEAD_MAX_SEQ 300$", header, re.M)


def console_script():
    here = os.path.join(os.path.dirname(sys.executable), "onnx2src")
    return here if os.path.exists(here) else shutil.which("onnx2src")


def test_console_script(model_path, tmp_path):
    exe = console_script()
    assert exe, "the onnx2src console script is not installed (pip install -e .)"
    out = tmp_path / "out"
    done = onnx2src(model_path, "--target", "c", "-o", out, "--name", "viacli", exe=exe)
    assert done.returncode == 0, done.stderr
    assert {"viacli.h", "viacli.c"} <= set(files_in(out))
    path = tmp_path / "det.onnx"
    onnx.save(det_model(), str(path))
    done = onnx2src(path, "--target", "c", "-o", tmp_path / "bad", exe=exe)
    assert_one_line_error(done, ["det_node", "Det"])
    assert not (tmp_path / "bad").exists() or files_in(tmp_path / "bad") == []


def test_error_when_bounds_make_the_arena_too_large(tmp_path):
    """Bounds whose arena would not fit a C array: one line saying so, and no files."""
    model = os.path.join(os.path.dirname(__file__), "..", "samples", "simple_lstm.onnx")
    out = tmp_path / "out"
    done = onnx2src(model, "--target", "c", "-o", out, "--max-dim", "batch=10000000", "--max-dim", "seq=10000000")
    assert_one_line_error(done, ["arena", "--max-dim"])
    assert not out.exists() or files_in(out) == []


# -- every unsupported operator in one line (issue 8) ----------------------------------------------

def many_unsupported_model():
    """Det ×2, a custom op ×2 (its first node named with a newline and 100 more characters),
    LpNormalization ×1 and Loop ×1 (a subgraph attribute) around ops that are supported; ops
    that no issue plans to support, so the test keeps meaning what it says."""
    body = helper.make_graph([helper.make_node("Identity", ["c_in"], ["c_out"])], "body",
                             [helper.make_tensor_value_info("i", TP.INT64, []),
                              helper.make_tensor_value_info("c_in", TP.BOOL, [])],
                             [helper.make_tensor_value_info("c_out", TP.BOOL, [])])
    nodes = [helper.make_node("Relu", ["X"], ["r"], name="relu"),
             helper.make_node("Det", ["r"], ["d1"], name="det_first"),
             helper.make_node("MyOp", ["r"], ["m1"], name="custom\nfirst" + "q" * 100, domain="com.example"),
             helper.make_node("Det", ["r"], ["d2"], name="det_second"),
             helper.make_node("MyOp", ["m1"], ["m2"], name="custom_second", domain="com.example"),
             helper.make_node("LpNormalization", ["r"], ["lp"], name="/lp"),
             helper.make_node("Loop", ["", "cond"], ["loop_cond"], name="/loop", body=body),
             helper.make_node("Add", ["d1", "d2"], ["Y"], name="add")]
    model = _graph_model(nodes, [helper.make_tensor_value_info("X", TP.FLOAT, [3, 3]),
                                 helper.make_tensor_value_info("cond", TP.BOOL, [])],
                         [helper.make_tensor_value_info("Y", TP.FLOAT, [])])
    model.opset_import.append(helper.make_opsetid("com.example", 1))
    return model


@pytest.mark.parametrize("target", ["c", "numpy"])
def test_every_unsupported_operator_in_one_line(target, tmp_path):
    path = tmp_path / "many.onnx"
    onnx.save(many_unsupported_model(), str(path))
    done = onnx2src(path, "--target", target, "-o", tmp_path / "out")
    assert_one_line_error(done, ["not supported", "(model opset 17)"])
    line = done.stderr.splitlines()[0]
    parts = ['Det-11 ×2 (first: "det_first")',
             'com.example.MyOp ×2 (first: "custom\\nfirst' + "q" * 45 + '...")',  # 60 characters
             'Loop-16 ×1 (first: "/loop")',
             'LpNormalization-1 ×1 (first: "/lp")']
    for part in parts:
        assert part in line, (part, line)
    # most used first, then by name; the model's opset is said once, apart from the ops' versions
    assert [line.index(p) for p in parts] == sorted(line.index(p) for p in parts), line
    assert line.count("opset") == 1, line
    assert "relu" not in line and "add" not in line, line
    assert not (tmp_path / "out").exists() or files_in(tmp_path / "out") == []


SAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "samples")


def test_default_bounds_fit_a_small_device(tmp_path):
    """A recurrence's batch is bounded to 1 by default, so a 11 KB model gets a static arena of
    kilobytes, not megabytes; the CLI prints the weight and arena bytes."""
    done = onnx2src(os.path.join(SAMPLES, "simple_lstm.onnx"), "--target", "c", "-o", tmp_path, "--name", "kws")
    assert done.returncode == 0, done.stderr
    header = (tmp_path / "kws.h").read_text()
    assert re.search(r"^#define KWS_MAX_BATCH 1$", header, re.M)
    assert re.search(r"^#define KWS_MAX_SEQ 128$", header, re.M)
    arena = int(re.search(r"static arena of (\d+) bytes", header).group(1))
    assert arena < 32 * 1024, arena
    line = done.stderr.strip().splitlines()[-1]
    assert re.fullmatch(r"memory: 11,220 bytes of weights \(const\); kws_run's static arena "
                        rf"{arena:,} bytes at batch <= 1, seq <= 128 \(--max-dim DIM=N to change\); "
                        r"kws_workspace_size\(dims\) gives the bytes a call needs", line), line


def test_stream_flag_requires_a_model_that_streams(tmp_path):
    done = onnx2src(os.path.join(SAMPLES, "simple_lstm.onnx"), "--target", "c", "-o", tmp_path / "ok", "--stream")
    assert done.returncode == 0, done.stderr
    assert "int simple_lstm_step(" in (tmp_path / "ok" / "simple_lstm.h").read_text()
    for target in ("c", "numpy"):
        done = onnx2src(os.path.join(SAMPLES, "simple_gru.onnx"), "--target", target, "-o", tmp_path / target,
                        "--stream")
        assert done.returncode == 2
        assert done.stderr.strip() == (
            "onnx2src: error: --stream: this model can't run chunk by chunk: GRU \"/gru/GRU\" takes its "
            "initial state from input \"hidden\" (a model that carries its state as inputs and outputs "
            "already streams through its run function)")
        assert not (tmp_path / target).exists()
