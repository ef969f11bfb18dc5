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
from .options import DEFAULT_MAX_BATCH, DEFAULT_MAX_DIM, TARGETS, WEIGHT_FORMATS, Options


def generate(path: str, options: Options, summary: Optional[dict] = None) -> Dict[str, Union[str, bytes]]:
    """{file name: text} for the model at `path` compiled with `options` (an Options: target,
    name, bounds, weights format, ...; see options.py); raises CompileError. A `summary` dict
    receives the C target's memory: weight_bytes, arena_bytes and the bounds they are computed
    at. The C target's files are NAME.h, NAME.c and NAME_weights.c, or with `weights_file`
    NAME.weights (bytes, the one file that is not text) instead of NAME_weights.c. Every file
    starts with a comment naming onnx2src's version, the model file and its external-data files
    with their SHA-256, the opsets and the options that change the output: the same inputs give
    the same bytes wherever the model is."""
    from . import frontend, passes, provenance

    if not isinstance(options, Options):  # e.g. generate(path, "c") of the keyword API before Options
        hint = f", e.g. Options({options!r})" if isinstance(options, str) else ""
        raise TypeError(f"generate(path, options) takes an onnx2src.Options{hint}, not {type(options).__name__}")
    options = options.named_for(path)
    model, data_files = frontend.read(path)
    if options.weights != "float":
        from .reduced_weights import round_model
        round_model(model, options.weights)  # what is compiled: the model with its matrices rounded
    graph = frontend.from_model(model)
    frontend.pin(graph, dict(options.consts), dict(options.fixed_dims))
    options.check_max_dims(graph.symbols())
    passes.run_all(graph, options)
    if options.stream and graph.stream.reason is not None:
        raise CompileError(f"--stream: this model can't run chunk by chunk: {graph.stream.reason}")
    if options.target == "numpy":
        from .emit import numpy as emitter
        files = emitter.emit(graph, options, os.path.basename(path))
    else:
        from .emit import c as emitter
        files = emitter.emit(graph, options, os.path.basename(path), summary)
    opsets = {o.domain: o.version for o in model.opset_import}
    words = provenance.options(options, graph.pinned)
    return provenance.stamp(files, provenance.lines(path, data_files, opsets, words))


def compile_model(path: str, options: Options, outdir: str = ".",
                  summary: Optional[dict] = None) -> Dict[str, str]:
    """Generate (as `generate` does) and write the files into `outdir`, all or none, with the
    mode a new file gets under the umask; returns {file name: path}."""
    files = generate(path, options, summary)
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

