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
