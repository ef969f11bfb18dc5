"""Build and call generated code from Python: the C target through a shared library and
ctypes, the NumPy target by importing the module, and the reference runtimes (onnxruntime on
one thread, or onnx.reference) the generated code is compared with. `verify`, `bench` and the
tests use it."""
from __future__ import annotations

import ctypes
import importlib.util
import os
import shutil
import subprocess
from typing import Dict, List, Optional, Sequence

import numpy as np

from . import frontend, passes
from .dims import evaluate
from .options import Options

GUARD = 0xA5  # the bytes around a workspace, which the generated code must leave alone
WORKSPACE_INVALID = ctypes.c_size_t(-1).value  # NAME_WORKSPACE_INVALID: the workspace size of dims out of bounds
WARNINGS = ["-std=c99", "-Wall", "-Wextra", "-pedantic", "-Werror"]


class CBuildError(RuntimeError):
    """The system C compiler rejected generated code (an error, or a warning under -Werror)."""

    def __init__(self, cmd: Sequence[str], stderr: str):
        self.cmd, self.stderr = list(cmd), stderr
        super().__init__(f"C compilation failed:\n{' '.join(self.cmd)}\n{stderr}")

    def summary(self) -> str:
        """One line: the compiler's first error (or warning), else its first line of output."""
        lines = [l.strip() for l in self.stderr.splitlines() if l.strip()]
        first = next((l for l in lines if "error" in l), None) or next(
            (l for l in lines if "warning" in l), None) or (lines[0] if lines else "no output")
        return f"C compilation failed ({os.path.basename(self.cmd[0])}): {first}"


def compiler() -> str:
    for cc in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if cc and shutil.which(cc):
            return cc
    raise RuntimeError("no C compiler found (set CC)")


def split_compiler(flags: Sequence[str]):
    """(compiler, flags): `["clang", "-O2"]` names its compiler; `["-O2"]` takes compiler()."""
    flags = list(flags)
    if flags and not flags[0].startswith("-"):
        if not shutil.which(flags[0]):
            raise CBuildError(flags, f"no compiler {flags[0]!r} on PATH")
        return flags[0], flags[1:]
    return compiler(), flags


def compiler_version(cc: str) -> str:
    """The first line `cc --version` prints (e.g. "gcc (Debian 12.2.0-14) 12.2.0")."""
    done = subprocess.run([cc, "--version"], capture_output=True, text=True)
    return (done.stdout.splitlines() or ["unknown"])[0].strip()


class Interface:
    """What a generated `run` takes and returns, read from the compiled graph."""

    def __init__(self, path: str, options: Optional[Options] = None):
        """The interface of the code `options` (default: Options("c")) generate from the model at
        `path`; of the options, only the consts and fixed dims change it."""
        options = options or Options("c")
        graph = frontend.load(path)
        frontend.pin(graph, dict(options.consts), dict(options.fixed_dims))
        graph.options = options
        for p in passes.PIPELINE:
            p.run(graph)
        self.symbols = graph.symbols()
        self.options = options
        self.pinned = graph.pinned  # {input name: value} fixed by options.consts
        self.inputs = [(v.name, v.dtype.numpy, v.shape) for v in graph.inputs]
        self.outputs = [(v.name, v.dtype.numpy, v.shape) for v in graph.outputs]

    def sizes(self, arrays: Sequence[np.ndarray]) -> Dict[str, int]:
        """The symbol sizes the arrays imply; ValueError when two inputs disagree on one."""
        env: Dict[str, int] = {}
        for (name, _, shape), a in zip(self.inputs, arrays):
            for d, n in zip(shape or (), np.shape(a)):
                if not isinstance(d, int):
                    s = d.symbols()[0]
                    if env.setdefault(s, int(n)) != n:
                        raise ValueError(f'input "{name}": dim {s} is {n} here but {env[s]} in an earlier input')
        return env

    def output_shapes(self, env):
        return [tuple(evaluate(d, env) for d in shape) for _, _, shape in self.outputs]

    def input_shapes(self, env):
        """Each input's concrete shape for the symbol values in `env` (None: no declared shape)."""
        return [None if shape is None else tuple(evaluate(d, env) for d in shape)
                for _, _, shape in self.inputs]


class CModel:
    """A generated C model compiled into a shared library in `workdir`."""

    def __init__(self, files: Dict[str, str], name: str, interface: Interface, workdir: str,
                 flags: Sequence[str] = ("-O1",)):
        self.interface, self.name = interface, name
        self.streams = f"{name}_step(" in files.get(f"{name}.h", "")
        for fname, text in files.items():
            with open(os.path.join(workdir, fname), "w") as f:
                f.write(text)
        lib = os.path.join(workdir, f"lib{name}.so")
        sources = [os.path.join(workdir, f) for f in sorted(files) if f.endswith(".c")]
        cmd = [compiler(), *WARNINGS, *flags, "-fPIC", "-shared", *sources, "-o", lib, "-lm"]
        done = subprocess.run(cmd, capture_output=True, text=True)
        self.warnings = done.stderr
        if done.returncode != 0:
            raise CBuildError(cmd, done.stderr)
        self.lib = ctypes.CDLL(lib)
        self.fn = getattr(self.lib, f"{name}_run")
        self.fn.restype = ctypes.c_int
        self.shape_fn = getattr(self.lib, f"{name}_output_shape")
        self.shape_fn.restype = ctypes.c_int
        self.workspace_size = getattr(self.lib, f"{name}_workspace_size")
        self.workspace_size.restype = ctypes.c_size_t

    def __call__(self, *inputs) -> List[np.ndarray]:
        code, outputs = self.call(*inputs)
        if code != 0:
            raise RuntimeError(f"{self.name}_run returned {code}")
        return outputs

    def output_shapes(self, env) -> List[tuple]:
        """The outputs' shapes as the generated NAME_output_shape computes them."""
        dims = [ctypes.c_int64(env[s]) for s in self.interface.symbols]
        shapes = []
        for i, (_, _, shape) in enumerate(self.interface.outputs):
            out = (ctypes.c_int64 * max(len(shape), 1))()
            code = self.shape_fn(*dims, ctypes.c_int(i), out)
            if code != 0:
                raise RuntimeError(f"{self.name}_output_shape returned {code} for output {i}")
            shapes.append(tuple(out[:len(shape)]))
        return shapes

    def call(self, *inputs, workspace: bool = False, state=None):
        """(status, outputs) of NAME_run; with `workspace`, of NAME_run_workspace on memory
        allocated here of NAME_workspace_size bytes; with `state` (a CStream), of NAME_step."""
        iface = self.interface
        arrays = [np.ascontiguousarray(x, dtype=dt) for x, (_, dt, _) in zip(inputs, iface.inputs)]
        env = iface.sizes(arrays)
        expected = iface.output_shapes(env)
        if self.output_shapes(env) != expected:
            raise RuntimeError(f"{self.name}_output_shape gives {self.output_shapes(env)}, "
                               f"the model's shapes are {expected}")
        outs = [np.zeros(shape, dtype=dt) for shape, (_, dt, _) in zip(expected, iface.outputs)]
        args = [ctypes.c_int64(env[s]) for s in iface.symbols]
        args += [a.ctypes.data_as(ctypes.c_void_p) for a in arrays + outs]
        if not (workspace or state is not None):
            return self.fn(*args), outs
        size = self.workspace_size(*args[:len(iface.symbols)])
        if size == WORKSPACE_INVALID:  # dims out of bounds: the call answers NAME_EDIM untouched
            size = 0
        # exactly the bytes asked for, from an aligned start, with guard bytes on both sides
        memory = np.full(size + 128, GUARD, np.uint8)
        start = 64 - memory.ctypes.data % 64
        pointer = ctypes.c_void_p(memory.ctypes.data + start)
        if state is None:
            code = getattr(self.lib, f"{self.name}_run_workspace")(pointer, *args)
        else:
            code = getattr(self.lib, f"{self.name}_step")(state.pointer, pointer, *args)
        if (memory[:start] != GUARD).any() or (memory[start + size:] != GUARD).any():
            raise RuntimeError(f"{self.name} wrote outside the {size} bytes of its workspace")
        return code, outs


class CStream:
    """A stream of a generated C model (NAME_init, NAME_step) with its own state."""

    def __init__(self, model: CModel, batch: Optional[int] = None):
        size = getattr(model.lib, f"{model.name}_state_size")
        size.restype = ctypes.c_size_t
        self.model, self.memory = model, np.zeros(size() + 8, np.uint8)
        self.pointer = ctypes.c_void_p(self.memory.ctypes.data + (-self.memory.ctypes.data) % 8)
        init = getattr(model.lib, f"{model.name}_init")
        code = init(self.pointer, *([ctypes.c_int64(batch)] if batch is not None else []))
        if code != 0:
            raise RuntimeError(f"{model.name}_init returned {code}")

    def step(self, *inputs) -> List[np.ndarray]:
        code, outputs = self.model.call(*inputs, state=self)
        if code != 0:
            raise RuntimeError(f"{self.model.name}_step returned {code}")
        return outputs


def load_numpy(text: str, name: str, workdir: str):
    path = os.path.join(workdir, f"{name}.py")
    with open(path, "w") as f:
        f.write(text)
    spec = importlib.util.spec_from_file_location(f"onnx2src_generated_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_executable(files: Dict[str, str], main_c: str, workdir: str, exe: str = "bench",
                     flags: Sequence[str] = ("-O3",)):
    """Write the generated files and a C `main` into `workdir` and build them into an
    executable with the standard warnings (not -Werror: the flags are the user's). Flags that
    start with a word (`clang -O2`) name the compiler, else it is `compiler()`.
    Returns (path, the compiler's warnings); raises CBuildError."""
    cc, flags = split_compiler(flags)
    for fname, text in files.items():
        with open(os.path.join(workdir, fname), "w") as f:
            f.write(text)
    main_path = os.path.join(workdir, "onnx2src_bench_main.c")
    with open(main_path, "w") as f:
        f.write(main_c)
    sources = [os.path.join(workdir, f) for f in sorted(files) if f.endswith(".c")]
    path = os.path.join(workdir, exe)
    cmd = [cc, *[w for w in WARNINGS if w != "-Werror"], *flags,
           *sources, main_path, "-o", path, "-lm"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise CBuildError(cmd, done.stderr)
    return path, done.stderr


def ort_session(path: str, exact_integers: bool = False):
    """An onnxruntime session pinned to one thread and sequential execution, CPU only. With
    `exact_integers` (a reference for correctness, not timing), uint8 x int8 products run in
    kernels that don't saturate: on x86 CPUs without VNNI onnxruntime's default ones add pairs of
    products in int16, so a quantized model's result can be a quantization step off the spec's
    exact int32 (`session.x64quantprecision`, see tests/conftest.py ort_options)."""
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if exact_integers:
        opts.add_session_config_entry("session.x64quantprecision", "1")
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def have_onnxruntime() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def rounded_model(path: str, out: str, weights: str) -> str:
    """Save at `out` the model at `path` with its matrix weights rounded to the `weights` format
    (bf16, int8: reduced_weights.round_model; external data made inline): the model onnx2src
    --weights compiles, so the reference to check its code against. Returns `out`."""
    import onnx

    from .reduced_weights import round_model
    onnx.save(round_model(onnx.load(path), weights), out)
    return out


def reference(path: str, use_ort: bool = True, pinned: Optional[Dict[str, np.ndarray]] = None):
    """(label, run): `run(inputs) -> list of outputs` through onnxruntime (one thread) when
    `use_ort` and it is importable, else through onnx.reference.ReferenceEvaluator. `inputs`
    leave out the `pinned` ones ({name: value}, see --const), which are fed as given."""
    pinned = dict(pinned or {})
    if use_ort and have_onnxruntime():
        import onnxruntime as ort
        sess = ort_session(path, exact_integers=True)
        names = [i.name for i in sess.get_inputs() if i.name not in pinned]
        return (f"onnxruntime {ort.__version__} (1 thread)",
                lambda inputs: list(sess.run(None, {**dict(zip(names, inputs)), **pinned})))
    import onnx
    from onnx.reference import ReferenceEvaluator
    model = onnx.load(path)
    inits = {t.name for t in model.graph.initializer}
    names = [i.name for i in model.graph.input if i.name not in inits and i.name not in pinned]
    ev = ReferenceEvaluator(model)
    return (f"onnx.reference {onnx.__version__}",
            lambda inputs: [np.asarray(o) for o in ev.run(None, {**dict(zip(names, inputs)), **pinned})])
