"""Command line: argparse only; every flag maps to a compile_model() option.

Errors print one line on stderr and exit with status 2, with no traceback and no files written.
"""
import argparse
import sys

from . import DEFAULT_MAX_DIM, TARGETS, CompileError, __version__, compile_model


def _max_dim(text: str):
    name, sep, value = text.partition("=")
    if not sep or not name or not value.strip().isdigit():
        raise argparse.ArgumentTypeError(f"expected DIM=N, got {text!r}")
    return name, int(value)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="onnx2src", description="Compile an ONNX model to NumPy or C99 source.")
    p.add_argument("model", help="the .onnx file (external weights are read from beside it)")
    p.add_argument("--target", choices=TARGETS, required=True, help="c: NAME.h + NAME.c; numpy: NAME.py")
    p.add_argument("-o", "--outdir", default=".", help="where to write the files (default: .)")
    p.add_argument("--name", help="module / symbol prefix (default: the model file's stem)")
    p.add_argument("--max-dim", type=_max_dim, action="append", default=[], metavar="DIM=N",
                   help=f"bound of a symbolic dim in the C target (default {DEFAULT_MAX_DIM}); repeatable")
    p.add_argument("--version", action="version", version=f"onnx2src {__version__}")
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        written = compile_model(args.model, args.target, args.outdir, args.name, dict(args.max_dim))
    except CompileError as e:
        print(f"onnx2src: error: {e}", file=sys.stderr)
        return 2
    for path in written.values():
        print(path)
    return 0
