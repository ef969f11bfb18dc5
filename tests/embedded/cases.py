"""The models the embedded tests and tests/embedded/report.py run, and running them: every
sample and a few varied exports, each at one small size (which is also its --max-dim bound, so
the arena fits a microcontroller's RAM), on fixed random inputs, compared with onnxruntime.

Each model runs through one of three APIs: NAME_run once ("run"); NAME_run_workspace once on
a static workspace of the program's own, sized by NAME_workspace_size through a host build of
the model ("workspace"); and, for the models that stream, NAME_init then NAME_step over the
sequence in chunks of one step and again in an uneven split, each split's outputs joined as
conftest.chunked joins them ("step")."""
import ctypes
import functools
import os
import tempfile
from dataclasses import dataclass

import numpy as np

from onnx2src import Options, generate
from onnx2src.harness import CModel, Interface, rounded_model

from conftest import ort_run
from embedded import program, toolchain
from conftest import chunked, stream_plan

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# The size of each symbolic dim the models have.
SIZES = {"batch": 2, "seq": 5, "time": 6, "height": 3, "width": 4}

SAMPLES = ["samples/simple_rnn.onnx", "samples/simple_lstm.onnx", "samples/simple_gru.onnx"]
EXPORTS = [
    "tests/exports/lstm_l2_bi_bf_h0_last_state_ts.onnx",  # LSTM, 2 layers, both ways, h0/c0 in, states out
    "tests/exports/gru_l2_bi_sf_noh0_every_dy.onnx",      # GRU, dynamo export (external weights, static shape)
    "tests/exports/ops/where_rows_dy.onnx",               # Linear heads + per-row Where, dynamo
    "tests/exports/ops/pad_conv_acts_ts17.onnx",          # Pad + Conv2d + the activation zoo (erf, exp, log, pow ...)
    "tests/exports/ops/audio_frontend_dy.onnx",           # RMS, log1p, CumSum, ArgMax (an int64 output)
]
# Models with the step API (tests/exports/stream/make_stream_exports.py describes the exports).
STREAMING = [
    "samples/simple_lstm.onnx",                     # the last step's Linear head
    "tests/exports/stream/kws_lstm_ts.onnx",        # 2-layer LSTM, per-step and last-step scores
    "tests/exports/stream/mask_gru_ts.onnx",        # pointwise Conv1d, GRU, a mask per step; h_n
    "tests/exports/stream/tagger_rnn_seqfirst_ts.onnx",  # RNN, time axis first, a tag per step
]
MODELS = SAMPLES + EXPORTS + [m for m in STREAMING if m not in SAMPLES]
# Models built with --weights int8 (the int8 matrix kernel), as "path --weights int8": compared
# with onnxruntime on the model with its weights quantized the same way.
INT8 = [f"{m} --weights int8" for m in ("samples/simple_gru.onnx", "tests/exports/stream/kws_lstm_ts.onnx")]
APIS = ("run", "workspace", "step")


def splits(steps):
    """The splits of `steps` time steps NAME_step runs: one step at a time, then uneven chunks
    of 2, 3, 1, 2, 3, 1 ... steps (the last one cut to fit)."""
    uneven, done = [], 0
    while done < steps:
        uneven.append(min((2, 3, 1)[len(uneven) % 3], steps - done))
        done += uneven[-1]
    return [[1] * steps, uneven]


class Case:
    """One model at its size: `inputs`, the generated `files`, the `expected` outputs."""

    def __init__(self, entry):
        relpath, _, weights = entry.partition(" --weights ")
        weights = weights or "float"
        self.path = os.path.join(ROOT, relpath)
        self.name = os.path.splitext(os.path.basename(relpath))[0] + ("" if weights == "float" else f"_{weights}")
        self.interface = Interface(self.path)
        self.sizes = {s: SIZES[s] for s in self.interface.symbols}
        rng = np.random.default_rng(sum(map(ord, self.name)))
        self.inputs = [rng.standard_normal(shape).astype(dtype) for shape, (_, dtype, _) in
                       zip(self.interface.input_shapes(self.sizes), self.interface.inputs)]
        self.outputs = self.output_types(self.sizes)
        self.files = generate(self.path, Options("c", name=self.name, max_dims=self.sizes, weights=weights))
        with tempfile.TemporaryDirectory() as folder:
            reference = self.path if weights == "float" else rounded_model(
                self.path, os.path.join(folder, "rounded.onnx"), weights)
            self.expected = ort_run(reference, self.inputs)

    def output_types(self, sizes):
        """(dtype, shape) of each output at these dim sizes."""
        return [(np.dtype(dtype), shape) for shape, (_, dtype, _) in
                zip(self.interface.output_shapes(sizes), self.interface.outputs)]

    @functools.cached_property
    def workspace(self) -> int:
        """NAME_workspace_size at the case's sizes, from the model built for this host."""
        with tempfile.TemporaryDirectory() as workdir:
            model = CModel(self.files, self.name, self.interface, workdir)
            return model.workspace_size(*(ctypes.c_int64(n) for n in self.sizes.values()))

    @functools.cached_property
    def plan(self):
        """How the model streams (graph.stream): each input's and output's time axis."""
        plan = stream_plan(self.path)
        if plan.reason is not None:
            raise ValueError(f"{self.name} has no step API: {plan.reason}")
        return plan

    def _chunked(self, step, split):
        """conftest's chunked: cuts the inputs on their time axes into `split`'s
        chunks, calls `step` on each in order and joins what it returns. calls() uses it to
        write one NAME_step call per chunk (its join of zeros is dropped), results() to join
        the outputs the program printed."""
        names = {"in": [n for n, _, _ in self.interface.inputs],
                 "out": [n for n, _, _ in self.interface.outputs]}
        return chunked(step, self.plan, names, self.inputs, split)

    def calls(self, api):
        """The calls main.c makes for `api` (APIS)."""
        dims = list(self.sizes.values())
        if api == "run":
            return [program.Call(f"{self.name}_run", dims, self.inputs, self.outputs)]
        if api == "workspace":
            return [program.Call(f"{self.name}_run_workspace", dims, self.inputs, self.outputs,
                                 workspace=True)]
        calls = []

        def step(*part):  # one chunk: its call; zeros stand for its outputs
            sizes = {**self.sizes, **self.interface.sizes(part)}
            outputs = self.output_types(sizes)
            calls.append(program.Call(f"{self.name}_step", list(sizes.values()), list(part), outputs,
                                      state=True, workspace=True))
            return [np.zeros(shape, dtype) for dtype, shape in outputs]

        batch = [self.sizes[self.plan.batch]] if isinstance(self.plan.batch, str) else []
        for split in splits(self.sizes[self.plan.time]):
            calls.append(program.Call(f"{self.name}_init", batch, state=True))
            self._chunked(step, split)
        return calls

    def results(self, api, outputs):
        """{what ran: its outputs, to compare with `expected`} from the printed `outputs`."""
        if api != "step":
            return {api: outputs}
        count = len(self.outputs)
        chunks = iter(outputs[i:i + count] for i in range(0, len(outputs), count))
        return {f"{api} {'+'.join(map(str, split))}": self._chunked(lambda *part: next(chunks), split)
                for split in splits(self.sizes[self.plan.time])}


@dataclass
class Run:
    """One program run: its build, exit status, results (Case.results) and instruction count
    (m4 only)."""
    program: toolchain.Program
    status: int
    results: dict
    instructions: object


class Runner:
    """Builds and runs each (case, arch, variant, api) once, in subfolders of `workdir`."""

    def __init__(self, workdir):
        self.workdir, self.cases, self.runs = workdir, {}, {}

    def case(self, relpath) -> Case:
        if relpath not in self.cases:
            self.cases[relpath] = Case(relpath)
        return self.cases[relpath]

    def run(self, relpath, arch, variant="-O2", api="run") -> Run:
        key = (relpath, arch, variant, api)
        if key not in self.runs:
            case = self.case(relpath)
            calls = case.calls(api)
            workspace = case.workspace if api != "run" else 0
            build = toolchain.Program(case.files, program.main_c(case.name, calls, workspace),
                                      os.path.join(self.workdir, case.name, f"{arch}{variant}-{api}"),
                                      arch, variant)
            code, text = build.run()
            outputs = [output for call in calls for output in call.outputs]
            status, ticks, arrays = program.parse(text, outputs)
            if code != status:
                raise RuntimeError(f"{case.name} ({arch} {variant} {api}) exited with {code}, "
                                   f"printed status {status}:\n{text[-2000:]}")
            results = case.results(api, arrays) if status == 0 else {}
            self.runs[key] = Run(build, status, results, build.instructions(ticks))
        return self.runs[key]
