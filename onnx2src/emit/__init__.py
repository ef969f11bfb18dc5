"""Emitters: render the lowered IR as source text through Jinja templates, one per IR op."""
import re
from importlib import resources

import jinja2


def environment() -> jinja2.Environment:
    root = resources.files("onnx2src.templates")
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(root)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
        autoescape=False)


def tidy(text: str) -> str:
    """Drop the whitespace-only lines a template leaves where an optional statement (a clip, a
    peephole) renders to nothing, and trailing blanks; truly empty lines stay."""
    text = re.sub(r"^[ \t]+\n", "", text, flags=re.M)
    return re.sub(r"[ \t]+$", "", text, flags=re.M)


class Refs:
    """The names of a node's inputs or outputs, looked up when a template reads them, so
    that only the weights some code actually reads are emitted."""

    def __init__(self, name_of, values):
        self.name_of, self.values = name_of, values

    def __getitem__(self, i):
        return self.name_of(self.values[i])

    def __len__(self):
        return len(self.values)

    def __iter__(self):
        return (self.name_of(v) for v in self.values)


class OnDemand:
    """A mapping made by `factory` when a template first reads it (e.g. the math functions
    of a type, which pull the vectorized activations into the C file only when used)."""

    def __init__(self, factory):
        self.factory, self.made = factory, None

    def __getitem__(self, key):
        if self.made is None:
            self.made = self.factory()
        return self.made[key]

    def __getattr__(self, key):
        if key.startswith("__"):
            raise AttributeError(key)
        return self[key]


def guarded(nodes, blocks, opening, closing=None):
    """The rendered blocks, with each run of nodes sharing a guard (If branches chosen at run
    time) joined inside the target's `if`: `opening(guard)` starts it, `closing` ends it."""
    out, run, current = [], [], None

    def flush():
        if run:
            body = "\n\n".join(b.strip("\n") for b in run)
            inner = "\n".join(("    " + line) if line else line for line in body.split("\n"))
            out.append("\n".join([opening(current), inner] + ([closing] if closing else [])))
            run.clear()

    def key(guard):
        return [(id(c.value), c.holds) for c in guard or []]

    for node, block in zip(nodes, blocks):
        guard = node.attrs.get("guard")
        if key(guard) != key(current):
            flush()
            current = guard
        if guard:
            run.append(block)
        else:
            out.append(block)
    flush()
    return out
