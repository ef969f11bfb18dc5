"""Shape inference with symbolic dims, and propagation of known contents.

Walks the nodes in order; each op's rule sets its outputs' dtype and shape. When an op's inputs
are known (constants, or small int tensors of symbolic sizes such as Shape's output), its fold
rule computes the outputs too. That is what lets PyTorch's Shape → Gather → Concat → Reshape
chains resolve to shapes in terms of `batch` and `seq` before anything is lowered. Results
larger than FOLD_LIMIT elements are left to run time, so a hostile model (ConstantOfShape of
[10**12]) can't make the compiler allocate without bound; the memory planner then refuses
what could not be a C array.
"""
from contextlib import contextmanager

import numpy as np

FOLD_LIMIT = 1 << 24  # elements computed at compile time by one node

from ..dims import is_static, product
from ..ir import CompileError, shown_name
from ..ops import check_supported, lookup
from ..validate import MAX_ELEMENTS, check_types


def run(graph) -> bool:
    check_supported(graph)  # every unsupported op in one error, before any rule runs
    index = 0
    while index < len(graph.nodes):
        node = graph.nodes[index]
        opdef = lookup(node)
        if opdef.expand is not None:  # e.g. an If whose condition is known: its taken branch
            with rules_of(node):
                graph.nodes[index:index + 1] = opdef.expand(node, graph)
            continue
        check_types(node)  # the element types its schema allows, before its rule reads them
        with rules_of(node):
            opdef.infer(node, graph)
        for v in node.outputs:
            if v is not None and (v.dtype is None or v.shape is None):
                raise CompileError(f'could not infer the type of output "{v.name}"', node)
            if v is not None and any(is_static(d) and d < 0 for d in v.shape):
                raise CompileError(f'output "{shown_name(v.name)}" would have a negative size {list(v.shape)}', node)
            if v is not None and all(map(is_static, v.shape)) and product(v.shape) > MAX_ELEMENTS:
                raise CompileError(f"output {list(v.shape)} would have {product(v.shape):,} elements, "
                                   f"more than the {MAX_ELEMENTS:,} onnx2src allows", node)
        with rules_of(node):
            _fold(node, opdef)
        index += 1
    return True


@contextmanager
def rules_of(node):
    """Where an op's rules first read a node of the model: a node the checks before them let
    through but a rule can't read (an attribute value, a shape that contradicts another) is that
    node's error, one line naming it, not a traceback."""
    try:
        yield
    except (ArithmeticError, IndexError, KeyError, TypeError, ValueError, AttributeError) as e:
        raise CompileError(f"onnx2src can't read this node ({type(e).__name__}: {e}); if the model "
                           f"is valid, please report it", node) from e


def _fold(node, opdef) -> None:
    """Compute the outputs' contents when the inputs' are known and the result is small."""
    present = [v for v in node.inputs if v is not None]
    if opdef.fold is None or not all(v.data is not None for v in present):
        return
    if not (opdef.symbolic or all(v.is_constant for v in present)):
        return
    if not all(is_static(d) for v in node.outputs if v is not None for d in v.shape):
        return  # contents of a tensor whose size is symbolic are left to run time
    if sum(product(v.shape) for v in node.outputs if v is not None) > FOLD_LIMIT:
        return
    try:
        results = opdef.fold(node, *[v.data if v is not None else None for v in node.inputs])
    except ValueError as e:  # arithmetic on symbolic sizes that has no answer in dims
        raise CompileError(f"cannot compute this size at compile time: {e}", node)
    for v, data in zip(node.outputs, results or []):
        if v is not None and data is not None:
            data = np.asarray(data)
            if data.dtype != object:
                data = data.astype(v.dtype.numpy)
            v.data = data
