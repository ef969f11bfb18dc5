"""If: its branches become nodes of the enclosing graph.

Exports branch on facts that are often constant once the model is compiled: silero VAD on its
sample-rate input (pin it with `--const sr=16000`), PyTorch on shapes (`if x.size(0) == 1`).
Shape inference folds the condition, then `expand` splices the taken branch's nodes in place
of the If, with an Identity from each branch output to the If's output.

A condition known only at run time keeps both branches: each node of a branch carries a guard
(the conditions under which it runs; the emitters wrap guarded nodes in `if`), each branch has
its own memory in the plan, and `Select` (an IR-only op) copies the taken branch's result
into the If's output.
"""
import numpy as np

from ..ir import CompileError, Condition, Node
from . import ir, register, set_output
from .elementwise import stream


def expand_if(node, graph):
    cond = node.input(0)
    if cond.data is not None and cond.is_constant:
        if cond.data.size != 1:
            raise CompileError(f"the condition has {cond.data.size} elements, not one", node)
        taken = "then_branch" if bool(np.asarray(cond.data).reshape(-1)[0]) else "else_branch"
        return _splice(node, node.attrs[taken], node.attrs.get("guard")) + _route(node, node.attrs[taken].outputs)
    if any(d != 1 for d in cond.shape):
        raise CompileError(f"the condition has shape {list(cond.shape)}, not a single value", node)
    guard = node.attrs.get("guard", [])
    then, other = node.attrs["then_branch"], node.attrs["else_branch"]
    nodes = _splice(node, then, guard + [Condition(cond, True)])
    nodes += _splice(node, other, guard + [Condition(cond, False)])
    selects = []
    for k, (a, b, y) in enumerate(zip(then.outputs, other.outputs, node.outputs)):
        if y is not None:
            selects.append(Node("Select", f"{node.name}/output {k}", [cond, a, b], [y],
                                {"guard": guard} if guard else {}, version=1))
            y.producer = selects[-1]
    return nodes + selects


def _splice(node, branch, guard=None):
    if len(branch.outputs) != len(node.outputs):
        raise CompileError(f"a branch returns {len(branch.outputs)} values for {len(node.outputs)} outputs", node)
    if guard:
        for inner in branch.nodes:
            inner.attrs["guard"] = guard + inner.attrs.get("guard", [])
    return list(branch.nodes)


def _route(node, values):
    """Identity nodes from the taken branch's results to the If's outputs."""
    guard = {"guard": node.attrs["guard"]} if node.attrs.get("guard") else {}
    passes = [Node("Identity", f"{node.name}/output {k}", [src], [dst], dict(guard), version=1)
              for k, (src, dst) in enumerate(zip(values, node.outputs)) if dst is not None]
    for identity in passes:
        identity.outputs[0].producer = identity
    return passes


def infer_select(node, graph):
    _, a, b = node.inputs
    if a.dtype != b.dtype or len(a.shape) != len(b.shape) or any(x != y for x, y in zip(a.shape, b.shape)):
        raise CompileError(f"the branches return {a.dtype.name} {list(a.shape)} and {b.dtype.name} "
                           f"{list(b.shape)}; onnx2src needs one type and shape (pin the condition's "
                           f"inputs with --const to keep one branch)", node)
    set_output(node, 0, a.dtype, a.shape)


register("If", 1, infer=None, expand=expand_if)
register("Select", 1, infer=infer_select, stream=stream,  # a broadcast of one-element cond
         lower=lambda node, graph: [ir("Select", node, node.inputs, node.outputs)])
