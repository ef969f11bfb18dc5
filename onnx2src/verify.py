"""`onnx2src verify MODEL`: generate both targets, run them next to a reference runtime on the
same inputs, and say per target and output how far apart they are.

The reference is onnxruntime on one thread when it is importable, else
onnx.reference.ReferenceEvaluator; the report names the one used. Inputs are random (seeded) or
read from .npy/.npz files. Exit status: 0 all outputs agree (numpy.allclose semantics, NaN
equal to NaN), 1 some output differs or a target fails at run time, 2 the model does not
compile (one line on stderr, as for the main command).
"""
from __future__ import annotations

import argparse
import os
import tempfile
from dataclasses import dataclass, replace
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import DEFAULT_MAX_DIM, WEIGHT_FORMATS, CompileError, Options, generate
from .cli_args import Parser, const_arg, dim_arg, fail
from .emit import naming
from .harness import CBuildError, CModel, Interface, load_numpy, reference, rounded_model

DEFAULT_DIM = 2  # every symbolic dim not given with --dim


class UsageError(Exception):
    """Bad flags or input files: one line, exit status 2."""


# -- flags ----------------------------------------------------------------------------------
def input_arg(text: str) -> Tuple[str, str]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=FILE.npy, got {text!r}")
    return name, path


def parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="onnx2src verify",
        description="Generate the C and NumPy targets, run both and compare every output with "
                    "onnxruntime (one thread; onnx.reference if onnxruntime is missing).",
        epilog="Exit status: 0 pass, 1 an output differs (or a target fails at run time), "
               "2 the model or the flags are rejected.")
    p.add_argument("model", help="the .onnx file")
    p.add_argument("--dim", type=dim_arg, action="append", default=[], metavar="NAME=N",
                   help=f"size of a symbolic dim for the run (default {DEFAULT_DIM}); repeatable")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--inputs", metavar="FILE.npz",
                     help="all inputs, by graph-input name (or arr_0, arr_1 … in graph order)")
    src.add_argument("--input", type=input_arg, action="append", default=[],
                     metavar="NAME=FILE.npy", help="one input from a .npy file; repeatable")
    p.add_argument("--max-dim", type=dim_arg, action="append", default=[], metavar="NAME=N",
                   help="bound of a symbolic dim in the C target (default: "
                        f"max({DEFAULT_MAX_DIM}, the run's size)); repeatable")
    p.add_argument("--const", type=const_arg, action="append", default=[], metavar="INPUT=VALUE",
                   help="pin an input at compile time, as onnx2src --const does; repeatable")
    p.add_argument("--fix-dim", type=dim_arg, action="append", default=[], metavar="DIM=N",
                   help="fix a symbolic dim at compile time, as onnx2src --fix-dim does; repeatable")
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")
    p.add_argument("--rtol", type=float, default=1e-4, help="relative tolerance (default 1e-4)")
    p.add_argument("--atol", type=float, default=1e-5, help="absolute tolerance (default 1e-5)")
    p.add_argument("--target", choices=("c", "numpy"), action="append",
                   help="check only this target (default: both); repeatable")
    p.add_argument("--no-ort", action="store_true",
                   help="compare with onnx.reference even if onnxruntime is installed")
    p.add_argument("--weights", choices=WEIGHT_FORMATS, default="float",
                   help="generate as onnx2src --weights does; the reference then runs the model with "
                        "its matrices rounded the same way (bf16: C target only)")
    return p


# -- inputs ---------------------------------------------------------------------------------
def resolve_dims(iface: Interface, given: Sequence[Tuple[str, int]], what: str = "--dim",
                 default: Optional[int] = DEFAULT_DIM) -> Dict[str, int]:
    """{symbol: size} from NAME=N pairs, naming symbols by their ONNX name or C identifier."""
    by_name = {s: s for s in iface.symbols}
    by_name.update({naming.sanitize(s): s for s in iface.symbols if naming.sanitize(s) not in by_name})
    env = {}
    for name, n in given:
        if name not in by_name:
            raise UsageError(f"{what} {name}={n}: the model has no symbolic dim {name!r} "
                             f"(symbolic dims: {', '.join(iface.symbols) or 'none'})")
        if n < 1:
            raise UsageError(f"{what} {name}={n}: a size must be at least 1")
        env[by_name[name]] = n
    if default is not None:
        for s in iface.symbols:
            env.setdefault(s, default)
    return {s: env[s] for s in iface.symbols if s in env}


def random_inputs(iface: Interface, env: Dict[str, int], seed: int = 0) -> List[np.ndarray]:
    """Floats standard normal, integers in [1, 4], bools fair coins; one seeded generator."""
    rng = np.random.default_rng(seed)
    arrays = []
    for (name, dtype, _), shape in zip(iface.inputs, iface.input_shapes(env)):
        if shape is None:
            raise UsageError(f'input "{name}" has no declared shape; give it with --input or --inputs')
        if dtype.kind == "f":
            a = rng.standard_normal(shape).astype(dtype)
        elif dtype.kind in "iu":
            a = rng.integers(1, 5, size=shape).astype(dtype)
        elif dtype.kind == "b":
            a = rng.integers(0, 2, size=shape).astype(bool)
        else:
            raise UsageError(f'input "{name}": no random values for dtype {dtype}')
        arrays.append(a)
    return arrays


def load_inputs(iface: Interface, npz: Optional[str] = None,
                npys: Sequence[Tuple[str, str]] = ()) -> List[np.ndarray]:
    """The graph inputs, in order, from one .npz or NAME=FILE.npy pairs; checked against the
    declared dtypes and fixed dims (never converted silently)."""
    names = [n for n, _, _ in iface.inputs]
    found: Dict[str, np.ndarray] = {}
    try:
        if npz:
            with np.load(npz, allow_pickle=False) as z:
                keys = list(z.keys())
                if all(n in keys for n in names):
                    found = {n: z[n] for n in names}
                elif keys == [f"arr_{i}" for i in range(len(names))]:
                    found = {n: z[k] for n, k in zip(names, keys)}
                else:
                    missing = [n for n in names if n not in keys]
                    raise UsageError(f"{npz}: no array for input(s) {', '.join(missing)} "
                                     f"(it holds {', '.join(keys) or 'nothing'})")
        else:
            for name, path in npys:
                if name not in names:
                    raise UsageError(f"--input {name}=...: the model has no input {name!r} "
                                     f"(inputs: {', '.join(names)})")
                found[name] = np.load(path, allow_pickle=False)
            missing = [n for n in names if n not in found]
            if missing:
                raise UsageError(f"--input: no file for input(s) {', '.join(missing)}")
    except (OSError, ValueError) as e:
        raise UsageError(f"cannot read inputs: {e}")
    arrays = []
    for name, dtype, shape in iface.inputs:
        a = np.asarray(found[name])
        if a.dtype != dtype:
            raise UsageError(f'input "{name}": the file holds {a.dtype}, the model takes {dtype}')
        if shape is not None:
            bad = len(shape) != a.ndim or any(isinstance(d, int) and d != n for d, n in zip(shape, a.shape))
            if bad:
                raise UsageError(f'input "{name}": the file holds shape {a.shape}, the model takes '
                                 f"[{', '.join(str(d) for d in shape)}]")
        arrays.append(a)
    return arrays


def input_dims(iface: Interface, arrays: Sequence[np.ndarray], given: Dict[str, int]) -> Dict[str, int]:
    """The symbol sizes the given arrays imply; a --dim that disagrees is an error."""
    try:
        env = iface.sizes(arrays)
    except ValueError as e:
        raise UsageError(str(e))
    for s, n in given.items():
        if s in env and env[s] != n:
            raise UsageError(f"--dim {s}={n}, but the input files have {s}={env[s]}")
    return {s: env[s] for s in iface.symbols if s in env}


# -- comparison -----------------------------------------------------------------------------
@dataclass
class Row:
    """One output of one target against the reference."""
    target: str
    output: str
    shape: Tuple[int, ...]
    max_abs: float
    max_rel: float
    ok: bool
    note: str = ""


def errors(actual: np.ndarray, expected: np.ndarray) -> Tuple[float, float]:
    """(max |a-e|, max |a-e|/|e|) over elements; the relative error skips e == 0 and
    positions where both are NaN or equal infinities (which count as equal)."""
    a = np.asarray(actual, np.float64)
    e = np.asarray(expected, np.float64)
    if a.size == 0:
        return 0.0, 0.0
    same = (a == e) | (np.isnan(a) & np.isnan(e))
    diff = np.where(same, 0.0, np.abs(a - e))
    diff = np.where(np.isnan(diff), np.inf, diff)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where((e != 0) & ~same, diff / np.abs(e), 0.0)
    return float(diff.max()), float(np.nan_to_num(rel, nan=np.inf).max())


def compare(target: str, names: Sequence[str], actual: Sequence[np.ndarray],
            expected: Sequence[np.ndarray], rtol: float = 1e-4, atol: float = 1e-5) -> List[Row]:
    """A Row per output: floats pass under numpy.allclose(actual, expected, rtol, atol,
    equal_nan=True); other dtypes must be equal; shapes and dtypes must match."""
    rows = []
    if len(actual) != len(expected):
        return [Row(target, "*", (), float("inf"), float("inf"), False,
                    f"{len(actual)} outputs, the reference has {len(expected)}")]
    for name, a, e in zip(names, actual, expected):
        a, e = np.asarray(a), np.asarray(e)
        if a.shape != e.shape:
            rows.append(Row(target, name, a.shape, float("inf"), float("inf"), False,
                            f"shape {a.shape}, reference {e.shape}"))
            continue
        abs_err, rel_err = errors(a, e)
        if a.dtype != e.dtype:
            ok, note = False, f"dtype {a.dtype}, reference {e.dtype}"
        elif a.dtype.kind in "fc":
            ok, note = bool(np.allclose(a, e, rtol=rtol, atol=atol, equal_nan=True)), ""
        else:
            ok, note = bool(np.array_equal(a, e)), ""
        if not ok and not note:
            bad = int(np.count_nonzero(~np.isclose(a, e, rtol=rtol, atol=atol, equal_nan=True))
                      if a.dtype.kind in "fc" else np.count_nonzero(a != e))
            note = f"{bad} of {a.size} elements differ"
        rows.append(Row(target, name, a.shape, abs_err, rel_err, ok, note))
    return rows


def failed(target: str, names: Sequence[str], why: str) -> List[Row]:
    """Rows for a target that produced no outputs (it raised, or returned an error code)."""
    return [Row(target, n, (), float("nan"), float("nan"), False, why) for n in names]


def report(rows: Sequence[Row], rtol: float, atol: float) -> Tuple[str, bool]:
    """The table and the final PASS/FAIL line; returns (text, passed)."""
    head = ("target", "output", "shape", "max abs err", "max rel err", "result")
    body = [(r.target, r.output, "x".join(map(str, r.shape)) or "-", f"{r.max_abs:.3g}",
             f"{r.max_rel:.3g}", "ok" if r.ok else "FAIL" + (f" ({r.note})" if r.note else ""))
            for r in rows]
    widths = [max(len(x[i]) for x in [head, *body]) for i in range(len(head) - 1)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(x[:-1], widths)) + "  " + x[-1]
             for x in [head, *body]]
    passed = bool(rows) and all(r.ok for r in rows)
    targets = sorted({r.target for r in rows})
    bad = [f"{r.target}:{r.output}" for r in rows if not r.ok]
    if passed:
        lines.append(f"PASS: {len(rows)} output(s) of {', '.join(targets)} within "
                     f"rtol={rtol:g} atol={atol:g}")
    else:
        lines.append(f"FAIL: {', '.join(bad) or 'nothing compared'} (rtol={rtol:g} atol={atol:g})")
    return "\n".join(lines), passed


# -- the command ----------------------------------------------------------------------------
def prepare(path: str, dims: Sequence[Tuple[str, int]], npz: Optional[str], npys,
            max_dims: Sequence[Tuple[str, int]], seed: int, options: Options):
    """(interface, inputs, env, bounds) for a run of the code `options` generate (their consts
    and fixed dims; the bounds are for the caller to add); raises UsageError or CompileError.
    Inputs pinned with options.consts (--const) are neither generated nor read: the reference
    gets their values, the generated code has them built in."""
    if not os.path.isfile(path):
        raise UsageError(f"{path}: no such file")
    iface = Interface(path, options)
    given = resolve_dims(iface, dims, default=None)
    if npz or npys:
        inputs = load_inputs(iface, npz, npys)
        env = input_dims(iface, inputs, given)
    else:
        env = resolve_dims(iface, dims)
        inputs = random_inputs(iface, env, seed)
    bounds = resolve_dims(iface, max_dims, "--max-dim", default=None)
    for s, n in env.items():  # the C code must accept the sizes of this run
        if bounds.get(s, n) < n:
            raise UsageError(f"{s}={n} is above its bound {bounds[s]} (--max-dim {s}={bounds[s]}); "
                             f"raise it with --max-dim {s}={n}, or leave it out to follow the run")
        bounds.setdefault(s, max(DEFAULT_MAX_DIM, n))
    return iface, inputs, env, bounds


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    name = "model"
    try:
        targets = args.target or (["c"] if args.weights == "bf16" else ["numpy", "c"])
        options = Options(targets[0], name=name, consts=args.const, fixed_dims=args.fix_dim, weights=args.weights)
        iface, inputs, env, bounds = prepare(args.model, args.dim, args.inputs, args.input,
                                             args.max_dim, args.seed, options)
        options = replace(options, max_dims=bounds)
        with tempfile.TemporaryDirectory(prefix="onnx2src-verify-") as work:
            runners = {}
            for t in dict.fromkeys(targets):
                files = generate(args.model, replace(options, target=t))
                if t == "numpy":
                    module = load_numpy(files[f"{name}.py"], name, work)
                    runners[t] = lambda *xs, m=module: list(m.run(*xs))
                else:
                    cmodel = CModel(files, name, iface, work)
                    runners[t] = cmodel
            model = args.model
            if args.weights != "float":  # the model with its matrices as the code stores them
                model = rounded_model(args.model, os.path.join(work, f"{args.weights}.onnx"), args.weights)
            label, ref = reference(model, use_ort=not args.no_ort, pinned=iface.pinned)
            dims = " ".join(f"{s}={n}" for s, n in env.items()) or "none"
            source = (f"files ({args.inputs or ', '.join(p for _, p in args.input)})"
                      if args.inputs or args.input else f"random (seed {args.seed})")
            print(f"onnx2src verify {args.model}")
            print(f"dims: {dims}; inputs: {source}; reference: {label}"
                  + (f" on the model with {args.weights} weights" if args.weights != "float" else ""))
            try:
                expected = ref(inputs)
            except Exception as e:  # noqa: BLE001 - the reference rejects the model or inputs
                raise UsageError(f"the reference ({label}) failed: {str(e).strip().splitlines()[0]}")
            names = [n for n, _, _ in iface.outputs]
            rows = []
            for t, run in runners.items():
                rows += run_target(t, run, inputs, names, expected, args.rtol, args.atol)
    except (CompileError, UsageError, CBuildError) as e:
        return fail("onnx2src verify", e)
    text, passed = report(rows, args.rtol, args.atol)
    print(text)
    return 0 if passed else 1


def run_target(target, run, inputs, names, expected, rtol, atol) -> List[Row]:
    """Run one target and compare; a target that raises or returns a code fails its rows."""
    try:
        if isinstance(run, CModel):
            code, outputs = run.call(*inputs)
            if code != 0:
                return failed(target, names, f"{run.name}_run returned {code}")
        else:
            outputs = run(*inputs)
    except Exception as e:  # noqa: BLE001 - reported as this target's failure
        return failed(target, names, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
    return compare(target, names, outputs, expected, rtol, atol)
