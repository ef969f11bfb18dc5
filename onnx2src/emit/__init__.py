"""Emitters: render the lowered IR as source text through Jinja templates, one per IR op."""
from importlib import resources

import jinja2


def environment() -> jinja2.Environment:
    root = resources.files("onnx2src.templates")
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(root)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
        autoescape=False)
