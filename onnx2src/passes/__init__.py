"""The passes, in the order the pipeline runs them. Each module has `run(graph) -> changed`.
PIPELINE runs for every target; TARGET_PASSES then prepare the lowered graph for one emitter
(the C target packs its weights into the kernels' panels and plans its arena; NumPy needs neither)."""
import os

from . import (infer_shapes, fold_constants, fold_int8_weights, zero_states, fold_layout, last_step, fold_batchnorm, lower,
               eliminate_dead_code, streaming, pack_weights, plan_memory)
from .. import ir_verifier
from ..ops import check_supported

PIPELINE = [infer_shapes, fold_constants, fold_int8_weights, zero_states, fold_layout, last_step, fold_batchnorm,
            eliminate_dead_code, streaming, lower, eliminate_dead_code]
TARGET_PASSES = {"c": [pack_weights, plan_memory], "numpy": []}


def run_all(graph, target: str = "c", check: bool = False) -> None:
    """Run the pipeline, then the target's passes, on a graph fresh from the frontend. With
    `check` (or the environment variable ONNX2SRC_CHECK_IR set to anything but "" or "0"), the IR
    verifier runs on the frontend's graph and after every pass, raising InternalError on a
    broken invariant."""
    check = check or os.environ.get("ONNX2SRC_CHECK_IR", "0") not in ("", "0")
    check_supported(graph)  # (infer_shapes runs it too) first: a model's custom op is no IR op
    if check:
        ir_verifier.check(graph, after="frontend")
    for p in PIPELINE + TARGET_PASSES[target]:
        p.run(graph)
        if check:
            ir_verifier.check(graph, after=p.__name__.rsplit(".", 1)[-1])
