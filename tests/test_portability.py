"""Generated C where users build it: as C++11/14/17 (g++, clang++) beside a C++ main that includes
the header, two models in one C++ program, the strict warning set MCU projects use, no warning
at -O2, -O3 and -Os (where the dispatching build's inlined variants let the compilers' loop
analyses see every size known at compile time) for the committed real models, the Keras exports
and layer-norm reductions, and arm-none-eabi-gcc for a Cortex-M4F at -O0, -ffreestanding and
-fno-builtin (no call to a software fmaf, memcpy for bit casts or a double-precision helper).
Weights are decimal literals that read back bit for bit in C and C++. Outputs are compared
with onnxruntime."""
import os
import shutil
import subprocess

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from conftest import assert_close, ort_run
from onnx2src import Options, compile_model
from onnx2src.emit.literals import c_initializer
from onnx2src.harness import Interface
from onnx2src.ir import DTYPES
from test_c_program import Generated, main_source, run_program, split
from test_exports import HERE, random_inputs
from test_real_models import ENTRIES, HERE as REAL, compile_options

SAMPLES = os.path.join(os.path.dirname(__file__), "..", "samples")
# (file, dim sizes): the seeds, recurrent exports of both exporters, and op exports with
# Conv / BatchNorm / pooling / LayerNorm / Pad / CumSum / the activation zoo / torch.where with a
# ReduceMean; quantized models (QDQ from quantize_static, quantize_dynamic's ConvInteger).
MODELS = [(os.path.join(SAMPLES, "simple_lstm.onnx"), {"batch": 2, "seq": 5}),
          (os.path.join(SAMPLES, "simple_gru.onnx"), {"batch": 3, "seq": 4}),
          (os.path.join(SAMPLES, "simple_rnn.onnx"), {"batch": 1, "seq": 6}),
          (os.path.join(HERE, "lstm_l2_bi_bf_noh0_last_dy.onnx"), {"batch": 5, "seq": 7}),
          (os.path.join(HERE, "gru_l2_bi_sf_noh0_every_dy.onnx"), {"batch": 2, "seq": 3}),
          (os.path.join(HERE, "rnn_tanh_l2_bi_sf_h0_every_ts.onnx"), {"batch": 2, "seq": 4}),
          (os.path.join(HERE, "ops", "crnn_ts17nf.onnx"), {"batch": 2, "time": 7}),
          (os.path.join(HERE, "ops", "resnet_dy.onnx"), {"batch": 2}),
          (os.path.join(HERE, "ops", "pad_conv_acts_dy.onnx"), {"batch": 3, "height": 4, "width": 9}),
          (os.path.join(HERE, "ops", "audio_frontend_ts17.onnx"), {"batch": 2, "time": 5}),
          (os.path.join(HERE, "ops", "ln_gru_dy.onnx"), {"batch": 2, "seq": 5}),
          (os.path.join(HERE, "ops", "where_global_ts17.onnx"), {"batch": 3}),
          (os.path.join(HERE, "ops", "where_cond_dy.onnx"), {"batch": 2}),
          (os.path.join(HERE, "quant", "mlp_qdq_s8s8_pc.onnx"), {"batch": 3}),
          (os.path.join(HERE, "quant", "conv1d_dynamic.onnx"), {"batch": 2, "time": 9})]
IDS = [os.path.basename(f)[:-5] for f, _ in MODELS]

STRICT = ["-Wall", "-Wextra", "-Werror", "-Wshadow", "-Wdouble-promotion", "-Wconversion"]
CXX = [c for c in ("g++", "clang++") if shutil.which(c)]
CC = [c for c in ("gcc", "clang") if shutil.which(c)]
M4 = ["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard", "-mthumb"]


def _compile(cmd):
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0 and not done.stderr, f"{' '.join(cmd)}\n{done.stderr}"


def _sizes(path, sizes):
    """The manifest's sizes with names as the model spells them (samples: batch, seq)."""
    graph = onnx.load(path, load_external_data=False).graph
    names = {d.dim_param for vi in graph.input for d in vi.type.tensor_type.shape.dim if d.dim_param}
    assert names <= set(sizes), f"{path}: dims {names}, sizes given for {sorted(sizes)}"
    return sizes


def _bounds(*names):
    """-D flags raising every dim bound a test uses (a recurrence's batch defaults to 1)."""
    return [f"-D{n.upper()}_MAX_{d.upper()}=64" for n in names for d in ("batch", "seq", "time", "height", "width")]


def _cxx_program(tmp_path, cxx, std, models, calls, c_flags):
    """Each model's .c compiled with `c_flags` (C or C++), a C++ main, linked by `cxx`."""
    bounds = _bounds(*(g.name for g in models))
    main = tmp_path / "main.cpp"
    main.write_text(main_source(models, calls))
    objects = []
    for g in models:
        for src in g.sources:
            obj = f"{src}.{std}.o"
            _compile([*c_flags, *STRICT, *bounds, "-O2", "-c", src, "-o", obj])
            objects.append(obj)
    exe = str(tmp_path / f"prog_{std}")
    _compile([cxx, f"-std={std}", *bounds, "-Wall", "-Wextra", "-Werror", "-O2", "-I", str(tmp_path),
              "-c", str(main), "-o", f"{main}.{std}.o"])
    _compile([cxx, f"{main}.{std}.o", *objects, "-o", exe, "-lm"])
    return exe


def _one_model(path, sizes, name, tmp_path):
    """The model generated under `name`, random inputs, onnxruntime's outputs, and main's call."""
    g = Generated(onnx.load(path), name, tmp_path)
    x = random_inputs(path, _sizes(path, sizes), 3)
    dims = [str(sizes[d]) for d in Interface(path).symbols]
    e = ort_run(g.path, x)
    return g, x, e, g.call_c(dims, x, e)


@pytest.mark.skipif(not CXX, reason="no C++ compiler (g++ or clang++) installed")
@pytest.mark.parametrize("cxx", CXX)
@pytest.mark.parametrize("path,sizes", MODELS, ids=IDS)
def test_compiles_and_runs_as_cxx(path, sizes, cxx, tmp_path):
    """The .c compiled as C++11, C++14 and C++17 with the strict warnings, main in C++."""
    g, x, e, call = _one_model(path, sizes, "model", tmp_path)
    for std in ("c++11", "c++14", "c++17"):
        exe = _cxx_program(tmp_path, cxx, std, [g], [call], [cxx, "-x", "c++", f"-std={std}"])
        lines, raw = run_program(exe, tmp_path, x)
        assert lines[0].split()[:2] == ["model", "0"], lines
        assert_close(split(raw, e), e, f"{os.path.basename(path)} as {std} with {cxx}")


@pytest.mark.skipif(not CXX or not CC, reason="needs a C and a C++ compiler")
def test_two_models_in_one_cxx_program(tmp_path):
    """Two models with different names: one compiled as C, one as C++11, both called from a
    C++ main, each matching onnxruntime."""
    (p1, s1), (p2, s2) = MODELS[0], MODELS[7]
    g1, x1, e1, call1 = _one_model(p1, s1, "lstm_net", tmp_path)
    g2, x2, e2, call2 = _one_model(p2, s2, "resnet", tmp_path)
    main = tmp_path / "main.cpp"
    main.write_text(main_source([g1, g2], [call1, call2]))
    bounds = _bounds("lstm_net", "resnet")
    for src in g1.sources:
        _compile([CC[0], "-std=c99", "-pedantic", *STRICT, *bounds, "-O2", "-c", src, "-o", src + ".o"])
    for src in g2.sources:
        _compile([CXX[0], "-x", "c++", "-std=c++11", *STRICT, *bounds, "-O2", "-c", src, "-o", src + ".o"])
    objs = [src + ".o" for src in g1.sources + g2.sources] + [str(tmp_path / "main.o")]
    _compile([CXX[0], "-std=c++11", *bounds, "-Wall", "-Wextra", "-Werror", "-I", str(tmp_path), "-c", str(main),
              "-o", objs[-1]])
    exe = str(tmp_path / "prog")
    _compile([CXX[0], *objs, "-o", exe, "-lm"])
    lines, raw = run_program(exe, tmp_path, x1 + x2)
    assert [line.split()[:2] for line in lines] == [["lstm_net", "0"], ["resnet", "0"]], lines
    got = split(raw, e1 + e2)
    assert_close(got[:len(e1)], e1, "lstm_net")
    assert_close(got[len(e1):], e2, "resnet")


@pytest.mark.skipif(not CC, reason="no C compiler (gcc or clang) installed")
@pytest.mark.parametrize("cc", CC)
@pytest.mark.parametrize("path,sizes", MODELS, ids=IDS)
def test_mcu_warning_set(path, sizes, cc, tmp_path):
    g = Generated(onnx.load(path), "model", tmp_path)
    for src in g.sources:
        _compile([cc, "-std=c99", "-pedantic", *STRICT, "-O2", "-c", src, "-o", src + ".o"])


def layer_norm_model(shape, opset=13):
    """A layer norm over the last axis as tf2onnx and torch write it out (ReduceMean, Sub, Pow,
    ReduceMean, Add, Sqrt, Div, Mul, Add), a ReduceSumSquare beside it and, at opset 17, the
    LayerNormalization op; x of `shape`. A row of 256 is a whole number of the reductions' groups
    of eight lanes, 260 leaves a tail of four."""
    f, rows = shape[-1], list(shape[:-1])
    rng = np.random.default_rng(f)
    axes = dict(axes=[-1]) if opset < 18 else {}
    nodes = [helper.make_node("ReduceMean", ["x"], ["mean"], **axes), helper.make_node("Sub", ["x", "mean"], ["d"]),
             helper.make_node("Pow", ["d", "two"], ["d2"]), helper.make_node("ReduceMean", ["d2"], ["var"], **axes),
             helper.make_node("Add", ["var", "eps"], ["ve"]), helper.make_node("Sqrt", ["ve"], ["sd"]),
             helper.make_node("Div", ["d", "sd"], ["n"]), helper.make_node("Mul", ["n", "gamma"], ["g"]),
             helper.make_node("Add", ["g", "beta"], ["y"]),
             helper.make_node("ReduceSumSquare", ["x"], ["ss"], **axes)]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape),
               helper.make_tensor_value_info("ss", TensorProto.FLOAT, rows + [1])]
    if opset >= 17:
        nodes.append(helper.make_node("LayerNormalization", ["x", "gamma", "beta"], ["ln"], epsilon=1e-3))
        outputs.append(helper.make_tensor_value_info("ln", TensorProto.FLOAT, shape))
    inits = [numpy_helper.from_array(np.array(2, np.float32), "two"),
             numpy_helper.from_array(np.array(1e-3, np.float32), "eps"),
             numpy_helper.from_array(rng.uniform(0.5, 1.5, f).astype(np.float32), "gamma"),
             numpy_helper.from_array(rng.uniform(-0.5, 0.5, f).astype(np.float32), "beta")]
    graph = helper.make_graph(nodes, "layer_norm", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              outputs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


KERAS = os.path.join(HERE, "keras")
# (id, model file or ModelProto, compile_model options): the committed real models as
# test_real_models.py compiles them, the Keras exports (batch fixed to 1: every size of the layer
# norm's [1][256] rows known at compile time, which gcc 12 -O2 warned on, issue 17) and the
# layer-norm reductions with static and symbolic rows, with and without a tail
WARNING_MODELS = (
    [(e["file"][:-5], os.path.join(REAL, e["file"]), compile_options(e, os.path.join(REAL, e["file"])))
     for e in ENTRIES if e["committed"]]
    + [("keras_lstm_ln_last_b1", os.path.join(KERAS, "keras_lstm_ln_last.onnx"),
        {"fixed_dims": {"time": 5, "batch": 1}}),
       ("keras_lstm_ln_last", os.path.join(KERAS, "keras_lstm_ln_last.onnx"), {"fixed_dims": {"time": 5}}),
       ("keras_lstm_ln_seq_b1", os.path.join(KERAS, "keras_lstm_ln_seq.onnx"), {"fixed_dims": {"batch": 1}}),
       ("keras_lstm_ln_seq", os.path.join(KERAS, "keras_lstm_ln_seq.onnx"), {}),
       ("layer_norm_1x256", layer_norm_model([1, 256]), {}),
       ("layer_norm_2x3x256_op17", layer_norm_model([2, 3, 256], 17), {}),
       ("layer_norm_1x260_op17", layer_norm_model([1, 260], 17), {}),
       ("layer_norm_batch_seq_256_op17", layer_norm_model(["batch", "seq", 256], 17), {})])
_GENERATED = {}  # id -> the generated .c files: one generation per model for every compiler and flag


def _generated(key, model, options, tmp_path_factory):
    if key not in _GENERATED:
        folder = tmp_path_factory.mktemp(key)
        path = model if isinstance(model, str) else os.path.join(str(folder), "model.onnx")
        if not isinstance(model, str):
            onnx.save(model, path)
        written = compile_model(path, Options("c", name="model", **options), str(folder / "c"))
        _GENERATED[key] = sorted(p for f, p in written.items() if f.endswith(".c"))
    return _GENERATED[key]


@pytest.mark.skipif(not CC, reason="no C compiler (gcc or clang) installed")
@pytest.mark.parametrize("cc", CC)
@pytest.mark.parametrize("key,model,options", WARNING_MODELS, ids=[m[0] for m in WARNING_MODELS])
def test_warning_free_at_every_level(key, model, options, cc, tmp_path_factory):
    """No warning from gcc at -O2, -O3 and -Os, nor clang at -O2 (its warnings don't come from
    the optimizer's loop analyses; -O3 and -Os would double this test's time): -std=c99 -Wall -Wextra -pedantic -Werror,
    built as a default build is: on x86-64 that is the dispatching one, whose per-level variants
    inline everything, so the loop analyses see the sizes known at compile time (gcc 12 warned
    -Waggressive-loop-optimizations on a reduction's dead scalar tail). Objects only (-c); the
    weights file, data alone, once."""
    for src in _generated(key, model, options, tmp_path_factory):
        levels = ("-O2",) if src.endswith("_weights.c") or "clang" in cc else ("-O2", "-O3", "-Os")
        for level in levels:
            _compile([cc, "-std=c99", "-Wall", "-Wextra", "-pedantic", "-Werror", level, "-c", src,
                      "-o", f"{src}{level}.o"])


@pytest.mark.skipif(not shutil.which(M4[0]), reason="arm-none-eabi-gcc is not installed")
@pytest.mark.parametrize("path,sizes", MODELS, ids=IDS)
def test_cortex_m4_calls_no_software_helpers(path, sizes, tmp_path):
    """Compiled for a Cortex-M4F (single-precision FPU with fused multiply-add) at -O0, -O2
    -ffreestanding and -O2 -fno-builtin: the object needs no fmaf (newlib's is software double
    precision), no double-precision helper (__aeabi_d*), and memcpy only where the model itself
    copies whole buffers (never for the activations' bit casts)."""
    g = Generated(onnx.load(path), "model", tmp_path)
    for flags in (["-O0"], ["-O2", "-ffreestanding"], ["-O2", "-fno-builtin"]):
        for src in g.sources:
            obj = src + ".o"
            _compile([*M4, "-std=c99", *STRICT, *flags, "-c", src, "-o", obj])
            listed = subprocess.run(["arm-none-eabi-nm", "-u", obj], capture_output=True, text=True,
                                    check=True).stdout.split()
            bad = [s for s in listed if s in ("fmaf", "fma") or s.startswith("__aeabi_d")]
            if "O2S_BUILTIN(memcpy)(" not in open(src).read():  # a bulk copy of the model's
                bad += [s for s in listed if s == "memcpy"]
            assert not bad, f"{os.path.basename(path)} {' '.join(flags)}: calls {bad}"


def _edge_values(dtype):
    """Values a weight can hold: random bit patterns (normal and subnormal), the extremes, the
    signed zeros, the infinities and a NaN."""
    info = np.finfo(dtype)
    uint = np.uint32 if dtype == np.float32 else np.uint64
    rng = np.random.default_rng(5)
    bits = rng.integers(0, np.iinfo(uint).max, 2000, dtype=uint, endpoint=True)
    subnormal = rng.integers(1, int(info.smallest_normal.view(uint)), 300, dtype=uint)
    values = np.concatenate([bits.view(dtype), subnormal.view(dtype), -subnormal.view(dtype),
                             np.array([0.0, -0.0, 1.0, -1.0, 0.1, 1 / 3, 2.0 ** 24, 2.0 ** 24 + 2, 1e16,
                                       9.99e15, 1e-4, 9.99e-5, info.max, -info.max, info.tiny,
                                       info.smallest_subnormal, -info.smallest_subnormal,
                                       np.inf, -np.inf, np.nan], dtype=dtype)])
    return values[~np.isnan(values)], values[np.isnan(values)][:1]


@pytest.mark.parametrize("compiler", [c for c in ("gcc", "clang", "g++", "clang++") if shutil.which(c)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float", "double"])
def test_literals_read_back_bit_for_bit(dtype, compiler, tmp_path):
    """c_initializer's literals, compiled (C99, or C++11 for a C++ compiler) into a static const
    array and printed back as bits, equal the original bits; a NaN stays a NaN."""
    t = next(d for d in DTYPES if d.numpy == np.dtype(dtype))
    values, nan = _edge_values(dtype)
    data = np.concatenate([values, nan])
    uint, fmt = ("uint32_t", "%08x") if dtype == np.float32 else ("uint64_t", "%016llx")
    cast = "" if dtype == np.float32 else "(unsigned long long)"
    src = tmp_path / "lits.c"
    src.write_text(f"""#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
static const {t.c} values[{data.size}] = {{
{c_initializer(data, t)}
}};
int main(void)
{{
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {{
        {uint} u;
        memcpy(&u, &values[i], sizeof u);
        printf("{fmt}\\n", {cast}u);
    }}
    return 0;
}}
""")
    lang = ["-x", "c++", "-std=c++11"] if compiler.endswith("++") else ["-std=c99", "-pedantic"]
    exe = str(tmp_path / "lits")
    _compile([compiler, *lang, *STRICT, str(src), "-o", exe, "-lm"])
    out = subprocess.run([exe], capture_output=True, text=True, check=True).stdout.split()
    width = np.dtype(dtype).itemsize
    got = np.array([int(h, 16) for h in out], dtype=np.uint32 if width == 4 else np.uint64).view(dtype)
    assert got.size == data.size
    assert (got[:values.size].view(np.uint32 if width == 4 else np.uint64) ==
            values.view(np.uint32 if width == 4 else np.uint64)).all()
    assert np.isnan(got[values.size:]).all() and nan.size == 1
