"""If, whose condition must be known at compile time: the taken branch replaces it.

Exports branch on facts that are constant once the model is compiled: silero VAD on its
sample-rate input (pin it with `--const sr=16000`), PyTorch on shapes (`if x.size(0) == 1`).
Shape inference folds the condition, then `expand` splices the taken branch's nodes in place
of the If, with an Identity from each branch output to the If's output, and inference goes on
through them. A condition known only at run time is refused, naming the inputs to pin.
"""
import numpy as np

from ..ir import CompileError, Node
from . import register


def expand_if(node, graph):
    cond = node.input(0)
    if cond is None or not cond.is_constant:
        raise CompileError(f'the condition "{cond.name if cond else ""}" is known only at run time; '
                           f"onnx2src compiles an If whose condition it can compute: pin the inputs "
                           f"it depends on with --const NAME=VALUE", node)
    if cond.data.size != 1:
        raise CompileError(f"the condition has {cond.data.size} elements, not one", node)
    branch = node.attrs["then_branch" if bool(np.asarray(cond.data).reshape(-1)[0]) else "else_branch"]
    if len(branch.outputs) != len(node.outputs):
        raise CompileError(f"the branch returns {len(branch.outputs)} values for {len(node.outputs)} outputs", node)
    passes = [Node("Identity", f"{node.name}/output {k}", [src], [dst], version=1)
              for k, (src, dst) in enumerate(zip(branch.outputs, node.outputs)) if dst is not None]
    for identity in passes:
        identity.outputs[0].producer = identity
    return branch.nodes + passes


register("If", 1, infer=None, expand=expand_if)
