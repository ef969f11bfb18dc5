"""The op registry is complete whatever is imported first: importing any module of the package
(say onnx2src.emit.c, which reaches into ops.recurrent) before compiling must not leave the
registry with only some op modules loaded. Each case runs in a fresh interpreter."""
import os
import pkgutil
import subprocess
import sys

import pytest

import onnx2src

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODULES = sorted(m.name for m in pkgutil.walk_packages(onnx2src.__path__, "onnx2src.")
                 if m.name != "onnx2src.__main__")  # that one runs the CLI
# a TorchScript export: Shape (opset 13), Gather, Concat, ConstantOfShape, LSTM, Gemm ...
MODEL = os.path.join(ROOT, "tests", "exports", "lstm_l1_uni_bf_noh0_last_ts.onnx")

PROGRAM = """
import importlib, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
from onnx2src import Options, generate
from onnx2src.ops import _REGISTRY
generate({model!r}, Options("c"))
generate({model!r}, Options("numpy"))
print(" ".join(sorted(_REGISTRY)))
"""


def registry_after(*first):
    done = subprocess.run([sys.executable, "-c", PROGRAM.format(model=MODEL), *first],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_modules_found():
    assert "onnx2src.emit.c" in MODULES and "onnx2src.ops.recurrent" in MODULES


@pytest.mark.parametrize("first", MODULES + ["onnx2src.ops.recurrent onnx2src.emit.c"])
def test_registry_complete_whatever_is_imported_first(first):
    assert registry_after(*first.split()) == registry_after()
