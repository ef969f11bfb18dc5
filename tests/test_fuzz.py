"""The CLI's error contract under damaged models (issue 17), by fuzzing.

`onnx2src MODEL --target {c,numpy} -o DIR` on any model must either succeed (exit 0) or print
exactly one line `onnx2src: error: ...` on stderr and exit 2, leaving no file in DIR; it must
never end in a traceback. fuzz_models.py makes the damaged models; here each case runs through
both targets, mostly in-process (`onnx2src.cli.main`, fast) under a time and address-space
guard, and every SUBPROCESS_EVERY-th case through a real `python -m onnx2src`. When the CLI
accepts a model, the C must compile warning-free (the suite's -Werror flags, -O1) and the NumPy
module import; when onnxruntime also runs the model on random inputs of small sizes, both
targets must give its outputs (rtol 1e-4, atol 1e-5). A run collects every failure and fails
once with the list (case id, kind, base model, target, the error's last line, a repro command).

ONNX2SRC_FUZZ_SEED and ONNX2SRC_FUZZ_CASES choose other runs (the default: DEFAULT_CASES
cases of seed DEFAULT_SEED). The bounded-work tests at the end feed models whose sizes a
trusting compiler would try to honour (a 2**40 dim, a million-int attribute, 200 nested Ifs,
100,000 nodes) to a subprocess with a timeout and a memory limit. (Protobuf itself refuses to
parse messages nested deeper than about 32 Ifs: the 200-deep case checks that refusal is one
error line; the 30-deep case is the deepest onnx2src gets to see.)
"""
from __future__ import annotations

import contextlib
import io
import os
import pickle
import re
import resource
import signal
import subprocess
import sys
import traceback
import zlib
from collections import Counter

import numpy as np
import onnx
import pytest
from onnx import AttributeProto, TensorProto, helper, numpy_helper

import fuzz_models
from conftest import assert_close
from onnx2src import cli, frontend
from onnx2src.harness import CModel, Interface, have_onnxruntime, load_numpy

DEFAULT_SEED, DEFAULT_CASES = 17, 240
SEED = int(os.environ.get("ONNX2SRC_FUZZ_SEED", DEFAULT_SEED))
CASES = int(os.environ.get("ONNX2SRC_FUZZ_CASES", DEFAULT_CASES))
SUBPROCESS_EVERY = 80          # these cases run through `python -m onnx2src` as well
CALL_SECONDS = 30              # an in-process compile longer than this is a failure
SUBPROCESS_SECONDS = 60
MEMORY = 3 << 30               # bytes of address space a compile may add (in-process and subprocess)
MAX_DIM = 4                    # --max-dim for each symbolic dim; the inputs use 2 or 3
MAX_ELEMENTS = 10 ** 6         # inputs larger than this (a mutated dim) are not run
NAME = "fuzz"                  # the model file's stem, so the module name


STATS = Counter()  # what a run did: exits per status, targets compared with onnxruntime


class CallTimeout(BaseException):
    """Raised by the interval timer inside a compile that takes too long (not an Exception, so
    no `except Exception` in onnx2src swallows it)."""


def _timeout(signum, frame):
    raise CallTimeout(f"no answer within {CALL_SECONDS} s")


@contextlib.contextmanager
def guarded():
    """A time limit (SIGALRM) and an address-space limit for code run in this process."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm") as f:
        used = int(f.read().split()[0]) * resource.getpagesize()
    limit = used + MEMORY if hard == resource.RLIM_INFINITY else min(hard, used + MEMORY)
    old = signal.signal(signal.SIGALRM, _timeout)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    signal.setitimer(signal.ITIMER_REAL, CALL_SECONDS)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        signal.signal(signal.SIGALRM, old)


def signature(e: BaseException) -> str:
    """type: message @ innermost onnx2src frame: what groups failures into classes."""
    frames = [f for f in traceback.extract_tb(e.__traceback__) if os.sep + "onnx2src" + os.sep in f.filename]
    where = (f"{os.path.relpath(frames[-1].filename, os.path.dirname(os.path.dirname(frames[-1].filename)))}"
             f":{frames[-1].lineno} {frames[-1].name}") if frames else "outside onnx2src"
    text = e.summary() if hasattr(e, "summary") else str(e)  # a CBuildError's first compiler error
    message = re.sub(r"/\S*/(\d+_\d+)/", "", " ".join(text.split()))[:160]
    return f"{type(e).__name__}: {message} @ {where}"


def run_inprocess(argv):
    """(exit status, stderr, signature of an escaped exception or None) of cli.main(argv)."""
    err, out = io.StringIO(), io.StringIO()
    escaped = None
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            with guarded():
                status = cli.main(argv)
        except SystemExit as e:
            status = 0 if e.code is None else e.code
        except (Exception, CallTimeout) as e:
            status, escaped = 1, signature(e)
    return status, err.getvalue(), escaped


def limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))


def run_subprocess(argv, timeout=SUBPROCESS_SECONDS, memory=True):
    """(exit status, stderr, a problem or None) of `python -m onnx2src argv`."""
    try:
        done = subprocess.run([sys.executable, "-m", "onnx2src", *argv], capture_output=True,
                              text=True, timeout=timeout, preexec_fn=limit_memory if memory else None,
                              errors="replace")
    except subprocess.TimeoutExpired:
        return None, "", f"Timeout: no exit within {timeout} s"
    problem = None
    if "Traceback (most recent call last)" in done.stderr:
        problem = "Traceback: " + done.stderr.strip().splitlines()[-1][:200]
    elif done.returncode not in (0, 2):
        problem = f"exit {done.returncode}: " + (done.stderr.strip().splitlines() or [""])[-1][:200]
    return done.returncode, done.stderr, problem


def contract_problem(status, stderr, outdir):
    """What breaks the exit contract (None: nothing)."""
    if status not in (0, 2):
        return f"exit status {status}: " + (stderr.strip().splitlines() or [""])[-1][:200]
    if status == 2:
        lines = stderr.splitlines()
        if len(lines) != 1 or not lines[0].startswith("onnx2src: error: "):
            return f"exit 2 but stderr is {stderr[:200]!r}"
        left = os.listdir(outdir) if os.path.isdir(outdir) else []
        if left:
            return f"exit 2 but the output folder holds {sorted(left)[:5]}"
    return None


def plain_symbols(path):
    """The model's symbolic dims that can be named on a command line (for --max-dim)."""
    try:
        with guarded():
            graph = frontend.load(path)
    except (Exception, CallTimeout):  # the CLI itself will report it
        return []
    return [s for s in graph.symbols() if s and "=" not in s and "\0" not in s and s.isprintable()]


def random_inputs(iface, env, rng):
    arrays = []
    for shape, (_, dtype, _) in zip(iface.input_shapes(env), iface.inputs):
        if dtype.kind == "f":
            arrays.append(rng.standard_normal(shape).astype(dtype))
        elif dtype.kind == "b":
            arrays.append(rng.random(shape) < 0.5)
        else:
            arrays.append(rng.integers(0, 3, shape).astype(dtype))
    return arrays


def quiet_session(path):
    """An onnxruntime session on one thread that logs nothing (it refuses many of these models)."""
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    opts.log_severity_level = 4
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def ort_outputs(path, inputs):
    """onnxruntime's outputs for `inputs`, computed in a forked child, since onnxruntime aborts
    its process on some damaged models (an LSTM whose batch dim is 0: "terminate called without
    an active exception"); None where it refuses the model or the inputs, dies or hangs."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            os.close(read)
            sess = quiet_session(path)
            names = [i.name for i in sess.get_inputs()]
            data = pickle.dumps([np.asarray(o) for o in sess.run(None, dict(zip(names, inputs)))])
        except BaseException:
            data = b""
        with os.fdopen(write, "wb") as f:
            f.write(data)
        os._exit(0)
    os.close(write)
    try:
        with guarded(), os.fdopen(read, "rb") as f:
            data = f.read()
    except CallTimeout:
        os.kill(pid, signal.SIGKILL)
        data = b""
    os.waitpid(pid, 0)
    return pickle.loads(data) if data else None


def differential(path, folder, outs, sizes, seed):
    """Build what the CLI wrote for each target in `outs` and compare with onnxruntime; a list
    of (target, problem). Nothing is compared where onnxruntime refuses the model or its inputs."""
    problems = []
    try:
        iface = Interface(path)
    except Exception as e:
        return [("both", "Interface (frontend + passes) after exit 0: " + signature(e))]
    built = {}
    for target, out in outs.items():
        build = os.path.join(folder, f"build_{target}")
        os.makedirs(build)
        try:
            if target == "c":  # the suite's -std=c99 -Wall -Wextra -pedantic -Werror, at -O1
                files = {f: open(os.path.join(out, f)).read() for f in os.listdir(out)}
                built[target] = CModel(files, NAME, iface, build, ("-O1", "-DO2S_NO_DISPATCH"))
            else:
                built[target] = load_numpy(open(os.path.join(out, f"{NAME}.py")).read(), NAME, build).run
        except Exception as e:
            problems.append((target, ("C build: " if target == "c" else "NumPy import: ") + signature(e)))
    if not built or not have_onnxruntime():
        return problems
    env = {s: sizes.get(s, 1) for s in iface.symbols}
    shapes = iface.input_shapes(env)
    if any(np.prod(shape, dtype=float) > MAX_ELEMENTS or min(shape, default=0) < 0 for shape in shapes):
        return problems  # an input of a huge (2**40) or negative declared size: built, not run
    inputs = random_inputs(iface, env, np.random.default_rng(seed))
    expected = ort_outputs(path, inputs)
    if expected is None:  # onnxruntime refuses the damaged model: nothing to compare with
        return problems
    for target, run in built.items():
        STATS["compared with onnxruntime"] += 1
        try:
            assert_close(list(run(*inputs)), expected, f"{target} vs onnxruntime")
        except Exception as e:
            problems.append((target, "differs from onnxruntime: " + signature(e)))
    return problems


def check_case(case, tmp):
    """Every failure of one case, each (target, class text)."""
    folder = os.path.join(tmp, case.id.replace(":", "_"))
    os.makedirs(folder)
    path = case.write(os.path.join(folder, f"{NAME}.onnx"))
    before = sorted(os.listdir(folder))
    sizes = {s: 2 + zlib.crc32(s.encode()) % 2 for s in plain_symbols(path)}
    failures, outs, statuses = [], {}, {}
    for target in ("c", "numpy"):
        outs[target] = os.path.join(folder, f"out_{target}")
        os.makedirs(outs[target])
        argv = [path, "--target", target, "-o", outs[target], *[f"--max-dim={s}={MAX_DIM}" for s in sizes]]
        status, stderr, escaped = run_inprocess(argv)
        statuses[target] = status
        STATS[f"exit {status}"] += 1
        problem = "Traceback: " + escaped if escaped else contract_problem(status, stderr, outs[target])
        if problem:
            failures.append((target, problem))
        if case.index % SUBPROCESS_EVERY == 0:
            sub_out = os.path.join(folder, f"sub_{target}")
            os.makedirs(sub_out)
            status, stderr, problem = run_subprocess(argv[:4] + [sub_out] + argv[5:])
            problem = problem or contract_problem(status, stderr, sub_out)
            if problem:
                failures.append((target, "subprocess: " + problem))
    made = ["out_c", "out_numpy"] + (["sub_c", "sub_numpy"] if case.index % SUBPROCESS_EVERY == 0 else [])
    if sorted(os.listdir(folder)) != sorted(before + made):
        failures.append(("both", f"files appeared beside the model: {sorted(os.listdir(folder))}"))
    accepted = {t: out for t, out in outs.items() if statuses[t] == 0}
    if accepted:
        failures += differential(path, folder, accepted, sizes, case.index)
    return failures


def repro(case, target):
    return (f"python -m tests.fuzz_models --seed {case.seed} --case {case.index} -o /tmp/c.onnx && "
            f"onnx2src /tmp/c.onnx --target {target} -o /tmp/o")


def run_cases(seed, indices, tmp):
    """[(case, target, problem)] for the cases; the fuzz test and manual long runs use it."""
    results = []
    for index in indices:
        case = fuzz_models.make_case(seed, index)
        try:
            failures = check_case(case, str(tmp))
        except Exception as e:  # a bug of this test: reported with the case, the run goes on
            failures = [("both", "test harness: " + signature(e))]
        results += [(case, target, problem) for target, problem in failures]
    return results


def failure_class(problem):
    """A problem with its numbers left out: one class for one bug hit with different sizes."""
    return re.sub(r"\d+", "N", problem)


def report(results, count):
    classes = Counter(failure_class(problem) for _, _, problem in results)
    lines = [f"{len(results)} failures in {count} cases, {len(classes)} classes ({dict(STATS)}):"]
    for key, n in classes.most_common():
        case, target, problem = next(r for r in results if failure_class(r[2]) == key)
        lines.append(f"- {n}x {problem}\n    e.g. {case.describe()[:200]}\n    {repro(case, target)}")
    return "\n".join(lines)


def test_fuzz_cli_contract(tmp_path):
    assert CASES >= len(fuzz_models.KIND_NAMES), "fewer cases than kinds: some kind goes untested"
    STATS.clear()
    results = run_cases(SEED, range(CASES), tmp_path)
    assert not results, report(results, CASES)
    # the run checked something beyond exit statuses: some damaged models still compile and run
    assert STATS["compared with onnxruntime"] > 0, dict(STATS)


def test_cases_are_deterministic_and_cover_every_kind():
    kinds = {fuzz_models.make_case(SEED, i).kind for i in range(len(fuzz_models.KIND_NAMES))}
    assert kinds == set(fuzz_models.KIND_NAMES)
    for i in (0, 5, 21, 23):
        a, b = fuzz_models.make_case(SEED, i), fuzz_models.make_case(SEED, i)
        assert a.describe() == b.describe()
        assert (a.raw or a.model.SerializeToString()) == (b.raw or b.model.SerializeToString())


# -- bounded work: sizes a trusting compiler would try to honour --------------------------------

def _model(nodes, inputs, outputs, inits=(), opset=17):
    m = helper.make_model(helper.make_graph(nodes, "bounded", inputs, outputs, list(inits)),
                          opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def _info(name, shape, dtype=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, dtype, shape)


def huge_input_dim():
    """X[2**40, 4] → Tanh."""
    return _model([helper.make_node("Tanh", ["X"], ["Y"])], [_info("X", [2 ** 40, 4])], [_info("Y", [2 ** 40, 4])])


def huge_constant():
    """A Constant and an initializer declaring 2**20 x 2**20 floats with 4 bytes of data."""
    big = TensorProto(name="W", data_type=TensorProto.FLOAT, dims=[2 ** 20, 2 ** 20], raw_data=b"\0" * 4)
    const = helper.make_node("Constant", [], ["C"], value=TensorProto(
        name="c", data_type=TensorProto.FLOAT, dims=[2 ** 20, 2 ** 20], raw_data=b"\0" * 4))
    nodes = [const, helper.make_node("Add", ["X", "C"], ["S"]), helper.make_node("Add", ["S", "W"], ["Y"])]
    return _model(nodes, [_info("X", [1, 1])], [_info("Y", [2 ** 20, 2 ** 20])], [big])


def million_ints():
    """A Transpose whose perm has a million entries."""
    node = helper.make_node("Transpose", ["X"], ["Y"], perm=list(range(10 ** 6)))
    return _model([node], [_info("X", [2, 3])], [_info("Y", [3, 2])])


def nested_ifs(depth=200):
    """`depth` nested Ifs: each then-branch holds the next If, each else-branch returns X. Built
    in place: protobuf refuses to parse messages nested this deep, which copying would do."""
    def leaf(graph, level):
        graph.name = f"leaf{level}"
        graph.node.add().CopyFrom(helper.make_node("Identity", ["X"], [f"y{level}"]))
        graph.output.add().CopyFrom(_info(f"y{level}", [2]))

    m = _model([], [_info("cond", [], TensorProto.BOOL), _info("X", [2])], [_info("Y", [2])])
    graph, out = m.graph, "Y"
    for level in range(1, depth + 1):
        node = graph.node.add(op_type="If", input=["cond"], output=[out])
        leaf(node.attribute.add(name="else_branch", type=AttributeProto.GRAPH).g, -level)
        then = node.attribute.add(name="then_branch", type=AttributeProto.GRAPH)
        graph, out = then.g, f"y{level}"
        graph.name = f"g{level}"
        graph.output.add().CopyFrom(_info(out, [2]))
    graph.node.add().CopyFrom(helper.make_node("Identity", ["X"], [out]))
    return m


def many_nodes(count=100_000):
    """A chain of `count` nodes alternating Identity and Add (of a one-element initializer)."""
    nodes, last = [], "X"
    for k in range(count):
        out = "Y" if k == count - 1 else f"v{k}"
        nodes.append(helper.make_node("Identity", [last], [out]) if k % 2 else
                     helper.make_node("Add", [last, "one"], [out]))
        last = out
    one = numpy_helper.from_array(np.ones(1, np.float32), "one")
    return _model(nodes, [_info("X", ["n"])], [_info("Y", ["n"])], [one])


def _bounded(tmp_path, model, timeout):
    path = str(tmp_path / f"{NAME}.onnx")
    with open(path, "wb") as f:  # not onnx.save: it parses, and protobuf refuses 200 nested Ifs
        f.write(model.SerializeToString())
    for target in ("c", "numpy"):
        out = tmp_path / f"out_{target}"
        out.mkdir()
        status, stderr, problem = run_subprocess([path, "--target", target, "-o", str(out)], timeout)
        assert problem is None, f"{target}: {problem}"
        assert contract_problem(status, stderr, str(out)) is None, f"{target}: {stderr[-500:]}"


@pytest.mark.parametrize("make, timeout", [
    (huge_input_dim, 30), (huge_constant, 30), (million_ints, 30), (lambda: nested_ifs(30), 30),
    (nested_ifs, 30), (many_nodes, 60)],
    ids=["dim_2e40", "huge_constant", "million_ints", "nested_ifs_30", "nested_ifs_200", "nodes_100k"])
def test_bounded_work(tmp_path, make, timeout):
    _bounded(tmp_path, make(), timeout)


def main(argv=None):
    """`python tests/test_fuzz.py --seeds 1 2 3 [--cases N] [--jsonl FILE]`: a long run over
    several seeds, one report of every failure class (it does not stop at a failing seed);
    --jsonl appends each failure as it is found (seed, case, kind, base, target, problem)."""
    import argparse
    import json
    import tempfile
    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("--seeds", type=int, nargs="+", required=True)
    p.add_argument("--cases", type=int, default=DEFAULT_CASES)
    p.add_argument("--jsonl")
    args = p.parse_args(argv)
    results = []
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as tmp:
            found = run_cases(seed, range(args.cases), tmp)
        results += found
        if args.jsonl:
            with open(args.jsonl, "a") as f:
                for case, target, problem in found:
                    f.write(json.dumps(dict(seed=case.seed, case=case.index, kind=case.kind, base=case.base,
                                            target=target, problem=problem, detail=case.detail)) + "\n")
        print(f"seed {seed}: {len(found)} failures", file=sys.stderr, flush=True)
    print(report(results, args.cases * len(args.seeds)))
    print(dict(STATS))
    return 1 if results else 0


if __name__ == "__main__":
    sys.exit(main())
