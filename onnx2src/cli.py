"""Command line: argparse only; the flags make one Options (options.py) for compile_model(),
but --check (generate in memory and compare with -o DIR: exit 0 if it is up to date, else 1
with one line per stale or missing file; it never writes) and --cmake-dir (print the CMake
package's folder).

Errors print one line on stderr and exit with status 2, with no traceback and no files written;
a failed IR check (--check-ir) or any other failure inside onnx2src (a bug in it, not in the
model) prints one line and exits 3.
`onnx2src verify ...` and `onnx2src bench ...` are dispatched on the first argument to
verify.main and bench.main, so `onnx2src MODEL --target ...` keeps its exact form.
"""
import argparse
import os
import sys

from . import (DEFAULT_MAX_BATCH, DEFAULT_MAX_DIM, TARGETS, WEIGHT_FORMATS, CompileError, InternalError, Options,
               __version__, compile_model, generate, stale_files)
from .cli_args import Parser, const_arg, dim_arg, fail

CMAKE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cmake")


class CMakeDir(argparse.Action):
    """--cmake-dir: print the folder of the CMake package config and exit, as --version does."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        if not os.path.isfile(os.path.join(CMAKE_DIR, "onnx2src-config.cmake")):
            parser.exit(2, f"{parser.prog}: error: this installation lacks {CMAKE_DIR}/onnx2src-config.cmake\n")
        print(CMAKE_DIR)
        parser.exit(0)


def parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="onnx2src", description="Compile an ONNX model to NumPy or C99 source.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="other commands:\n"
               "  onnx2src verify MODEL [--dim NAME=N ...] [--inputs FILE.npz] ...\n"
               "      run both targets and compare them with onnxruntime; exit 1 on a mismatch\n"
               "  onnx2src bench MODEL [--dim NAME=N ...] [--cflags FLAGS ...] [--json] ...\n"
               "  onnx2src bench --models samples/bench/models.json\n"
               "      time the C target, the NumPy target and onnxruntime (one thread)\n"
               "see `onnx2src verify --help` and `onnx2src bench --help`")
    p.add_argument("model", help="the .onnx file (external weights are read from beside it)")
    p.add_argument("--target", choices=TARGETS, required=True,
                   help="c: NAME.h, NAME.c and NAME_weights.c; numpy: NAME.py")
    p.add_argument("-o", "--outdir", default=".", help="where to write the files (default: .)")
    p.add_argument("--check", action="store_true",
                   help="write nothing: exit 0 if OUTDIR holds exactly what would be written, else "
                        "1 with one line per stale or missing file (for vendored code in CI)")
    p.add_argument("--name", help="module / symbol prefix (default: the model file's stem)")
    p.add_argument("--max-dim", type=dim_arg, action="append", default=[], metavar="DIM=N",
                   help=f"bound of a symbolic dim in the C target (default {DEFAULT_MAX_DIM}, but "
                        f"{DEFAULT_MAX_BATCH} for a recurrence's batch); repeatable")
    p.add_argument("--stream", action="store_true",
                   help="require the step API (NAME_init / NAME_step, NumPy Stream): an error says "
                        "why a model can't run chunk by chunk (it is generated whenever it can)")
    p.add_argument("--weights-file", action="store_true",
                   help="C target: write the weights into NAME.weights, a binary file the program "
                        "loads and passes to every call, instead of compiling them in (NAME_weights.c)")
    p.add_argument("--weights", choices=WEIGHT_FORMATS, default="float",
                   help="how constant matrices (Gemm, MatMul, Conv, the recurrences' W and R) "
                        "are stored: float (exact, the default); bf16 (C target: half the bytes, "
                        "float32 arithmetic); int8 (both targets: a quarter of the bytes, symmetric "
                        "with a scale per output channel, float32 arithmetic); see "
                        "docs/performance.md, Reduced-precision weights and int8 weights")
    p.add_argument("--approx-activations", action="store_true",
                   help="C target: faster rational tanh/sigmoid (max abs error 1.4e-6) instead of "
                        "the default ones accurate to a few ulp")
    p.add_argument("--const", type=const_arg, action="append", default=[], metavar="INPUT=VALUE",
                   help="pin an input to a value (JSON: 16000, [1, 2]) at compile time, so what "
                        "depends on it folds away (e.g. an If on the sample rate); repeatable")
    p.add_argument("--fix-dim", type=dim_arg, action="append", default=[], metavar="DIM=N",
                   help="fix a symbolic dim to a size at compile time (e.g. a streaming model's "
                        "chunk length), so shapes that depend on it become constant; repeatable")
    p.add_argument("--check-ir", action="store_true",
                   help="check the compiler's intermediate representation after every pass "
                        "(a failed check is a bug in onnx2src: exit status 3)")
    p.add_argument("--version", action="version", version=f"onnx2src {__version__}")
    p.add_argument("--cmake-dir", action=CMakeDir,
                   help="print the folder of onnx2src's CMake package (for -Donnx2src_DIR=) and exit")
    return p


SUBCOMMANDS = ("verify", "bench")


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in SUBCOMMANDS:
        if argv[0] == "verify":
            from .verify import main as sub
        else:
            from .bench import main as sub
        return sub(argv[1:])
    args = parser().parse_args(argv)
    summary = {}
    try:
        options = Options(args.target, name=args.name, max_dims=args.max_dim, approximate=args.approx_activations,
                          check_ir=args.check_ir, consts=args.const, fixed_dims=args.fix_dim, stream=args.stream,
                          weights_file=args.weights_file, weights=args.weights)
        if args.check:
            stale = stale_files(generate(args.model, options), args.outdir)
            for path, why in stale.items():
                print(f"{path}: {why}")
            return 1 if stale else 0
        written = compile_model(args.model, options, args.outdir, summary=summary)
    except CompileError as e:
        return fail("onnx2src", e)
    except InternalError as e:
        return fail("onnx2src", f"internal error, a bug in onnx2src (please report it): {e}", status=3)
    except Exception as e:  # a bug all the same: one line, never a traceback
        return fail("onnx2src", f"internal error, a bug in onnx2src (please report it): "
                                f"{type(e).__name__}: {e}", status=3)
    for path in written.values():
        print(path)
    if summary:
        print(memory_line(summary), file=sys.stderr)
    return 0


def memory_line(summary) -> str:
    """What the C code needs: weights (flash on a microcontroller) and the static arena (RAM)."""
    bounds = ", ".join(f"{s} <= {n}" for s, n in summary["bounds"].items())
    name = summary["name"]
    where = (f"in {name}.weights, {summary['weights_file']:,} bytes" if summary.get("weights_file")
             else "const")
    return (f"memory: {summary['weight_bytes']:,} bytes of weights ({where}); {name}_run's static arena "
            f"{summary['arena_bytes']:,} bytes" + (f" at {bounds} (--max-dim DIM=N to change)" if bounds else "")
            + f"; {name}_workspace_size(dims) gives the bytes a call needs")
