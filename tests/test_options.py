"""The compile options (onnx2src/options.py): one frozen, hashable object, checked where it is
made, whose mappings compare equal whatever order they were given in; and the modules of the
commands import each other without a circle (their shared argument helpers are in cli_args)."""
import ast
import dataclasses
import os

import pytest

import onnx2src
from onnx2src import CompileError, Options, generate

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "onnx2src")
RNN = os.path.join(ROOT, "samples", "simple_rnn.onnx")


def test_options_are_frozen_hashable_and_canonical():
    a = Options("c", max_dims=[("seq", 4), ("batch", 2), ("seq", 8)], consts={"sr": "16000"})
    b = Options("c", max_dims={"batch": 2, "seq": 8}, consts=[("sr", "16000")])
    assert a == b and hash(a) == hash(b)  # the last of a repeated dim wins, as with repeated flags
    assert a.max_dims == (("batch", 2), ("seq", 8)) and dict(a.consts) == {"sr": "16000"}
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.name = "other"
    assert {a: 1}[b] == 1
    assert dataclasses.replace(a, target="numpy").target == "numpy"


@pytest.mark.parametrize("kwargs, message", [
    (dict(target="js"), "unknown target 'js'"),
    (dict(target="c", weights="f8"), "unknown weight format 'f8'"),
    (dict(target="numpy", weights="bf16"), "--weights bf16 is for the C target"),
    (dict(target="numpy", weights_file=True), "--weights-file is for the C target"),
    (dict(target="c", name="2fast"), "--name '2fast' can't be used"),
    (dict(target="numpy", name="lambda"), "Python keyword"),
    (dict(target="c", max_dims={"seq": 0}), "--max-dim seq=0: a bound must be at least 1"),
    (dict(target="c", fixed_dims={"seq": 0}), "--fix-dim seq=0: a size must be at least 1"),
    (dict(target="c", consts={"sr": 16000}), "--const sr: the value must be JSON text"),
])
def test_options_are_checked_where_they_are_made(kwargs, message):
    with pytest.raises(CompileError, match=message.replace("(", r"\(").replace("[", r"\[")):
        Options(**kwargs)
    with pytest.raises(CompileError):  # and so by replace, too
        dataclasses.replace(Options("c"), **kwargs)


def test_the_default_name_comes_from_the_model_file():
    assert Options("c").named_for("/models/my-model.onnx").name == "my_model"
    assert Options("numpy").named_for("/models/import.onnx").name == "m_import"  # a keyword
    assert Options("c", name="kws").named_for("/models/my-model.onnx").name == "kws"


def test_generate_takes_the_options_and_lists_them(tmp_path):
    options = Options("c", name="rnn", max_dims={"batch": 2}, approximate=True)
    summary = {}
    files = generate(RNN, options, summary)
    assert set(files) == {"rnn.h", "rnn.c", "rnn_weights.c"}
    assert summary["bounds"]["batch"] == 2
    assert "options: --target c --name rnn --max-dim batch=2 --max-dim seq=128 --approx-activations" \
        not in files["rnn.h"]  # only what was asked for: seq keeps its default, unlisted
    assert "options: --target c --name rnn --max-dim batch=2 --approx-activations\n" in files["rnn.h"]
    written = onnx2src.compile_model(RNN, options, str(tmp_path))
    assert sorted(os.path.basename(p) for p in written.values()) == sorted(files)
    with pytest.raises(CompileError, match="--max-dim names nope"):
        generate(RNN, Options("c", max_dims={"nope": 3}))
    with pytest.raises(TypeError, match=r"takes an onnx2src.Options, e.g. Options\('c'\)"):
        generate(RNN, "c")  # the keyword API before Options


def _imports(path, module):
    """The onnx2src modules the module `module` at `path` imports, anywhere in it (in a
    function too): `from .x import y` names the module x.y if there is one, else x."""
    package = module if path.endswith("__init__.py") else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("onnx2src"))
        elif isinstance(node, ast.ImportFrom):
            base = package if node.level else ""
            for _ in range(max(node.level - 1, 0)):
                base = base.rsplit(".", 1)[0]
            target = ".".join(p for p in (base, node.module) if p)
            if target.startswith("onnx2src"):
                found.update(f"{target}.{a.name}" if _is_module(f"{target}.{a.name}") else target
                             for a in node.names)
    return found


def _is_module(name):
    path = os.path.join(PACKAGE, *name.split(".")[1:])
    return os.path.exists(path + ".py") or os.path.exists(os.path.join(path, "__init__.py"))


def test_the_commands_import_without_a_circle():
    """cli dispatches to verify and bench; neither imports cli, and no module of the package
    (but the package's face, __init__, which the others reach for its version) is in a circle."""
    graph = {}
    for folder, _, names in os.walk(PACKAGE):
        for n in names:
            if n.endswith(".py"):
                path = os.path.join(folder, n)
                module = "onnx2src." + os.path.relpath(path, PACKAGE)[:-3].replace(os.sep, ".")
                module = module[:-len(".__init__")] if module.endswith(".__init__") else module
                graph[module] = {m for m in _imports(path, module) if m != "onnx2src"}
    assert "onnx2src.cli" not in graph["onnx2src.verify"] | graph["onnx2src.bench"]
    assert "onnx2src.cli_args" in graph["onnx2src.verify"] & graph["onnx2src.bench"] & graph["onnx2src.cli"]

    def circle_from(start):
        stack, seen = [(start, [start])], set()
        while stack:
            node, path = stack.pop()
            for nxt in graph.get(node, ()):
                if nxt == start:
                    return path
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, path + [nxt]))
        return None
    for m in ("onnx2src.cli", "onnx2src.verify", "onnx2src.bench", "onnx2src.cli_args", "onnx2src.options"):
        assert circle_from(m) is None, f"import circle: {' -> '.join(circle_from(m) + [m])}"
