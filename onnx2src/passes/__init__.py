"""The passes, in the order the pipeline runs them. Each module has `run(graph) -> changed`."""
from . import infer_shapes, fold_constants, lower, eliminate_dead_code, pack_weights, plan_memory

PIPELINE = [infer_shapes, fold_constants, eliminate_dead_code, lower, eliminate_dead_code,
            pack_weights, plan_memory]


def run_all(graph) -> None:
    for p in PIPELINE:
        p.run(graph)
