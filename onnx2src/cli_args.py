"""What the commands `onnx2src`, `onnx2src verify` and `onnx2src bench` share: the argument
parser's error behaviour, the NAME=N and INPUT=VALUE flag types, and the one-line error exit.
Its own module so that verify and bench need not import cli (which dispatches to them).
"""
import argparse
import sys
from typing import Tuple

LINE_LIMIT = 1000  # characters of an error line


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit status 2 (the CLI contract),
    and no abbreviated options (`--check` must never be read as `--check-ir`)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, allow_abbrev=False, **kwargs)

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def dim_arg(text: str) -> Tuple[str, int]:
    """DIM=N (--max-dim, --fix-dim, --dim) as (DIM, N)."""
    name, sep, value = text.partition("=")
    if not sep or not name or not value.strip().isdigit():
        raise argparse.ArgumentTypeError(f"expected DIM=N, got {text!r}")
    return name, int(value)


def const_arg(text: str) -> Tuple[str, str]:
    """INPUT=VALUE (--const) as (INPUT, VALUE), the value JSON text."""
    name, sep, value = text.partition("=")
    if not sep or not name or not value.strip():
        raise argparse.ArgumentTypeError(f"expected INPUT=VALUE, got {text!r}")
    return name, value


def fail(prog: str, error, status: int = 2) -> int:
    """Print `error` (an exception or text) as one line on stderr; return the exit status (2:
    the input is at fault)."""
    text = error.summary() if hasattr(error, "summary") else str(error)
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)  # one line, always
    if len(text) > LINE_LIMIT:  # a hostile model's strings can be long
        text = text[:LINE_LIMIT - 3] + "..."
    print(f"{prog}: error: {text}", file=sys.stderr)
    return status
