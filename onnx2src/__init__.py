"""onnx2src: compile an ONNX model to self-contained NumPy or C99 source.

The pipeline, in order: frontend.read → passes.PIPELINE (shape inference, constant folding,
canonicalization, the streaming analysis, dead-code elimination, lowering) → the target's own
passes (C: weight packing, memory planning) → emit.<target>.emit.
`generate` runs it and returns the files as text, each headed by its provenance (see
provenance.py); `compile_model` writes them; `stale_files` compares them with a folder.
"""
__version__ = "0.1.0"

import os
import secrets
from typing import Dict, Mapping, Optional, Union

from .ir import CompileError, InternalError

TARGETS = ("c", "numpy")
WEIGHT_FORMATS = ("float", "bf16", "int8")  # how constant matrices are stored (--weights)
DEFAULT_MAX_DIM = 128  # the default bound of a symbolic dim in the C target, but for
DEFAULT_MAX_BATCH = 1  # the batch dim of a recurrence: one stream unless asked for more


def generate(path: str, target: str, name: Optional[str] = None,
             max_dims: Optional[Mapping[str, int]] = None,
             approximate: bool = False, check_ir: bool = False,
             consts: Optional[Mapping[str, str]] = None,
             fixed_dims: Optional[Mapping[str, int]] = None, stream: bool = False,
             summary: Optional[dict] = None, weights_file: bool = False,
             weights: str = "float") -> Dict[str, Union[str, bytes]]:
    """{file name: text} for the model at `path`; raises CompileError. `approximate` selects
    the faster rational tanh/sigmoid in the C target (see docs/performance.md, Activations).
    `check_ir` runs the IR verifier after every pass (raises InternalError on a compiler bug).
    `consts` pins inputs to values ({"sr": "16000"}, JSON text) so what depends on them folds away;
    `fixed_dims` fixes symbolic dims to sizes ({"samples": 576}). `stream` requires the step API
    (a CompileError says why a model can't have it). A `summary` dict receives the C target's
    memory: weight_bytes, arena_bytes and the bounds they are computed at. `weights_file` puts the
    C target's weights into NAME.weights (bytes, the one file that is not text) instead of
    NAME_weights.c. `weights` "bf16" stores the C target's constant float matrices (of Gemm,
    MatMul, Conv, and the recurrences' W and R) as bfloat16, computing in float32; "int8"
    quantizes them to int8 with a scale per output channel (reduced_weights) and both targets store
    them so (see docs/performance.md, int8 weights). Every file starts
    with a comment naming onnx2src's version, the model file and its external-data files with
    their SHA-256, the opsets and the options that change the output: the same inputs give the
    same bytes wherever the model is."""
    from . import frontend, passes, provenance
    from .emit import naming

    if target not in TARGETS:
        raise CompileError(f"unknown target {target!r} (choose from {', '.join(TARGETS)})")
    if name is None:
        name = naming.default_module_name(os.path.splitext(os.path.basename(path))[0], target)
    problem = naming.module_name_problem(name, target)
    if problem:
        raise CompileError(f"--name {name!r} can't be used: {problem}")
    if weights not in WEIGHT_FORMATS:
        raise CompileError(f"unknown weight format {weights!r} (choose from {', '.join(WEIGHT_FORMATS)})")
    if weights == "bf16" and target != "c":
        raise CompileError("--weights bf16 is for the C target (the NumPy module keeps float32 weights)")
    model, data_files = frontend.read(path)
    if weights != "float":
        from .reduced_weights import round_model
        round_model(model, weights)  # what is compiled: the model with its matrices rounded
    graph = frontend.from_model(model)
    frontend.pin(graph, consts or {}, fixed_dims)
    graph.int8_weights = weights == "int8"
    graph.bounds = _bounds(graph, max_dims or {})  # the rest are filled by plan_memory
    passes.run_all(graph, target, check=check_ir)
    if stream and graph.stream.reason is not None:
        raise CompileError(f"--stream: this model can't run chunk by chunk: {graph.stream.reason}")
    if weights_file and target != "c":
        raise CompileError("--weights-file is for the C target (the NumPy module embeds its weights)")
    if target == "numpy":
        from .emit import numpy as emitter
        files = emitter.emit(graph, name, os.path.basename(path), weights)
    else:
        from .emit import c as emitter
        files = emitter.emit(graph, name, os.path.basename(path), approximate, summary, weights_file, weights)
    options = provenance.options(target, name, max_dims or {}, approximate, graph.pinned, fixed_dims or {},
                                 weights_file, weights)
    opsets = {o.domain: o.version for o in model.opset_import}
    return provenance.stamp(files, provenance.lines(path, data_files, opsets, options))


def compile_model(path: str, target: str, outdir: str = ".", name: Optional[str] = None,
                  max_dims: Optional[Mapping[str, int]] = None,
                  approximate: bool = False, check_ir: bool = False,
                  consts: Optional[Mapping[str, str]] = None,
                  fixed_dims: Optional[Mapping[str, int]] = None, stream: bool = False,
                  summary: Optional[dict] = None, weights_file: bool = False,
                  weights: str = "float") -> Dict[str, str]:
    """Generate and write the files into `outdir`, all or none, with the mode a new file gets
    under the umask; returns {file name: path}."""
    files = generate(path, target, name, max_dims, approximate, check_ir=check_ir, consts=consts,
                     fixed_dims=fixed_dims, stream=stream, summary=summary, weights_file=weights_file,
                     weights=weights)
    try:
        os.makedirs(outdir, exist_ok=True)
    except OSError as e:
        raise CompileError(f"cannot create the output directory {outdir}: {e.strerror}")
    staged = {}
    try:
        for fname, text in files.items():
            tmp = os.path.join(outdir, f".{fname}.{secrets.token_hex(4)}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies
            staged[fname] = tmp
            with os.fdopen(fd, "wb") as f:
                f.write(text if isinstance(text, bytes) else text.encode("utf-8"))
        written = {}
        for fname, tmp in staged.items():
            os.replace(tmp, os.path.join(outdir, fname))
            written[fname] = os.path.join(outdir, fname)
        return written
    except OSError as e:
        raise CompileError(f"cannot write into {outdir}: {e.strerror}")
    finally:
        for tmp in staged.values():
            if os.path.exists(tmp):
                os.unlink(tmp)


def stale_files(files: Mapping[str, str], outdir: str) -> Dict[str, str]:
    """{path: why} for each of `files` ({file name: text}, as `generate` returns them) that
    `outdir` lacks ("missing") or holds with other bytes ("stale from line N"); empty when
    `outdir` is up to date. Reads only; files of `outdir` not in `files` are not looked at."""
    problems = {}
    for fname, text in files.items():
        path = os.path.join(outdir, fname)
        try:
            with open(path, "rb") as f:
                found = f.read()
        except FileNotFoundError:
            problems[path] = "missing"
            continue
        except OSError as e:
            raise CompileError(f"cannot read {path}: {e.strerror}")
        expected = text if isinstance(text, bytes) else text.encode("utf-8")
        if found != expected:
            line = next((i for i, (a, b) in enumerate(zip(found.split(b"\n"), expected.split(b"\n")))
                         if a != b), min(found.count(b"\n"), expected.count(b"\n")))
            problems[path] = f"stale from line {line + 1}"
    return problems


def _bounds(graph, max_dims: Mapping[str, int]) -> Dict[str, int]:
    symbols = graph.symbols()
    unknown = sorted(set(max_dims) - set(symbols))
    if unknown:
        raise CompileError(f"--max-dim names {', '.join(unknown)}, which the model's inputs do not "
                           f"use (symbolic dims: {', '.join(symbols) or 'none'})")
    for s, n in max_dims.items():
        if n < 1:
            raise CompileError(f"--max-dim {s}={n}: a bound must be at least 1")
    return {s: int(n) for s, n in max_dims.items()}
