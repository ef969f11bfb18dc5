"""`onnx2src verify` and `onnx2src bench`: exit statuses, the comparison they rest on, and the
structure of bench's numbers. No timing is asserted beyond "positive" (machines are noisy)."""
import json
import math
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto as TP
from onnx import helper

from onnx2src import bench, cli, verify
from onnx2src.harness import CBuildError

SAMPLES = os.path.join(os.path.dirname(__file__), "..", "samples")
LSTM = os.path.join(SAMPLES, "simple_lstm.onnx")
RNN = os.path.join(SAMPLES, "simple_rnn.onnx")
FAST = ["--seconds", "0.05"]


def run(capsys, *argv):
    """In-process `onnx2src ARGV...` → (status, stdout, stderr)."""
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# -- verify ---------------------------------------------------------------------------------
def test_verify_passes_on_simple_lstm(capsys):
    code, out, err = run(capsys, "verify", LSTM, "--dim", "batch=2", "--dim", "seq=3")
    assert code == 0, out + err
    assert "batch=2 seq=3" in out and "reference: onnxruntime" in out
    assert [l.split()[:2] for l in out.splitlines() if l.startswith(("numpy ", "c "))] == \
        [["numpy", "output"], ["c", "output"]]
    assert out.splitlines()[-1].startswith("PASS")


@pytest.mark.parametrize("weights,targets", [("int8", ["numpy", "c"]), ("bf16", ["c"])])
def test_verify_weights(capsys, weights, targets):
    """--weights: the code as onnx2src --weights makes it, against the model with its matrices
    rounded the same way (the float model itself would differ by the rounding)."""
    code, out, err = run(capsys, "verify", LSTM, "--weights", weights)
    assert code == 0, out + err
    assert f"on the model with {weights} weights" in out
    assert [l.split()[0] for l in out.splitlines() if l.startswith(("numpy ", "c "))] == targets


def test_verify_reads_inputs_from_npz_and_npy(capsys, tmp_path):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 4, 10)).astype(np.float32)
    h = rng.standard_normal((1, 3, 20)).astype(np.float32)
    np.savez(tmp_path / "in.npz", input=x, hidden=h)
    code, out, err = run(capsys, "verify", RNN, "--inputs", tmp_path / "in.npz")
    assert code == 0, out + err
    assert "batch=3 seq=4" in out and "in.npz" in out
    assert sum(l.endswith(" ok") for l in out.splitlines()) == 4  # 2 targets x 2 outputs

    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "h.npy", h)
    code, out, err = run(capsys, "verify", RNN, "--target", "numpy",
                         "--input", f"input={tmp_path / 'x.npy'}", "--input", f"hidden={tmp_path / 'h.npy'}")
    assert code == 0, out + err


def test_verify_with_onnx_reference(capsys):
    code, out, err = run(capsys, "verify", RNN, "--no-ort", "--target", "numpy", "--seed", "3")
    assert code == 0, out + err
    assert "reference: onnx.reference" in out


def test_verify_exits_1_when_an_output_differs(capsys, monkeypatch):
    real = verify.reference

    def off_by_a_bit(path, use_ort=True, **kw):
        label, ref = real(path, use_ort, **kw)
        return label, lambda inputs: [o + np.float32(1e-3) for o in ref(inputs)]

    monkeypatch.setattr(verify, "reference", off_by_a_bit)
    code, out, err = run(capsys, "verify", LSTM, "--target", "numpy")
    assert code == 1, out + err
    assert "FAIL" in out.splitlines()[-1] and "numpy:output" in out


@pytest.mark.parametrize("argv, message", [
    (["--dim", "nope=3"], "no symbolic dim 'nope'"),
    (["--dim", "batch=0"], "at least 1"),
    (["--input", "input=missing.npy"], "cannot read inputs"),
])
def test_verify_usage_errors_exit_2_with_one_line(capsys, argv, message):
    code, out, err = run(capsys, "verify", RNN, *argv)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1


def test_verify_rejects_inputs_of_the_wrong_dtype(capsys, tmp_path):
    np.savez(tmp_path / "in.npz", np.zeros((1, 2, 10)))  # float64, positional
    code, out, err = run(capsys, "verify", LSTM, "--inputs", tmp_path / "in.npz")
    assert code == 2 and "float64" in err and "float32" in err


def test_verify_unsupported_model_exits_2(capsys, tmp_path):
    node = helper.make_node("Det", ["X"], ["Y"], name="/weird")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("X", TP.FLOAT, [2, 3, 3])],
                              [helper.make_tensor_value_info("Y", TP.FLOAT, [2])])
    path = tmp_path / "weird.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    code, out, err = run(capsys, "verify", path)
    assert code == 2
    assert err.startswith("onnx2src verify: error:") and len(err.strip().splitlines()) == 1


def test_c_build_error_summary_is_one_line():
    e = CBuildError(["cc", "-Werror", "m.c"],
                    "m.c: In function 'f':\nm.c:3:5: error: unused variable 'x' [-Werror=unused-variable]\n"
                    "cc1: all warnings being treated as errors\n")
    assert e.summary() == "C compilation failed (cc): m.c:3:5: error: unused variable 'x' [-Werror=unused-variable]"


# -- compare / report -----------------------------------------------------------------------
def test_compare_within_tolerance_passes_and_reports_errors():
    e = np.array([1.0, -2.0, 0.0, np.nan], np.float32)
    a = e + np.array([5e-5, 0, 5e-6, 0], np.float32)
    [row] = verify.compare("c", ["y"], [a], [e])
    assert row.ok and row.shape == (4,)
    assert row.max_abs == pytest.approx(5e-5, rel=1e-2)
    assert row.max_rel == pytest.approx(5e-5, rel=1e-2)  # the 0 reference is skipped
    text, passed = verify.report([row], 1e-4, 1e-5)
    assert passed and text.splitlines()[-1].startswith("PASS")


def test_compare_flags_a_perturbed_output():
    e = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)
    a = e.copy()
    a[1, 2] += 1e-2
    rows = verify.compare("numpy", ["y", "z"], [a, e], [e, e])
    assert [r.ok for r in rows] == [False, True]
    assert rows[0].max_abs == pytest.approx(1e-2, rel=1e-3)
    assert "1 of 12 elements differ" in rows[0].note
    text, passed = verify.report(rows, 1e-4, 1e-5)
    assert not passed
    assert text.splitlines()[-1].startswith("FAIL: numpy:y")


def test_compare_shapes_dtypes_ints_and_counts():
    f = np.zeros((2, 3), np.float32)
    assert not verify.compare("c", ["y"], [f.reshape(3, 2)], [f])[0].ok
    assert "dtype" in verify.compare("c", ["y"], [f.astype(np.float64)], [f])[0].note
    i = np.arange(4, dtype=np.int64)
    assert verify.compare("c", ["i"], [i], [i])[0].ok
    assert not verify.compare("c", ["i"], [i + 1], [i])[0].ok
    assert not verify.compare("c", ["y", "z"], [f], [f, f])[0].ok
    assert not verify.compare("c", ["y"], [np.array([np.nan], np.float32)], [np.array([1.0], np.float32)])[0].ok


def test_random_inputs_by_dtype():
    class Iface:
        symbols = ["n"]
        inputs = [("x", np.dtype(np.float32), (2, 3)), ("len", np.dtype(np.int64), (5,)),
                  ("m", np.dtype(np.bool_), (4,))]

        def input_shapes(self, env):
            return [s for _, _, s in self.inputs]

    x, n, m = verify.random_inputs(Iface(), {}, seed=1)
    assert x.dtype == np.float32 and x.shape == (2, 3)
    assert n.dtype == np.int64 and n.min() >= 1 and n.max() <= 4
    assert m.dtype == np.bool_


# -- bench ----------------------------------------------------------------------------------
def test_bench_json_has_positive_numbers_for_every_column(capsys):
    code, out, err = run(capsys, "bench", RNN, *FAST, "--json", "--reference",
                         "--cflags", "-O1", "--cflags", "-O2 -march=native")
    assert code == 0, err
    assert "warning" not in err  # the generated code and the timing main compile clean
    row = json.loads(out)
    assert row["cflags"] == ["-O1", "-O2 -march=native"]
    assert row["dims"] == {"batch": 2, "seq": 2} and row["errors"] == []
    numbers = [*row["c_us"].values(), *row["ort_over_c"].values(), row["numpy_us"], row["ort_us"],
               row["onnx_reference_us"], row["ort_over_numpy"], row["onnx_reference_over_numpy"],
               row["arena_bytes"], row["weight_bytes"]]
    assert len(row["c_us"]) == len(row["ort_over_c"]) == 2
    assert all(isinstance(x, (int, float)) and x > 0 and math.isfinite(x) for x in numbers), row


def test_bench_table_and_models_list(capsys, tmp_path):
    models = tmp_path / "models.json"
    rel = os.path.relpath(RNN, tmp_path)
    models.write_text(json.dumps([{"file": rel, "batch": 1, "seq": 3, "description": "seed RNN"}]))
    code, out, err = run(capsys, "bench", "--models", models, *FAST, "--no-numpy", "--repeat", "20")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["model", "dims", "C"] and "NumPy" not in lines[0]
    assert lines[2].startswith("simple_rnn.onnx") and "batch=1 seq=3" in lines[2]


@pytest.mark.skipif(shutil.which("clang") is None or shutil.which("gcc") is None,
                    reason="the two-compiler bench needs gcc and clang")
def test_bench_names_its_machine_and_a_compiler_per_column(capsys):
    """`--cflags "clang -O2"` builds that column with clang; the table ends with the CPU and
    each column's compiler, and --json carries the same under "machine"."""
    code, out, err = run(capsys, "bench", RNN, *FAST, "--no-numpy", "--cflags", "gcc -O2", "--cflags", "clang -O2")
    assert code == 0, err
    lines = out.splitlines()
    assert "C gcc -O2" in lines[0] and "C clang -O2" in lines[0]
    assert re.match(r"machine: .+ \(\d+ cores, \w+ \w+\); numpy [\d.]+ \(BLAS threads: ", lines[-3])
    assert lines[-2].startswith("C gcc -O2: ") and "gcc" in lines[-2]
    assert lines[-1].startswith("C clang -O2: ") and "clang" in lines[-1]
    code, out, err = run(capsys, "bench", RNN, *FAST, "--no-numpy", "--json", "--cflags", "clang -O1")
    info = json.loads(out)["machine"]
    assert info["cores"] >= 1 and info["cpu"] and "clang" in info["compilers"]["clang -O1"]


def test_bench_refuses_to_time_wrong_code(capsys, monkeypatch):
    real = bench.reference

    def wrong(path, use_ort=True, **kw):
        label, ref = real(path, use_ort, **kw)
        return label, lambda inputs: [o * 2 for o in ref(inputs)]

    monkeypatch.setattr(bench, "reference", wrong)
    code, out, err = run(capsys, "bench", RNN, *FAST, "--no-ort")
    assert code == 1
    assert out.count("WRONG") == 2  # C and NumPy
    assert "disagrees" in err and "FAIL" in err


def test_bench_usage_errors(capsys):
    assert run(capsys, "bench")[0] == 2
    assert run(capsys, "bench", RNN, "--dim", "nope=1")[0] == 2


def test_memory_parsed_from_the_header():
    header = ("/* ...\n * Memory: a static arena of 3297280 bytes at the default bounds (not\n"
              " * reentrant), and 8188 bytes of weights in static const data.\n */")
    assert bench.memory(header) == {"arena_bytes": 3297280, "weight_bytes": 8188}
    assert bench.memory("/* nothing */") == {"arena_bytes": None, "weight_bytes": None}


def test_help_mentions_the_subcommands():
    done = subprocess.run([sys.executable, "-m", "onnx2src", "--help"], capture_output=True, text=True)
    assert done.returncode == 0
    assert "onnx2src verify MODEL" in done.stdout and "onnx2src bench" in done.stdout


# -- a run's dims above the default bound (issue 8) ------------------------------------------------
def test_verify_compiles_the_c_with_bounds_that_fit_the_run(capsys):
    """seq=200 is above the default bound (128): verify sizes the C for the run it makes."""
    code, out, err = run(capsys, "verify", LSTM, "--target", "c", "--dim", "seq=200")
    assert code == 0, out + err
    assert "seq=200" in out and out.splitlines()[-1].startswith("PASS")


@pytest.mark.parametrize("command", ["verify", "bench"])
def test_a_dim_above_its_given_bound_names_the_bound(capsys, command):
    code, out, err = run(capsys, command, LSTM, "--dim", "seq=200", "--max-dim", "seq=150")
    assert code == 2, out + err
    assert len(err.strip().splitlines()) == 1 and "returned" not in err
    assert "seq=200 is above its bound 150" in err and "--max-dim seq=200" in err
