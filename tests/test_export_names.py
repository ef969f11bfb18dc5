"""Every real PyTorch export (tests/exports/manifest.json, and the slicing heads and
loop-counter names of tests/exports/slicing/manifest.json, made by make_slice_exports.py)
compiled under the module names "m", "net" and "x" — short names that generated code might
also use for a loop counter, a local or a model's input — in both targets. Each build must
keep the name exactly (the C header declares `int NAME_run(`, the files are NAME.h / NAME.c /
NAME.py) and match onnxruntime at every size the export was verified at. One build per
(model, target, name); all sizes run against it. A manifest entry with "refused" (a broken
export) must be refused with a one-line CompileError instead."""
import functools
import json
import os
import re

import numpy as np
import onnx
import pytest

from onnx2src import CompileError

from conftest import assert_close, build, ort_run

HERE = os.path.join(os.path.dirname(__file__), "exports")
NAMES = ("m", "net", "x")
TARGETS = ("numpy", "c")


def _entries():
    out = []
    for sub in ("", "slicing"):
        folder = os.path.join(HERE, sub)
        for entry in json.load(open(os.path.join(folder, "manifest.json"))):
            out.append((os.path.join(folder, entry["file"]), entry,
                        os.path.join(sub, entry["file"][:-len(".onnx")])))
    return out


ENTRIES = _entries()
CASES = [pytest.param(path, entry, target, name, id=f"{label}-{target}-{name}")
         for path, entry, label in ENTRIES for target in TARGETS for name in NAMES]


@functools.lru_cache(maxsize=None)
def reference(path, sizes, seed):
    """Random inputs for `sizes` ((dim name, value) pairs) and onnxruntime's outputs."""
    env = dict(sizes)
    rng = np.random.default_rng(seed)
    inputs = []
    for vi in onnx.load(path, load_external_data=False).graph.input:
        tt = vi.type.tensor_type
        shape = [env[d.dim_param] if d.dim_param else d.dim_value for d in tt.shape.dim]
        dtype = onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type)
        inputs.append(rng.standard_normal(shape).astype(dtype))
    return inputs, ort_run(path, inputs)


@pytest.mark.parametrize("path, entry, target, name", CASES)
def test_export_under_name(path, entry, target, name, tmp_path):
    if "refused" in entry:
        with pytest.raises(CompileError, match="does not cut an axis"):
            build(path, target, tmp_path, name=name)
        return
    run = build(path, target, tmp_path, name=name)
    made = sorted(os.listdir(tmp_path))
    if target == "c":
        assert {f"{name}.h", f"{name}.c"} <= set(made), made
        header = open(os.path.join(tmp_path, f"{name}.h")).read()
        # prototypes start a line (the comment block above them repeats them after " * ")
        declared = re.findall(r"^int\s+(\w+)\s*\(", header, re.M)
        assert f"{name}_run" in declared, f"no `int {name}_run(` in {name}.h: {declared}"
        assert [d for d in declared if d.endswith("_run")] == [f"{name}_run"], declared
        assert re.search(rf"^int {name}_run\(", header, re.M), f"not declared as `int {name}_run(`"
    else:
        assert f"{name}.py" in made, made
    for seed, sizes in enumerate(entry["verified_sizes"]):
        inputs, expected = reference(path, tuple(sorted(sizes.items())), seed)
        assert_close(run(*inputs), expected, f"{entry['file']} as {name!r} ({target}) at {sizes}")
