"""The passes, in the order the pipeline runs them. Each module has `run(graph) -> changed`.
PIPELINE runs for every target; TARGET_PASSES then prepare the lowered graph for one emitter
(the C target packs its weights into the kernels' panels and plans its arena; NumPy needs neither).
A pass reads the compile options it needs from graph.options (options.py; None on a graph no
run_all has seen: the defaults)."""
import os
from typing import Optional

from . import (infer_shapes, fold_constants, fold_int8_weights, zero_states, fold_layout, last_step, fold_batchnorm, lower,
               eliminate_dead_code, streaming, pack_weights, plan_memory)
from .. import ir_verifier
from ..ops import check_supported
from ..options import Options

PIPELINE = [infer_shapes, fold_constants, fold_int8_weights, zero_states, fold_layout, last_step, fold_batchnorm,
            eliminate_dead_code, streaming, lower, eliminate_dead_code]
TARGET_PASSES = {"c": [pack_weights, plan_memory], "numpy": []}


def run_all(graph, options: Optional[Options] = None) -> None:
    """Run the pipeline, then the target's passes, on a graph fresh from the frontend, compiled
    with `options` (default: the graph's own, else Options("c")), which the graph then carries
    for the passes that read one (graph.options). With options.check_ir (or the environment
    variable ONNX2SRC_CHECK_IR set to anything but "" or "0"), the IR verifier runs on the
    frontend's graph and after every pass, raising InternalError on a broken invariant."""
    options = options or graph.options or Options("c")
    graph.options = options
    check = options.check_ir or os.environ.get("ONNX2SRC_CHECK_IR", "0") not in ("", "0")
    check_supported(graph)  # (infer_shapes runs it too) first: a model's custom op is no IR op
    if check:
        ir_verifier.check(graph, after="frontend")
    for p in PIPELINE + TARGET_PASSES[options.target]:
        p.run(graph)
        if check:
            ir_verifier.check(graph, after=p.__name__.rsplit(".", 1)[-1])
