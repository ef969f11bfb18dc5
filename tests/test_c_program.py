"""The C target as a user builds it: a real executable (not a shared library) whose main()
includes the generated header, reads fixed inputs from a binary file, calls NAME_run and writes
the outputs to a binary file; compared with onnxruntime. Two generated models with different
--name link into one program, proving their symbols don't clash.
"""
import os
import re
import shutil
import subprocess

import numpy as np
import onnx
import pytest
from onnx import TensorProto as TP
from onnx import helper, numpy_helper

from onnx2src import Options, compile_model
from onnx2src.harness import WARNINGS, compiler

from conftest import assert_close, ort_run

CTYPE = {np.dtype(np.float32): "float", np.dtype(np.float64): "double",
         np.dtype(np.int32): "int32_t", np.dtype(np.int64): "int64_t"}


def _model(nodes, inputs, outputs, inits):
    m = helper.make_model(helper.make_graph(nodes, "program_test", inputs, outputs, inits),
                          opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def head_model():
    """X[batch, seq, 8] → last step → Linear(8, 4) → softmax, and the Tanh of the logits."""
    rng = np.random.default_rng(11)
    nodes = [helper.make_node("Gather", ["X", "last"], ["h"], axis=1, name="/Gather"),
             helper.make_node("Gemm", ["h", "fc.weight", "fc.bias"], ["y"], transB=1, name="/fc/Gemm"),
             helper.make_node("Softmax", ["y"], ["P"], axis=-1, name="/Softmax"),
             helper.make_node("Tanh", ["y"], ["T"], name="/Tanh")]
    inits = [numpy_helper.from_array(np.array(-1, np.int64), "last"),
             numpy_helper.from_array(rng.standard_normal((4, 8)).astype(np.float32), "fc.weight"),
             numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "fc.bias")]
    return _model(nodes, [helper.make_tensor_value_info("X", TP.FLOAT, ["batch", "seq", 8])],
                  [helper.make_tensor_value_info("P", TP.FLOAT, ["batch", 4]),
                   helper.make_tensor_value_info("T", TP.FLOAT, ["batch", 4])], inits)


def tail_model():
    """Another model with the same initializer and node names as head_model (so the same
    static identifiers inside its .c), a double input and a double output:
    Y = sigmoid(X @ W.T + b); Z = double(Y) + D."""
    rng = np.random.default_rng(12)
    nodes = [helper.make_node("Gemm", ["X", "fc.weight", "fc.bias"], ["y"], transB=1, name="/fc/Gemm"),
             helper.make_node("Sigmoid", ["y"], ["Y"], name="/Tanh"),
             helper.make_node("Cast", ["Y"], ["y64"], to=TP.DOUBLE, name="/Gather"),
             helper.make_node("Add", ["y64", "D"], ["Z"], name="/Softmax")]
    inits = [numpy_helper.from_array(rng.standard_normal((3, 6)).astype(np.float32), "fc.weight"),
             numpy_helper.from_array(rng.standard_normal(3).astype(np.float32), "fc.bias")]
    return _model(nodes, [helper.make_tensor_value_info("X", TP.FLOAT, ["n", 6]),
                          helper.make_tensor_value_info("D", TP.DOUBLE, ["n", 3])],
                  [helper.make_tensor_value_info("Y", TP.FLOAT, ["n", 3]),
                   helper.make_tensor_value_info("Z", TP.DOUBLE, ["n", 3])], inits)


class Generated:
    """One model compiled into `outdir` under `name`, with what main() needs to call it."""

    def __init__(self, model, name, outdir):
        self.name = name
        self.path = os.path.join(str(outdir), f"{name}.onnx")
        onnx.save(model, self.path)
        written = compile_model(self.path, Options("c", name=name), str(outdir))
        self.sources = sorted(p for f, p in written.items() if f.endswith(".c"))
        self.header = open(os.path.join(str(outdir), f"{name}.h")).read()
        params = re.search(rf"^int {name}_run\(([^)]*)\)", self.header, re.M).group(1).split(", ")
        self.ndims = sum(1 for p in params if re.fullmatch(r"int64_t \w+", p))  # not int64_t *outputs

    def call_c(self, dims, inputs, outputs):
        """C statements: read the inputs from `fin`, call NAME_run, write the outputs to `fout`.
        `dims` are C expressions; `inputs` / `outputs` are arrays giving dtypes and sizes."""
        n = self.name
        lines = ["{"]
        for i, x in enumerate(inputs):
            lines.append(f"    static {CTYPE[x.dtype]} in{i}[{x.size}];")
            lines.append(f"    if (fread(in{i}, sizeof in{i}, 1, fin) != 1) return 3;")
        for i, y in enumerate(outputs):
            lines.append(f"    static {CTYPE[y.dtype]} out{i}[{y.size}];")
        args = list(dims) + [f"in{i}" for i in range(len(inputs))] + [f"out{i}" for i in range(len(outputs))]
        lines.append(f"    int rc = {n}_run({', '.join(args)});")
        lines.append(f'    printf("{n} %d %d\\n", rc, {n.upper()}_EDIM);')
        lines.append("    if (rc == 0) {")
        for i in range(len(outputs)):
            lines.append(f"        if (fwrite(out{i}, sizeof out{i}, 1, fout) != 1) return 4;")
        lines.append("    }")
        lines.append("}")
        return "\n".join("    " + line for line in lines)


def main_source(models, calls):
    """A whole program: `prog IN OUT [dims...]`; the dims come from argv in call order."""
    includes = "".join(f'#include "{g.name}.h"\n' for g in models)
    body = "\n".join(calls)
    return f"""/* a test program calling generated models */
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
{includes}
int main(int argc, char **argv)
{{
    FILE *fin, *fout;
    if (argc < 3) return 2;
    fin = fopen(argv[1], "rb");
    fout = fopen(argv[2], "wb");
    if (!fin || !fout) return 2;
{body}
    fclose(fin);
    if (fclose(fout) != 0) return 5;
    return 0;
}}
"""


def build_program(tmp_path, models, calls, extra_flags=()):
    src = tmp_path / "main.c"
    src.write_text(main_source(models, calls))
    exe = tmp_path / "prog"
    sources = [str(src)] + [s for g in models for s in g.sources]
    cmd = [compiler(), *WARNINGS, "-O2", *extra_flags, "-I", str(tmp_path), *sources,
           "-o", str(exe), "-lm"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0 and not done.stderr, f"{' '.join(cmd)}\n{done.stderr}"
    return exe


def run_program(exe, tmp_path, inputs, argv=(), env=None):
    """Write the inputs, run the program; returns (stdout lines, raw output bytes)."""
    fin, fout = tmp_path / "in.bin", tmp_path / "out.bin"
    fin.write_bytes(b"".join(np.ascontiguousarray(x).tobytes() for x in inputs))
    done = subprocess.run([str(exe), str(fin), str(fout), *map(str, argv)],
                          capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout.splitlines(), fout.read_bytes()


def split(raw, like):
    """Cut the output file into arrays shaped and typed like `like`."""
    out, at = [], 0
    for e in like:
        e = np.asarray(e)
        out.append(np.frombuffer(raw[at:at + e.nbytes], dtype=e.dtype).reshape(e.shape))
        at += e.nbytes
    assert at == len(raw), f"output file has {len(raw)} bytes, expected {at}"
    return out


def head_inputs(batch, seq):
    return [np.random.default_rng(batch * 100 + seq).standard_normal((batch, seq, 8)).astype(np.float32)]


def tail_inputs(n):
    rng = np.random.default_rng(n)
    return [rng.standard_normal((n, 6)).astype(np.float32), rng.standard_normal((n, 3))]


def test_program_runs_model_like_onnxruntime(tmp_path):
    head = Generated(head_model(), "head", tmp_path)
    assert head.ndims == 2
    sizes = [(3, 5), (1, 1), (2, 7)]
    calls, inputs, expected = [], [], []
    for batch, seq in sizes:
        x = head_inputs(batch, seq)
        e = ort_run(head.path, x)
        calls.append(head.call_c([str(batch), str(seq)], x, e))
        inputs += x
        expected += e
    exe = build_program(tmp_path, [head], calls)
    lines, raw = run_program(exe, tmp_path, inputs)
    assert lines == ["head 0 1"] * len(sizes), lines   # 0: success; 1: HEAD_EDIM, for reference
    assert_close(split(raw, expected), expected, "head program")


def test_program_gets_edim_for_bad_dims(tmp_path):
    """Dims from argv at run time: 0 and one above the bound return NAME_EDIM; in between, OK."""
    head = Generated(head_model(), "head", tmp_path)
    x = head_inputs(2, 3)
    e = ort_run(head.path, x)
    calls = [head.call_c(["strtoll(argv[3], NULL, 10)", "strtoll(argv[4], NULL, 10)"], x, e)]
    exe = build_program(tmp_path, [head], calls)
    edim = int(re.search(r"#define HEAD_EDIM (\d+)", head.header).group(1))
    bound = int(re.search(r"#define HEAD_MAX_BATCH (\d+)", head.header).group(1))
    for batch, seq in ((0, 3), (2, 0), (-5, 3), (bound + 1, 3)):
        lines, raw = run_program(exe, tmp_path, x, argv=(batch, seq))
        assert lines == [f"head {edim} {edim}"], (batch, seq, lines)
        assert raw == b""
    lines, raw = run_program(exe, tmp_path, x, argv=(2, 3))
    assert lines == [f"head 0 {edim}"]
    assert_close(split(raw, e), e)


def test_two_models_link_into_one_program(tmp_path):
    """Both models compiled into the same directory, with the same initializer and node names,
    linked together: no duplicate symbols, and each still matches onnxruntime."""
    head = Generated(head_model(), "head", tmp_path)
    tail = Generated(tail_model(), "tail", tmp_path)
    xh, xt = head_inputs(3, 4), tail_inputs(5)
    eh, et = ort_run(head.path, xh), ort_run(tail.path, xt)
    calls = [head.call_c(["3", "4"], xh, eh), tail.call_c(["5"], xt, et)]
    exe = build_program(tmp_path, [head, tail], calls)
    lines, raw = run_program(exe, tmp_path, xh + xt)
    assert [line.split()[:2] for line in lines] == [["head", "0"], ["tail", "0"]], lines
    got = split(raw, eh + et)
    assert_close(got[:len(eh)], eh, "head")
    assert_close(got[len(eh):], et, "tail")


def test_exported_symbols_carry_the_prefix(tmp_path):
    """Every external symbol a generated .c defines starts with NAME_ (the rest is static)."""
    nm = shutil.which("nm")
    if nm is None:
        pytest.skip("nm (binutils) is not installed: cannot list the object's symbols")
    for model, name in ((head_model(), "head"), (tail_model(), "tail")):
        g = Generated(model, name, tmp_path)
        for src in g.sources:
            obj = tmp_path / (os.path.basename(src) + ".o")
            done = subprocess.run([compiler(), *WARNINGS, "-O1", "-c", src, "-o", str(obj)],
                                  capture_output=True, text=True)
            assert done.returncode == 0, done.stderr
            listed = subprocess.run([nm, "-g", "--defined-only", str(obj)], capture_output=True,
                                    text=True, check=True).stdout
            symbols = [line.split()[-1] for line in listed.splitlines() if line.strip()]
            assert f"{name}_run" in symbols or src.endswith("_weights.c"), symbols
            assert symbols and all(s.startswith(f"{name}_") for s in symbols), symbols


def _sanitizer_flags(tmp_path):
    flags = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]
    probe = tmp_path / "probe.c"
    probe.write_text("int main(void) { return 0; }\n")
    done = subprocess.run([compiler(), *flags, str(probe), "-o", str(tmp_path / "probe")],
                          capture_output=True, text=True)
    if done.returncode != 0 or subprocess.run([str(tmp_path / "probe")]).returncode != 0:
        return None
    return flags


def test_two_models_under_address_and_undefined_sanitizers(tmp_path):
    """The same two-model program under ASan + UBSan: no out-of-bounds access, no UB."""
    flags = _sanitizer_flags(tmp_path)
    if flags is None:
        pytest.skip(f"{compiler()} cannot build and run -fsanitize=address,undefined programs here")
    head = Generated(head_model(), "head", tmp_path)
    tail = Generated(tail_model(), "tail", tmp_path)
    xh, xt = head_inputs(2, 6), tail_inputs(1)
    eh, et = ort_run(head.path, xh), ort_run(tail.path, xt)
    calls = [head.call_c(["2", "6"], xh, eh), tail.call_c(["1"], xt, et)]
    exe = build_program(tmp_path, [head, tail], calls, extra_flags=flags)
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0", UBSAN_OPTIONS="print_stacktrace=1")
    lines, raw = run_program(exe, tmp_path, xh + xt, env=env)
    got = split(raw, eh + et)
    assert_close(got, eh + et, "sanitized program")
