"""Build and call generated code from Python: the C target through a shared library and
ctypes, the NumPy target by importing the module. `verify`, `bench` and the tests use it."""
from __future__ import annotations

import ctypes
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from typing import Dict, List, Optional, Sequence

import numpy as np

from . import frontend, passes
from .dims import evaluate

WARNINGS = ["-std=c99", "-Wall", "-Wextra", "-pedantic", "-Werror"]


def compiler() -> str:
    for cc in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if cc and shutil.which(cc):
            return cc
    raise RuntimeError("no C compiler found (set CC)")


class Interface:
    """What a generated `run` takes and returns, read from the compiled graph."""

    def __init__(self, path: str, max_dims: Optional[Dict[str, int]] = None):
        graph = frontend.load(path)
        graph.bounds = {}
        for p in passes.PIPELINE[:-1]:
            p.run(graph)
        self.symbols = graph.symbols()
        self.inputs = [(v.name, v.dtype.numpy, v.shape) for v in graph.inputs]
        self.outputs = [(v.name, v.dtype.numpy, v.shape) for v in graph.outputs]

    def sizes(self, arrays: Sequence[np.ndarray]) -> Dict[str, int]:
        env = {}
        for (name, _, shape), a in zip(self.inputs, arrays):
            for d, n in zip(shape, np.shape(a)):
                if not isinstance(d, int):
                    env[d.symbols()[0]] = int(n)
        return env

    def output_shapes(self, env):
        return [tuple(evaluate(d, env) for d in shape) for _, _, shape in self.outputs]


class CModel:
    """A generated C model compiled into a shared library in `workdir`."""

    def __init__(self, files: Dict[str, str], name: str, interface: Interface, workdir: str,
                 flags: Sequence[str] = ("-O1",)):
        self.interface, self.name = interface, name
        for fname, text in files.items():
            with open(os.path.join(workdir, fname), "w") as f:
                f.write(text)
        lib = os.path.join(workdir, f"lib{name}.so")
        cmd = [compiler(), *WARNINGS, *flags, "-fPIC", "-shared",
               os.path.join(workdir, f"{name}.c"), "-o", lib, "-lm"]
        done = subprocess.run(cmd, capture_output=True, text=True)
        self.warnings = done.stderr
        if done.returncode != 0:
            raise RuntimeError(f"C compilation failed:\n{' '.join(cmd)}\n{done.stderr}")
        self.lib = ctypes.CDLL(lib)
        self.fn = getattr(self.lib, f"{name}_run")
        self.fn.restype = ctypes.c_int

    def __call__(self, *inputs) -> List[np.ndarray]:
        code, outputs = self.call(*inputs)
        if code != 0:
            raise RuntimeError(f"{self.name}_run returned {code}")
        return outputs

    def call(self, *inputs):
        iface = self.interface
        arrays = [np.ascontiguousarray(x, dtype=dt) for x, (_, dt, _) in zip(inputs, iface.inputs)]
        env = iface.sizes(arrays)
        outs = [np.zeros(shape, dtype=dt) for shape, (_, dt, _) in
                zip(iface.output_shapes(env), iface.outputs)]
        args = [ctypes.c_int64(env[s]) for s in iface.symbols]
        args += [a.ctypes.data_as(ctypes.c_void_p) for a in arrays + outs]
        return self.fn(*args), outs


def load_numpy(text: str, name: str, workdir: str):
    path = os.path.join(workdir, f"{name}.py")
    with open(path, "w") as f:
        f.write(text)
    spec = importlib.util.spec_from_file_location(f"onnx2src_generated_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
