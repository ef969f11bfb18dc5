"""The compile options: one frozen object, made once (by the CLI from its flags, by a Python
caller with `Options(target, ...)`), checked where it is made, then read by the pipeline: the
frontend's pinning (consts, fixed_dims), the passes (fold_int8_weights: weights; plan_memory:
max_dims), the emitters and the provenance header, which lists it.

Mappings (max_dims, consts, fixed_dims) are given as dicts or (key, value) pairs and stored as
tuples of pairs sorted by key, so the object is immutable, hashable and equal for equal options
whatever order they were given in. `dict(options.max_dims)` reads one back.
"""
import os
from dataclasses import dataclass, replace
from typing import Mapping, Optional, Tuple, Union

from .emit.naming import default_module_name, module_name_problem
from .ir import CompileError

TARGETS = ("c", "numpy")
WEIGHT_FORMATS = ("float", "bf16", "int8")  # how constant matrices are stored (--weights)
DEFAULT_MAX_DIM = 128  # the default bound of a symbolic dim in the C target, but for
DEFAULT_MAX_BATCH = 1  # the batch dim of a recurrence: one stream unless asked for more

Pairs = Tuple[Tuple[str, object], ...]


@dataclass(frozen=True)
class Options:
    """What to generate from a model; each field is a flag of the `onnx2src` command.

    target       "c" or "numpy" (--target)
    name         module name / C symbol prefix (--name); None: the model file's stem, made valid
    max_dims     {dim: bound} of symbolic dims in the C target (--max-dim)
    approximate  the C target's faster rational tanh/sigmoid (--approx-activations; see
                 docs/performance.md, Activations)
    check_ir     run the IR verifier after every pass (--check-ir; a failure is InternalError)
    consts       {input: JSON text} pinned at compile time (--const), e.g. {"sr": "16000"}
    fixed_dims   {dim: size} fixed at compile time (--fix-dim)
    stream       require the step API (--stream): a CompileError says why a model can't have it
    weights_file C target: the weights in NAME.weights, loaded by the caller (--weights-file)
    weights      how constant matrices (of Gemm, MatMul, Conv, the recurrences' W and R) are
                 stored (--weights): "float"; "bf16" (C target: bfloat16, float32 arithmetic);
                 "int8" (both targets: int8 with a scale per output channel, reduced_weights.py);
                 see docs/performance.md, Reduced-precision weights and int8 weights
    """
    target: str
    name: Optional[str] = None
    max_dims: Pairs = ()
    approximate: bool = False
    check_ir: bool = False
    consts: Pairs = ()
    fixed_dims: Pairs = ()
    stream: bool = False
    weights_file: bool = False
    weights: str = "float"

    def __post_init__(self):
        for field in ("max_dims", "consts", "fixed_dims"):
            object.__setattr__(self, field, _pairs(getattr(self, field)))
        if self.target not in TARGETS:
            raise CompileError(f"unknown target {self.target!r} (choose from {', '.join(TARGETS)})")
        if self.name is not None:
            problem = module_name_problem(self.name, self.target)
            if problem:
                raise CompileError(f"--name {self.name!r} can't be used: {problem}")
        if self.weights not in WEIGHT_FORMATS:
            raise CompileError(f"unknown weight format {self.weights!r} (choose from {', '.join(WEIGHT_FORMATS)})")
        if self.weights == "bf16" and self.target != "c":
            raise CompileError("--weights bf16 is for the C target (the NumPy module keeps float32 weights)")
        if self.weights_file and self.target != "c":
            raise CompileError("--weights-file is for the C target (the NumPy module embeds its weights)")
        for flag, pairs in (("--max-dim", self.max_dims), ("--fix-dim", self.fixed_dims)):
            for dim, n in pairs:
                if isinstance(n, bool) or not isinstance(n, int):
                    raise CompileError(f"{flag} {dim}={n!r}: a size must be an integer")
                if n < 1:
                    what = "a bound" if flag == "--max-dim" else "a size"
                    raise CompileError(f"{flag} {dim}={n}: {what} must be at least 1")
        for name, text in self.consts:
            if not isinstance(text, str):
                raise CompileError(f"--const {name}: the value must be JSON text, e.g. \"16000\" or \"[1, 2]\"")

    def named_for(self, path: str) -> "Options":
        """These options with `name` filled in: the model file's stem made a valid module name
        when none was given."""
        if self.name is not None:
            return self
        return replace(self, name=default_module_name(os.path.splitext(os.path.basename(path))[0], self.target))

    def check_max_dims(self, symbols) -> None:
        """Refuse --max-dim names that are none of the model's symbolic dims (`symbols`)."""
        unknown = [s for s, _ in self.max_dims if s not in symbols]
        if unknown:
            raise CompileError(f"--max-dim names {', '.join(unknown)}, which the model's inputs do not "
                               f"use (symbolic dims: {', '.join(symbols) or 'none'})")


def _pairs(given: Union[Mapping, Pairs, None]) -> Pairs:
    """A mapping, or (key, value) pairs (the last of a key wins, as with repeated flags), as a
    tuple of pairs sorted by key."""
    items = dict(given.items() if isinstance(given, Mapping) else (given or ()))
    return tuple(sorted(items.items()))
