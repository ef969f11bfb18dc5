"""Real recurrent models from pinned PyPI packages (tests/real_models/manifest.json): silero VAD
in its variants, DeepFilterNet3's parts, openWakeWord's models, an FSMN VAD, a CRNN recognizer.

For each model on disk, in both targets: when onnx2src registers every op type the model uses
(If/Loop bodies included), it must compile and match onnxruntime at the manifest's sizes; a
stateful model runs `steps` chunks, each implementation fed back its own returned state, and
every step is compared. While some op types are not registered (onnx2src.ops._REGISTRY), the
compiler must refuse the model with a CompileError that names one of them. So each test turns
from "refused for the right reason" into "compiles and matches" as the ops land, and never
passes by accident: a model whose ops are all there and that still fails to compile fails here.

Models the repository may not redistribute (or that would make it too big) are not committed;
their tests skip with the manifest's reason until `python tests/real_models/fetch.py` puts them
on disk.
"""
import hashlib
import json
import os
import re
import zlib

import numpy as np
import onnx
import pytest

from onnx2src import CompileError, Options
from onnx2src.harness import Interface
from onnx2src.ops import _REGISTRY

from conftest import assert_close, build, ort_run
from real_models.fetch import op_counts  # the manifest's op counts are made the same way

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "real_models")
with open(os.path.join(HERE, "manifest.json"), encoding="utf-8") as _f:
    ENTRIES = json.load(_f)["models"]


def graph_inputs(model):
    inits = {i.name for i in model.graph.initializer}
    return [i.name for i in model.graph.input if i.name not in inits]


def random_input(spec, rng):
    if "value" in spec:
        return np.full(spec["shape"], spec["value"], dtype=spec["dtype"])
    if np.dtype(spec["dtype"]).kind != "f":
        raise ValueError(f"input {spec['name']}: a non-float input needs a 'value'")
    return rng.uniform(-1.0, 1.0, spec["shape"]).astype(spec["dtype"])


def load(entry):
    path = os.path.join(HERE, entry["file"])
    if not os.path.exists(path):
        if entry["committed"]:
            pytest.fail(f"{entry['file']} is marked committed in manifest.json but is not in "
                        f"{HERE}")
        pytest.skip(f"{entry['file']} from {entry['package']}=={entry['version']} "
                    f"(license: {entry['license']}): {entry['reason']}")
    with open(path, "rb") as f:
        data = f.read()
    assert hashlib.sha256(data).hexdigest() == entry["sha256"], \
        f"{entry['file']} is not the file manifest.json pins (run fetch.py --force)"
    return path, onnx.load_from_string(data)


def compile_options(entry, path, bounds=True):
    """compile_model's options for a manifest entry: inputs with a "value" pinned (--const), the
    manifest's "fix_dims" fixed (--fix-dim) and, with `bounds`, each symbolic dim bounded by the
    size the manifest runs it at (silero's 576 samples > 128)."""
    specs = entry["inputs"]
    consts = {spec["name"]: json.dumps(spec["value"]) for spec in specs if "value" in spec}
    options = dict(consts=consts, fixed_dims=entry.get("fix_dims", {}))
    if bounds:
        shapes = {spec["name"]: spec["shape"] for spec in specs}
        options["max_dims"] = {d.symbols()[0]: n for name, _, shape in Interface(path, Options("c", **options)).inputs
                               for d, n in zip(shape, shapes[name]) if not isinstance(d, int)}
    return options


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["file"] for e in ENTRIES])
def test_real_model(entry, target, tmp_path):
    path, model = load(entry)
    specs = entry["inputs"]
    assert [s["name"] for s in specs] == graph_inputs(model), "manifest inputs out of date"
    missing = sorted(op for op in op_counts(model.graph) if op not in _REGISTRY)

    options = compile_options(entry, path, bounds=False)
    free = [i for i, spec in enumerate(specs) if "value" not in spec]
    if missing:
        with pytest.raises(CompileError) as refused:
            build(path, target, str(tmp_path / target), **options)
        message = str(refused.value)
        assert any(re.search(rf"(?<![A-Za-z]){re.escape(op)}(?![A-Za-z])", message)
                   for op in missing), \
            f"refused for another reason than its unsupported ops {missing}: {message}"
        return

    run = build(path, target, str(tmp_path / target), **compile_options(entry, path))
    rng = np.random.default_rng(zlib.crc32(entry["file"].encode()))
    ours = [random_input(s, rng) for s in specs]
    theirs = list(ours)
    outputs = [o.name for o in model.graph.output]
    names = [s["name"] for s in specs]
    state = [(outputs.index(out), names.index(inp)) for out, inp in entry["state"]]
    for step in range(entry["steps"]):
        expected = ort_run(path, theirs)
        actual = run(*[ours[i] for i in free])
        assert_close(actual, expected, f"{entry['file']} ({target}) chunk {step + 1}")
        fresh = [random_input(s, rng) for s in specs]
        ours, theirs = list(fresh), list(fresh)
        for o, i in state:
            ours[i], theirs[i] = np.asarray(actual[o]), np.asarray(expected[o])
