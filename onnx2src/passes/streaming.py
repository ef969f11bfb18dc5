"""Streaming analysis: can the model run chunk by chunk, carrying its recurrences' state?

A model streams when running the whole sequence equals running it in chunks of steps, each from
the state (h, c) the previous one left, for any split: per-step outputs are then the chunks'
outputs joined along the time axis, last-step outputs the last chunk's. That holds when every
recurrence runs forward over one dynamic time axis from zeros or a constant state, and every
other node keeps the steps apart. The pass gives each value a stream class (ops/__init__.py):
time-independent (None), per-step (its time axis), LAST (the last step only) or SIZE
(compile-time contents computed from the sequence length), walking the nodes in order: each op's
`stream` rule derives its outputs' classes, the recurrences are handled here. It records the
verdict as `graph.stream` for the emitters (a step API, or the reason there is none); it runs on
the ONNX graph after folding and canonicalization, before lowering.
"""
from dataclasses import dataclass, field
from typing import Dict, Optional, Union

from ..dims import Dim, render
from ..ops import LAST, SIZE, NotStreamable, lookup, refuse
from ..ops.recurrent import GATES

Class = Union[None, int, str]
STATE_INPUTS = {5: "initial_h", 6: "initial_c"}


@dataclass
class Stream:
    time: Optional[str]                  # the time dim's symbol, None when not streamable
    batch: Union[str, int, None]         # the recurrences' batch dim
    reason: Optional[str]                # why not streamable (one sentence), else None
    inputs: Dict[str, Class] = field(default_factory=dict)   # graph input → its time axis or None
    outputs: Dict[str, Class] = field(default_factory=dict)  # graph output → time axis, LAST or None


def run(graph) -> bool:
    recurrences = [n for n in graph.nodes if n.op_type in GATES]
    batch = None
    try:
        time, batch = _time_and_batch(recurrences)
        classes = _classify(graph, time, recurrences)
    except NotStreamable as e:
        graph.stream = Stream(None, batch, str(e))
        return False
    graph.stream = Stream(_dim_text(time), batch, None,
                          {v.name: classes[id(v)] for v in graph.inputs},
                          {v.name: classes[id(v)] for v in graph.outputs})
    return False


def _dim_text(d):
    """A dim as Stream gives it: an int, or its text (a symbol's name)."""
    return render(d, str, "doc") if isinstance(d, Dim) else int(d)


def _time_and_batch(recurrences):
    """The time dim (a Dim, one plain symbol) and batch dim all recurrences share, checking the
    attributes that make a recurrence unable to stream whatever surrounds it."""
    if not recurrences:
        raise NotStreamable("the model has no recurrence")
    time = batch = None
    for node in recurrences:
        direction = node.attrs.get("direction", "forward")
        if direction != "forward":
            raise refuse(node, f"is {direction}")
        if node.input(4) is not None:
            raise refuse(node, "takes sequence_lens (each batch entry stops at its own step)")
        if node.attrs.get("guard"):
            raise refuse(node, "runs inside an If branch chosen at run time")
        x = node.input(0)
        layout = node.attrs.get("layout", 0)
        seq, b = (x.shape[1], x.shape[0]) if layout else (x.shape[0], x.shape[1])
        if not isinstance(seq, Dim):
            raise refuse(node, f"has a sequence length fixed at {seq} in the model: export it with a dynamic "
                               f"time axis")
        if len(seq.symbols()) != 1 or seq != Dim.symbol(seq.symbols()[0]):
            raise refuse(node, f"runs over {render(seq, str, 'doc')} steps, not over a dynamic time axis of its own")
        if time is not None and (seq != time or b != batch):
            raise refuse(node, f"runs over [{_dim_text(seq)}, {_dim_text(b)}] (time, batch) where an earlier "
                               f"recurrence runs over [{_dim_text(time)}, {_dim_text(batch)}]")
        time, batch = seq, b
    return time, _dim_text(batch)


def _classify(graph, time, recurrences):
    """{id(value): class} of the graph inputs and every node output; raises NotStreamable."""
    symbol = time.symbols()[0]
    classes: Dict[int, Class] = {}

    def involves_time(d) -> bool:
        return isinstance(d, Dim) and symbol in d.symbols()

    def of(v) -> Class:
        if v is None:
            return None
        if id(v) not in classes:  # a constant, or compile-time sizes
            classes[id(v)] = SIZE if any(involves_time(d) for d in v.data.flat) else None
        return classes[id(v)]

    for v in graph.inputs:
        axes = [a for a, d in enumerate(v.shape) if involves_time(d)]
        if len(axes) > 1 or (axes and v.shape[axes[0]] != time):
            raise NotStreamable(f'input "{v.name}" of shape [{", ".join(map(str, v.shape))}] has the time '
                                f"length where it is not one axis of its own")
        classes[id(v)] = axes[0] if axes else None

    producer = {id(v): n for n in graph.nodes for v in n.outputs if v is not None}
    for node in graph.nodes:
        ins = [of(v) for v in node.inputs]
        outputs = [v for v in node.outputs if v is not None]
        if all(v.data is not None for v in outputs):  # computed at compile time
            outs = [of(v) for v in node.outputs]
        elif node.op_type in GATES:
            outs = _recurrence(node, ins, graph, producer)
        elif not any(isinstance(c, int) or c == SIZE for c in ins):
            outs = [LAST if LAST in ins else None] * len(node.outputs)  # steps don't enter
        else:
            rule = lookup(node).stream
            if rule is None:
                why = ("has no streaming rule (nothing tells that it keeps the time steps apart)"
                       if any(isinstance(c, int) for c in ins) else
                       "computes with the sequence length, which differs from chunk to chunk")
                raise refuse(node, why)
            outs = rule(node, ins, time)
        for v, c in zip(node.outputs, outs):
            if v is not None:
                _check_shape(node, v, c, time, involves_time)
                classes[id(v)] = c

    for v in graph.outputs:
        if of(v) == SIZE:
            raise NotStreamable(f'output "{v.name}" holds the sequence length, which differs from chunk to chunk')
    return classes


def _check_shape(node, v, c, time, involves_time) -> None:
    """Every value's shape holds the time length only as its time axis, when it is per-step."""
    steps = [a for a, d in enumerate(v.shape) if involves_time(d)]
    if steps != ([c] if isinstance(c, int) else []) or (steps and v.shape[c] != time):
        raise refuse(node, f'gives "{v.name}" the shape [{", ".join(map(str, v.shape))}], whose time axis '
                           f"chunks can't follow")


def _recurrence(node, ins, graph, producer):
    """Y is per-step along the layout's time axis, Y_h and Y_c are the last step's. The weights
    must not depend on time, and the initial state must be zeros (absent) or a constant: the
    state a stream starts from."""
    layout = node.attrs.get("layout", 0)
    if ins[0] != (1 if layout else 0):
        raise refuse(node, "reads X with its time axis elsewhere than the layout says")
    for i, what in STATE_INPUTS.items():
        v = node.input(i)
        if v is not None and not v.is_constant:
            source = _graph_input_behind(v, graph, producer)
            if source is not None:
                raise refuse(node, f'takes its initial state from input "{source.name}" (a model that carries its '
                                   f"state as inputs and outputs already streams through its run function)")
            maker = producer[id(v)]
            raise refuse(node, f'computes its {what} at run time ({maker.op_type} "{maker.name}"): a stream starts '
                               f"from zeros or a constant state")
    if any(c is not None for c in ins[1:]):
        raise refuse(node, "takes weights that depend on the time steps")
    return [1 if layout else 0, LAST, LAST][:len(node.outputs)]


def _graph_input_behind(v, graph, producer):
    """The first graph input v is computed from, or None."""
    inputs = {id(x): x for x in graph.inputs}
    todo, seen = [v], set()
    while todo:
        v = todo.pop()
        if id(v) in inputs:
            return inputs[id(v)]
        if id(v) in seen or v.data is not None or id(v) not in producer:  # sizes are no state
            continue
        seen.add(id(v))
        todo += [x for x in producer[id(v)].inputs if x is not None]
    return None
