"""An initial state of zeros becomes no initial state.

A recurrence without initial_h / initial_c starts from zeros, so a state that is all zeros need
not be filled, stored or copied. PyTorch's exporters spell `torch.zeros(layers, batch, hidden)`
with a dynamic batch as ConstantOfShape of a shape computed from Shape (TorchScript), or as Expand
of a zero scalar, then Slice per layer (the torch.export-based exporter); with a static batch it is
a zero constant. Dropping the input also tells the streaming analysis that the stream starts from
zeros. Runs after constant folding.
"""
import numpy as np

from ..ops.recurrent import GATES
from .graph_edit import STATES


# ops whose output is all zeros when their input 0 is
KEEP_ZEROS = {"Expand", "Tile", "Slice", "Split", "Gather", "Reshape", "Squeeze", "Unsqueeze", "Flatten",
              "Transpose", "Identity", "Cast"}


def run(graph) -> bool:
    """A recurrence's initial_h / initial_c that is all zeros, whatever the run-time sizes,
    becomes no input."""
    producer = {id(v): n for n in graph.nodes for v in n.outputs if v is not None}
    changed = False
    for node in graph.nodes:
        if node.op_type not in GATES:
            continue
        for i in STATES:
            if node.input(i) is not None and _zeros(node.input(i), producer):
                node.inputs[i] = None
                changed = True
    return changed


def _zeros(v, producer) -> bool:
    """Whether v is all zeros, whatever the run-time sizes."""
    if v.is_constant:
        return not np.any(v.data)
    node = producer.get(id(v))
    if node is None:
        return False
    if node.op_type == "ConstantOfShape":
        value = node.attrs.get("value")
        return value is None or not np.any(value)
    if node.op_type == "Concat":
        return all(_zeros(x, producer) for x in node.inputs)
    return node.op_type in KEEP_ZEROS and _zeros(node.input(0), producer)
