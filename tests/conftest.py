"""Shared test helpers: compile a model to both targets and compare with a reference.

Every test runs the IR verifier after the frontend and each pass (ONNX2SRC_CHECK_IR, read by
passes.run_all and inherited by the CLI subprocesses the tests start)."""
import os

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from onnx2src import CompileError, Options, frontend, generate, passes
from onnx2src.harness import CModel, Interface, load_numpy

os.environ.setdefault("ONNX2SRC_CHECK_IR", "1")

TARGETS = ("numpy", "c")
RTOL, ATOL = 1e-4, 1e-5


def save(model, directory, name="model"):
    """Write a ModelProto into `directory`; return the path. Paths pass through."""
    if isinstance(model, (str, os.PathLike)):
        return str(model)
    path = os.path.join(str(directory), f"{name}.onnx")
    onnx.save(model, path)
    return path


def build(path, target, workdir, name="model", max_dims=None, consts=None, fixed_dims=None):
    """A callable running the generated code of one target: inputs → list of outputs. Dims the
    test leaves unbounded get bound 128 (the default bound of a recurrence's batch is 1)."""
    if max_dims is None:
        max_dims = wide_bounds(path, consts, fixed_dims)
    options = Options(target, name=name, max_dims=max_dims, consts=consts, fixed_dims=fixed_dims)
    files = generate(path, options)
    os.makedirs(workdir, exist_ok=True)
    if target == "numpy":
        module = load_numpy(files[f"{name}.py"], name, str(workdir))
        return NumpyModel(module)
    # one instruction-set level: the variants of a dispatching build (three copies of the model's
    # code, tripling the compile time of each of these small tests) have tests of their own
    # (test_dispatch.py, test_kernels.py); at -O1 they differ only in the matrix kernel's paths
    return CModel(files, name, Interface(path, options), str(workdir),
                  ("-O1", "-DO2S_NO_DISPATCH"))


def wide_bounds(path, consts=None, fixed_dims=None):
    """Bound 128 for every symbolic dim of a model (the defaults bound a recurrence's batch to 1)."""
    graph = frontend.load(path)
    frontend.pin(graph, consts or {}, fixed_dims)
    return {s: 128 for s in graph.symbols()}


class NumpyModel:
    """A generated NumPy module, called like a CModel: inputs → list of outputs."""

    def __init__(self, module):
        self.module = module

    def __call__(self, *inputs):
        return list(self.module.run(*inputs))


def ort_options(level=None):
    """The onnxruntime session options of every comparison: one thread, the given graph
    optimization level (default: onnxruntime's own, all), and exact integer matrix products.

    On x86-64 CPUs without VNNI (AVX2, AVX-512F) onnxruntime's uint8 x int8 matrix kernels
    (MLAS's U8S8 GEMM behind MatMulInteger, QLinearMatMul, QGemm, QLinearConv and
    DynamicQuantizeLSTM) add each pair of neighbouring products with VPMADDUBSW in saturating
    16-bit arithmetic: 255 * 127 * 2 = 64770 becomes 32767, so a sum can be thousands off where
    the spec's sums are exact int32 (a quantization step or more in the outputs); with VNNI, on
    ARM and for uint8 x uint8 the sums are exact. The session option `session.x64quantprecision`
    (onnxruntime's documented remedy, kOrtSessionOptionsAvx2PrecisionMode) makes its level-2
    Avx2WeightS8ToU8Transformer rewrite a constant int8 weight and its zero point to uint8 (both
    + 128: the same differences, the same products) so the exact U8U8 kernels run. Elsewhere the
    products are exact either way (outside x86 the option is compiled out). Below the extended
    level it does nothing (test_quant_models.as_written says what the tests do there)."""
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    if level is not None:
        opts.graph_optimization_level = level
    opts.add_session_config_entry("session.x64quantprecision", "1")
    return opts


def ort_run(path, inputs):
    import onnxruntime as ort
    sess = ort.InferenceSession(path, ort_options(), providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    return sess.run(None, dict(zip(names, inputs)))


def assert_close(actual, expected, what=""):
    assert len(actual) == len(expected), what
    for i, (a, e) in enumerate(zip(actual, expected)):
        a, e = np.asarray(a), np.asarray(e)
        assert a.shape == e.shape, f"{what} output {i}: shape {a.shape} != {e.shape}"
        assert a.dtype == e.dtype, f"{what} output {i}: dtype {a.dtype} != {e.dtype}"
        if a.dtype.kind == "f":
            np.testing.assert_allclose(a, e, rtol=RTOL, atol=ATOL, err_msg=f"{what} output {i}")
        else:
            np.testing.assert_array_equal(a, e, err_msg=f"{what} output {i}")


def max_error(actual, expected):
    return max((float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(e, np.float64))))
                for a, e in zip(actual, expected) if np.asarray(a).size), default=0.0)


@pytest.fixture(params=TARGETS)
def target(request):
    return request.param


def single_op_cases(ops):
    """The ONNX backend node cases made of one node of one of `ops`, sorted by name."""
    from onnx.backend.test.case.node import collect_testcases
    cases = [c for c in collect_testcases()
             if len(c.model.graph.node) == 1 and c.model.graph.node[0].op_type in ops]
    return sorted(cases, key=lambda c: c.name)


def case_data(case):
    """The (inputs, expected outputs) of an ONNX backend node case, as lists of arrays."""
    array = lambda x: numpy_helper.to_array(x) if isinstance(x, onnx.TensorProto) else np.asarray(x)
    return [([array(x) for x in inputs], [array(x) for x in expected]) for inputs, expected in case.data_sets]


def check_node_case(case, target, workdir, refused=False):
    """Run an ONNX backend node case in one target and compare with the outputs it carries;
    with `refused`, check that onnx2src refuses it instead and return the CompileError."""
    path = save(case.model, workdir)
    if refused:
        with pytest.raises(CompileError) as error:
            build(path, target, workdir / target)
        return error.value
    run = build(path, target, workdir / target)
    for inputs, expected in case_data(case):
        assert_close(run(*inputs), expected, case.name)


# -- the compiled graph; streaming: the time axes the analysis finds, chunked runs joined -------

def lowered(path):
    """The graph after the whole pipeline (the IR the emitters read)."""
    graph = frontend.load(path)
    for p in passes.PIPELINE:
        p.run(graph)
    return graph


def stream_plan(path):
    """graph.stream as the pipeline leaves it before lowering."""
    graph = frontend.load(path)
    for p in passes.PIPELINE:
        if p is passes.lower:
            return graph.stream
        p.run(graph)


def chunked(step, plan, names, inputs, sizes):
    """Run `step` chunk by chunk; join the per-step outputs, keep the last chunk's others."""
    axes_in = [plan.inputs[n] for n in names["in"]]
    results, start = [], 0
    for size in sizes:
        part = [x if axis is None else np.take(x, range(start, start + size), axis=axis)
                for x, axis in zip(inputs, axes_in)]
        results.append(step(*part))
        start += size
    joined = []
    for k, name in enumerate(names["out"]):
        axis = plan.outputs[name]
        joined.append(np.concatenate([r[k] for r in results], axis=axis) if isinstance(axis, int)
                      else results[-1][k])
    return joined


def cpu_flags():
    """The flags of this machine's CPU in /proc/cpuinfo (none where there is no such file)."""
    try:
        with open("/proc/cpuinfo") as f:
            return set(next(line for line in f if line.startswith("flags")).split(":", 1)[1].split())
    except (OSError, StopIteration):
        return set()


def ort_or_onnx_reference(path, inputs, refusal):
    """onnxruntime's outputs; onnx.reference's where onnxruntime refuses the model with an error
    that contains `refusal` (a kernel it lacks for what the spec allows)."""
    try:
        return ort_run(path, inputs)
    except Exception as e:
        if refusal not in str(e):
            raise
    from onnx.reference import ReferenceEvaluator
    model = onnx.load(path)
    return ReferenceEvaluator(model).run(None, {i.name: x for i, x in zip(model.graph.input, inputs)})
