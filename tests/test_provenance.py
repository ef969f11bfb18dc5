"""Provenance headers, file modes, `--check` and `--cmake-dir` (issue 11), run as a user runs
them: the CLI in a subprocess, `onnx2src.generate` for the Python API.

Every generated file starts with a comment naming onnx2src's version, the model file and its
external-data files with their SHA-256, the opsets and the canonical options; the same inputs
give the same bytes wherever the model lies. `--check` regenerates in memory: exit 0 if the
folder is up to date, 1 with one line per stale or missing file, 2 on a usage error; it never
writes.
"""
import ast
import hashlib
import os
import shutil
import stat
import subprocess
import sys

import onnx
import pytest

import onnx2src
from onnx2src import Options, generate

HERE = os.path.dirname(os.path.abspath(__file__))
SAMPLES = os.path.join(HERE, "..", "samples")
EXTERNAL = os.path.join(HERE, "exports", "lstm_l1_uni_bf_noh0_last_dy.onnx")  # + .onnx.data


def onnx2src_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "onnx2src", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=120)


def sha256(path) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def header_of(text: str) -> str:
    """The provenance block: the leading comment lines of a generated file."""
    lines = text.split("\n")
    end = next(i for i, line in enumerate(lines) if not line.startswith(("/*", " *", "#")))
    return "\n".join(lines[:end])


def copy_model(src, folder):
    """A copy of the model (and its external data) in `folder`; returns the model's path."""
    os.makedirs(folder, exist_ok=True)
    for f in os.listdir(os.path.dirname(src)):
        if f.startswith(os.path.basename(src)):
            shutil.copy(os.path.join(os.path.dirname(src), f), folder)
    return os.path.join(folder, os.path.basename(src))


def snapshot(folder):
    """{file name: (mtime_ns, bytes)} of everything in `folder`."""
    return {f: (os.stat(os.path.join(folder, f)).st_mtime_ns, open(os.path.join(folder, f), "rb").read())
            for f in sorted(os.listdir(folder))}


# -- the header -------------------------------------------------------------------------------

@pytest.mark.parametrize("target", ["c", "numpy"])
def test_header_names_version_model_hash_opset_and_options(target):
    path = os.path.join(SAMPLES, "simple_lstm.onnx")
    max_dims = {"seq": 64, "batch": 2} if target == "c" else {}
    files = generate(path, Options(target, name="lstm", max_dims=max_dims))
    opset = {o.domain: o.version for o in onnx.load(path).opset_import}[""]
    options = ("--target c --name lstm --max-dim batch=2 --max-dim seq=64" if target == "c"
               else "--target numpy --name lstm")
    for fname, text in files.items():
        header = header_of(text)
        assert f"onnx2src {onnx2src.__version__}" in header.split("\n")[0], fname
        assert f"model: simple_lstm.onnx (sha256 {sha256(path)})" in header, header
        assert f"opset: {opset}\n" in header + "\n", header
        assert f"options: {options}\n" in header + "\n", header
        assert "Do not edit" in header


def test_header_hashes_external_data():
    files = generate(EXTERNAL, Options("c"))
    data = EXTERNAL + ".data"
    assert os.path.getsize(data) > 0
    for text in files.values():
        header = header_of(text)
        assert f"model: {os.path.basename(EXTERNAL)} (sha256 {sha256(EXTERNAL)})" in header
        assert f"external data: {os.path.basename(data)} (sha256 {sha256(data)})" in header, header


def test_changed_external_data_changes_the_header(tmp_path):
    path = copy_model(EXTERNAL, tmp_path)
    before = generate(path, Options("c"))
    with open(path + ".data", "r+b") as f:  # same size, one weight's low byte changed
        first = f.read(1)
        f.seek(0)
        f.write(bytes([first[0] ^ 1]))
    after = generate(path, Options("c"))
    for fname in before:
        assert header_of(before[fname]) != header_of(after[fname])
        assert sha256(path + ".data") in after[fname]


@pytest.mark.parametrize("target", ["c", "numpy"])
def test_same_inputs_give_the_same_bytes_wherever_the_model_is(target, tmp_path):
    options = Options(target, max_dims={"batch": 3} if target == "c" else None)
    first = generate(EXTERNAL, options)
    again = generate(EXTERNAL, options)
    elsewhere = generate(copy_model(EXTERNAL, tmp_path / "deep" / "other folder"), options)
    assert first == again == elsewhere
    for text in first.values():
        assert HERE not in text and str(tmp_path) not in text


def test_same_effective_options_give_the_same_bytes():
    """Options are recorded canonically: their order and the default name spelled out do not
    matter; --stream (it only checks) leaves no trace; a different bound does."""
    path = EXTERNAL  # a model that streams, so --stream is accepted
    a = generate(path, Options("c", max_dims={"seq": 64, "batch": 2}))
    b = generate(path, Options("c", name="lstm_l1_uni_bf_noh0_last_dy", max_dims={"batch": 2, "seq": 64}, stream=True))
    assert a == b
    numpy_a = generate(path, Options("numpy", max_dims={"seq": 64}))  # bounds mean nothing to NumPy
    assert numpy_a == generate(path, Options("numpy"))
    assert "--max-dim" not in header_of(next(iter(numpy_a.values())))
    c = generate(path, Options("c", max_dims={"seq": 65, "batch": 2}))
    assert header_of(a["lstm_l1_uni_bf_noh0_last_dy.c"]) != header_of(c["lstm_l1_uni_bf_noh0_last_dy.c"])


def test_const_values_are_normalized(tmp_path):
    """`--const` values are recorded as the input's dtype makes them (1 and 1.0 pin the same)."""
    from test_cli import good_model
    model = good_model()
    onnx.save(model, str(tmp_path / "m.onnx"))
    path = str(tmp_path / "m.onnx")
    fixed = {"seq": 1, "batch": 1}  # X [batch, seq, 8] gets a fixed shape, so it can be pinned
    one = generate(path, Options("numpy", consts={"X": "[[[1,2,3,4,5,6,7,8]]]"}, fixed_dims=fixed))
    other = generate(path, Options("numpy", consts={"X": " [[[1.0, 2, 3, 4, 5, 6, 7, 8.00]]]"},
                                   fixed_dims=dict(reversed(fixed.items()))))
    assert one == other
    assert ("options: --target numpy --name m --const X=[[[1.0,2.0,3.0,4.0,5.0,6.0,7.0,8.0]]] "
            "--fix-dim batch=1 --fix-dim seq=1\n") in header_of(one["m.py"]) + "\n"


@pytest.mark.parametrize("stem", ['q"uote', "star*", "new\nline", "dollar$(touch x)", "back\\slash"])
def test_hostile_file_names_stay_inside_comments(stem, tmp_path):
    path = tmp_path / f"{stem}.onnx"
    shutil.copy(os.path.join(SAMPLES, "simple_rnn.onnx"), path)
    files = onnx2src.generate(str(path), onnx2src.Options("c", name="m"))
    for fname, text in files.items():
        header = header_of(text)
        assert header.startswith("/* ") and header.endswith(" */"), header
        assert header.count("*/") == 1 and header.count("/*") == 1, header  # one comment
        assert f"sha256 {sha256(path)}" in header
    # the C compiles (comments closed where they should be) and the module parses
    out = tmp_path / "out"
    done = onnx2src_cli(path, "--target", "c", "-o", out, "--name", "m")
    assert done.returncode == 0, done.stderr
    cc = subprocess.run(["cc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-c", out / "m.c", "-o", out / "m.o"],
                        capture_output=True, text=True)
    assert cc.returncode == 0, cc.stderr
    module = generate(str(path), Options("numpy", name="m"))["m.py"]
    tree = ast.parse(module)
    assert ast.get_docstring(tree).startswith("m: ")  # the header did not swallow the docstring
    assert all(line.startswith("# ") for line in header_of(module).split("\n"))


@pytest.mark.parametrize("location", ["w*/x.bin", 'x\n"*.bin'])
def test_hostile_external_data_names_stay_inside_comments(location, tmp_path):
    """The model names its external-data files: `*/` can come from a folder in the name."""
    model = onnx.load(EXTERNAL)
    os.makedirs(tmp_path / "w*")
    path = str(tmp_path / "m.onnx")
    onnx.save(model, path, save_as_external_data=True, all_tensors_to_one_file=True, location=location,
              size_threshold=0)
    for target in ("c", "numpy"):
        for text in generate(path, Options(target, name="m")).values():
            header = header_of(text)
            assert f"sha256 {sha256(tmp_path / location)})" in header
            if target == "c":
                assert header.count("*/") == 1 and header.count("/*") == 1, header


# -- file modes -------------------------------------------------------------------------------

@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077])
def test_files_get_the_mode_of_a_new_file_under_the_umask(mask, tmp_path):
    out = tmp_path / "out"
    old = os.umask(mask)
    try:
        written = onnx2src.compile_model(os.path.join(SAMPLES, "simple_rnn.onnx"), onnx2src.Options("c"), str(out))
        # an existing file is replaced by a new one, which gets the umask's mode too
        (out / "simple_rnn.h").chmod(0o600)
        onnx2src.compile_model(os.path.join(SAMPLES, "simple_rnn.onnx"), onnx2src.Options("c"), str(out))
    finally:
        os.umask(old)
    assert sorted(os.listdir(out)) == sorted(written)  # no temporary files left behind
    for path in written.values():
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~mask, path


# -- --check ----------------------------------------------------------------------------------

ARGS = ("--target", "c", "--name", "lstm", "--max-dim", "batch=2")


@pytest.fixture
def vendored(tmp_path):
    """A model (with external data) and a folder generated from it by the CLI."""
    path = copy_model(EXTERNAL, tmp_path / "model")
    out = tmp_path / "vendored"
    done = onnx2src_cli(path, *ARGS, "-o", out)
    assert done.returncode == 0, done.stderr
    return path, out


def test_check_up_to_date_exits_0_and_writes_nothing(vendored):
    path, out = vendored
    before = snapshot(out)
    done = onnx2src_cli(path, *ARGS, "-o", out, "--check")
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert snapshot(out) == before


def test_check_also_from_a_copy_of_the_model_elsewhere(vendored, tmp_path):
    path, out = vendored
    done = onnx2src_cli(copy_model(path, tmp_path / "elsewhere"), *ARGS, "-o", out, "--check")
    assert done.returncode == 0, done.stdout + done.stderr


def test_check_reports_a_modified_and_a_missing_file(vendored):
    path, out = vendored
    with open(out / "lstm.c", "a") as f:
        f.write("/* a local edit */\n")
    os.unlink(out / "lstm.h")
    before = snapshot(out)
    done = onnx2src_cli(path, *ARGS, "-o", out, "--check")
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    assert sorted(lines) == sorted([f"{out / 'lstm.c'}: stale from line {len((out / 'lstm.c').read_text().splitlines())}",
                                    f"{out / 'lstm.h'}: missing"]), lines
    assert snapshot(out) == before


def test_check_reports_files_from_another_model(vendored, tmp_path):
    """Vendored code from another model (same name, same options) is stale from line 2, the
    model's hash; so is code from the same model generated with other options."""
    path, out = vendored
    other = copy_model(os.path.join(HERE, "exports", "gru_l1_uni_bf_noh0_last_dy.onnx"), tmp_path / "other")
    renamed = os.path.join(os.path.dirname(path), "renamed", os.path.basename(path))
    os.makedirs(os.path.dirname(renamed))
    shutil.copy(other, renamed)  # the GRU under the LSTM's file name: only the hash tells
    shutil.copy(other + ".data", os.path.dirname(renamed))  # named as the GRU model names it
    before = snapshot(out)
    done = onnx2src_cli(renamed, *ARGS, "-o", out, "--check")
    assert done.returncode == 1
    assert sorted(done.stdout.splitlines()) == [f"{out / 'lstm.c'}: stale from line 2",
                                                f"{out / 'lstm.h'}: stale from line 2",
                                                f"{out / 'lstm_weights.c'}: stale from line 2"]
    done = onnx2src_cli(path, *ARGS[:-1], "batch=3", "-o", out, "--check")
    assert done.returncode == 1 and len(done.stdout.splitlines()) == 3, done.stdout
    assert snapshot(out) == before


def test_check_of_a_missing_folder_lists_every_file_and_creates_nothing(tmp_path):
    out = tmp_path / "nothing" / "here"
    done = onnx2src_cli(os.path.join(SAMPLES, "simple_rnn.onnx"), "--target", "numpy", "-o", out, "--check")
    assert (done.returncode, done.stdout) == (1, f"{out / 'simple_rnn.py'}: missing\n")
    assert not (tmp_path / "nothing").exists()


@pytest.mark.parametrize("args", [
    ("--check",),                                              # no model, no target
    ("{model}", "--check", "-o", "{out}"),                     # no target
    ("{model}", "--target", "rust", "--check", "-o", "{out}"),  # no such target
    ("{model}", "--target", "c", "--max-dim", "seq", "--check", "-o", "{out}"),
    ("{model}", "--target", "c", "--max-dim", "nosuchdim=3", "--check", "-o", "{out}"),
    ("{missing}", "--target", "c", "--check", "-o", "{out}"),   # no such model
])
def test_check_usage_errors_exit_2_and_write_nothing(args, vendored, tmp_path):
    path, out = vendored
    before = snapshot(out)
    done = onnx2src_cli(*(a.format(model=path, out=out, missing=tmp_path / "none.onnx") for a in args))
    assert done.returncode == 2, done.stdout + done.stderr
    assert len(done.stderr.splitlines()) == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stdout == ""
    assert snapshot(out) == before


# -- --cmake-dir ------------------------------------------------------------------------------

def test_cmake_dir_prints_the_packages_cmake_folder(tmp_path):
    done = onnx2src_cli("--cmake-dir", cwd=tmp_path)  # no model needed
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    folder = done.stdout.rstrip("\n")
    assert done.stdout == folder + "\n" and os.path.isabs(folder)
    assert folder == os.path.join(os.path.dirname(os.path.abspath(onnx2src.__file__)), "cmake")
    assert os.path.isfile(os.path.join(folder, "onnx2src-config.cmake"))
