"""Names from an untrusted model are data, never code (DESIGN.md, convention 9).

Hypothesis draws small models (Add → Tanh; an LSTM or GRU with a Slice head; two inputs whose
names differ only after sanitizing, multiplied) whose every string — tensor names of inputs,
outputs, intermediates and initializers, node names, the graph name, symbolic dim names and
doc_strings — comes from a hostile set: quotes, backslashes, control characters, NUL, comment
and string delimiters of both targets, trigraphs, preprocessor lines, Unicode (RTL override,
combining marks, emoji, CJK), 10,000-character names, names that collide once sanitized or
truncated, keywords, C library and Python builtin names, and the names the generated code uses
for its own locals, helpers and macros. Some names are injection payloads that would create a
canary file if the NumPy module or the C ever ran them.

For each model both targets must generate, build (C: the suite's -std=c99 -Wall -Wextra
-pedantic -Werror; NumPy: import), run and match onnxruntime at two sizes of every symbolic dim,
under exactly the module name asked for, and the canary must not exist afterwards.

A second, plain test checks that `name=` is used verbatim when it is a valid, unreserved
identifier and refused with CompileError otherwise (never silently changed).

Reference: onnx 1.23's checker and onnxruntime 1.32 accept every name drawn here, NUL
included (protobuf strings may hold it), so onnxruntime is the reference throughout;
`reference()` falls back to onnx.reference only if a future onnxruntime refuses a model.
"""
import os

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from onnx import TensorProto as TP
from onnx import helper, numpy_helper

from conftest import wide_bounds
from onnx2src import CompileError, Options, generate
from onnx2src import harness
from onnx2src.harness import CModel, Interface, load_numpy

from conftest import wide_bounds, assert_close, save

OPSET = 17
HIDDEN = 4
CANARY = "@CANARY@"  # replaced, in every string of a drawn model, by a path under the test's tmp dir
MODULES = ("net", "m")  # fixed valid module names; "m" is also drawn as a tensor and dim name

# -- hostile names ------------------------------------------------------------------------------

# Would run code (and create the canary) if pasted into a Python string literal, docstring or
# comment line, or into a C comment, string literal or function body.
PYTHON_PAYLOADS = [
    # closes INPUTS' ("name", np.dtype(...), spec) tuple early and calls os.system at import
    f'x", np.dtype("float32"), (2,)), (__import__("os").system("echo PWNED > {CANARY}"), 1, 1), ("y',
    f'x", 1)); open(r"{CANARY}", "w"); (("',
    f"x', 1)); open(r'{CANARY}', 'w'); (('",
    f'"""; open(r"{CANARY}", "w"); """',
    f'"""\nopen(r"{CANARY}", "w")\n"""',
    f"'''\nopen(r'{CANARY}', 'w')\n'''",
    f'\nimport os; os.system("touch {CANARY}")\n#',
    f'\r__import__("os").system("touch {CANARY}")\r#',
    f'\\\nopen(r"{CANARY}", "w")  #',
    f'{{open(r"{CANARY}", "w")}}',                    # if a name ever reached an f-string
    f'{{{{ cycler.__init__.__globals__.os.system("touch {CANARY}") }}}}',  # ... or a Jinja template
    'x\\', '\\', '\\"', "\\'", '"', "'", '"""', "'''",
]
C_PAYLOADS = [
    "*/ int canary; /*",
    f'*/ {{ extern int system(const char *); system("touch {CANARY}"); }} /*',
    f'"); {{ extern int system(const char *); system("touch {CANARY}"); }} ("',
    "\n#define float int\n", "#include <stdio.h>", "\n#include <stdio.h>\n", "#define restrict",
    "// \\", "//\\\n*/ int x; /*", "??/", "??/\n*/ int x; /*", "??=define x", "??'??!??-??(??)??<??>",
    "/*", "*/", "//", "/**/", "*//*", "{", "}", ";", "}; int canary; {",
]
KEYWORDS = ["int", "for", "return", "class", "def", "lambda", "None", "import", "float", "double",
            "const", "static", "restrict", "if", "while", "void", "True", "self", "await"]
BUILTINS = ["main", "exp", "expf", "tanhf", "memcpy", "size_t", "int64_t", "NULL", "INFINITY",
            "NAN", "len", "range", "min", "max", "print", "np", "numpy", "zip", "map", "list",
            "tuple", "isinstance", "ValueError", "abs", "sum", "slice", "str", "dict", "__import__",
            "__name__", "__builtins__", "fmaf", "fminf", "fmaxf", "log1pf", "sinf", "memmove",
            "float_t", "double_t", "intptr_t", "uint64_t", "INT64_MAX", "INT64_C", "SIZE_MAX",
            "HUGE_VALF", "FP_NAN", "offsetof", "errno", "stdin"]
LOCALS = ["i", "j", "k", "l", "p", "q", "b", "t", "n", "x", "y", "h", "c", "r", "a0", "s0", "i0",
          "x0", "j0", "gates", "bias", "panel", "width", "ldy", "run", "inputs", "INPUTS", "_check",
          "sizes", "arrays", "_sigmoid", "_trunc_div", "o2s", "o2s_gemm_float", "o2s_pack_float",
          "o2s_expf", "o2s_tanhf", "o2s_sigmoidf", "o2s_vm_sel", "O2S_RESTRICT", "O2S_MADD_float",
          "model_run", "MODEL_OK", "m", "m_run", "M_OK", "M_EDIM", "M_MAX2", "M_ALIGN",
          "M_ARENA_FLOAT", "M_OFF_FLOAT_0", "M_SIZE_FLOAT_0", "M_MAX_T", "m_arena_float",
          "ONNX2SRC_M_H", "net", "net_run", "NET_OK", "NET_MAX2", "NET_ARENA_FLOAT",
          "net_arena_float", "NET_MAX_B", "ONNX2SRC_NET_H", "v", "v_2", "x_2", "X"]
UNICODE = ["\u202e", "x\u202ey", "e\u0301", "\u0301", "😀", "中文", "é", "\u200b", "\ufeff", "Ω"]
WHOLE = PYTHON_PAYLOADS + C_PAYLOADS + KEYWORDS + BUILTINS + LOCALS + UNICODE + [
    "a-b", "a.b", "a b", "a_b", "a__b", "_a_b", "a_b_", "1", "1abc", " ", "\t", "\x00", "x\x00y",
    "\r\n", "$x", "%s", "%(x)s", "{0}", "`", "-", "_", "__"]
FRAGMENTS = ["'", '"', "\\", "\n", "\r", "\t", "\x00", "*/", "/*", "//", "'''", '"""', "??/", "??=",
             "??'", "??(", "#define", "#include", "{", "}", ";", "$", "%", "-", ".", " ", "_", "a",
             "b", "1", "{{", "}}", "{%", "`", "\u202e", "\u0301", "😀", "中"] + KEYWORDS[:4] + LOCALS[:8]


def long_name(unit, tail):
    """10,000 characters; names made with different tails agree in their first 9,990."""
    return (unit * 10000)[:10000 - len(tail)] + tail


names = st.one_of(
    st.sampled_from(WHOLE),
    st.lists(st.sampled_from(FRAGMENTS + WHOLE[:3]), min_size=1, max_size=6).map("".join),
    st.text(min_size=1, max_size=6),
    st.builds(long_name, st.sampled_from(["x", "*/", '"', "中", "a-b"]),
              st.sampled_from(["", "1", "2", "-", ".", "_"])),
)


def collisions(base):
    """Different names that a sanitizer making identifiers of [A-Za-z0-9_] maps to one."""
    return [f"{base}-b", f"{base}.b", f"{base} b", f"{base}_b", f"{base}__b", f"_{base}_b",
            f"{base}/b", f"{base}\u202eb"]


# -- models -------------------------------------------------------------------------------------

@st.composite
def specs(draw):
    """A model as plain data (so @example can pin one): which kind, and all its strings."""
    kind = draw(st.sampled_from(["add_tanh", "recurrent", "collide"]))
    if kind == "collide":
        base = draw(st.sampled_from(["a", "x", "int", "run", "i0", "m_run", "sizes", "中"]))
        tensors = draw(st.permutations(collisions(base)))[:5]
        pool = tensors + draw(st.lists(names, min_size=2, max_size=4))
    else:
        n = 4 if kind == "add_tanh" else 10
        tensors = draw(st.lists(names, min_size=n, max_size=n, unique=True))
        pool = tensors + draw(st.lists(names, max_size=3))
    pick = st.sampled_from(pool)
    dims = draw(st.lists(pick, min_size=2, max_size=2, unique=True))
    return {"kind": kind, "tensors": tensors, "dims": dims,
            "nodes": draw(st.lists(st.just("") | pick, min_size=3, max_size=3)),
            "graph": draw(pick), "docs": draw(st.lists(pick, min_size=3, max_size=3)),
            "cell": draw(st.sampled_from(["LSTM", "GRU"])), "module": draw(st.sampled_from(MODULES))}


def substitute(spec, canary):
    """The spec with the canary placeholder in each of its strings replaced by `canary`."""
    def sub(x):
        if isinstance(x, str):
            return x.replace(CANARY, canary)
        if isinstance(x, list):
            return [sub(y) for y in x]
        return x
    return {k: sub(v) for k, v in spec.items()}


def make_model(spec):
    """(ModelProto, [input sets]): every string of the model comes from the spec."""
    rng = np.random.default_rng(7)
    t, (d1, d2), nn, docs = spec["tensors"], spec["dims"], spec["nodes"], spec["docs"]
    vi = helper.make_tensor_value_info
    init = lambda name, a: numpy_helper.from_array(np.asarray(a), name)
    kind, value_info = spec["kind"], []
    if kind == "add_tanh":
        x, c, a, y = t
        nodes = [helper.make_node("Add", [x, c], [a], name=nn[0], doc_string=docs[0]),
                 helper.make_node("Tanh", [a], [y], name=nn[1], doc_string=docs[1])]
        inputs, outputs = [vi(x, TP.FLOAT, [d1, d2, 3], docs[2])], [vi(y, TP.FLOAT, [d1, d2, 3], docs[0])]
        inits = [init(c, rng.standard_normal(3).astype(np.float32))]
        value_info = [vi(a, TP.FLOAT, [d1, d2, 3], docs[1])]
        sizes = [(2, 3), (3, 1)]
    elif kind == "recurrent":
        x, w, r, b, yfull, y_h, y, starts, ends, axes = t
        gates = 4 if spec["cell"] == "LSTM" else 3
        nodes = [helper.make_node(spec["cell"], [x, w, r, b], [yfull, y_h], hidden_size=HIDDEN,
                                  name=nn[0], doc_string=docs[0]),
                 helper.make_node("Slice", [yfull, starts, ends, axes], [y], name=nn[1],
                                  doc_string=docs[1])]
        inputs = [vi(x, TP.FLOAT, [d1, d2, 3], docs[2])]
        outputs = [vi(y, TP.FLOAT, [d1, 1, d2, 2], docs[0]), vi(y_h, TP.FLOAT, [1, d2, HIDDEN], docs[1])]
        weight = lambda *shape: (0.5 * rng.standard_normal(shape)).astype(np.float32)
        inits = [init(w, weight(1, gates * HIDDEN, 3)), init(r, weight(1, gates * HIDDEN, HIDDEN)),
                 init(b, weight(1, 2 * gates * HIDDEN)), init(starts, np.array([1], np.int64)),
                 init(ends, np.array([3], np.int64)), init(axes, np.array([3], np.int64))]
        sizes = [(3, 2), (1, 4)]  # (seq, batch)
    else:  # two inputs and more tensors whose names agree once sanitized
        p, q, prod, c, out = t
        nodes = [helper.make_node("Mul", [p, q], [prod], name=nn[0], doc_string=docs[0]),
                 helper.make_node("Add", [prod, c], [out], name=nn[1], doc_string=docs[1])]
        inputs = [vi(p, TP.FLOAT, [d1, d2], docs[2]), vi(q, TP.FLOAT, [d1, d2], docs[0])]
        outputs = [vi(out, TP.FLOAT, [d1, d2], docs[1]), vi(prod, TP.FLOAT, [d1, d2], docs[2])]
        inits = [init(c, rng.standard_normal(1).astype(np.float32))]
        sizes = [(2, 3), (4, 1)]
    for tensor, doc in zip(inits, docs * 4):
        tensor.doc_string = doc
    graph = helper.make_graph(nodes, spec["graph"], inputs, outputs, inits, doc_string=docs[2],
                              value_info=value_info)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              doc_string=docs[1], producer_name=docs[0])
    model.ir_version = 8
    helper.set_model_props(model, {docs[0]: docs[1]})
    onnx.checker.check_model(model)  # accepts all of these names (NUL too) in onnx 1.23
    sets = [[rng.standard_normal((s1, s2, 3) if kind != "collide" else (s1, s2)).astype(np.float32)
             for _ in inputs] for s1, s2 in sizes]
    return model, sets


# -- running both targets -----------------------------------------------------------------------

def reference(path):
    """inputs → outputs through onnxruntime (one thread); onnx.reference only if onnxruntime
    refuses the model, which no drawn name makes it do today."""
    try:
        return harness.reference(path)[1]
    except Exception:  # onnxruntime's errors have no common base class
        return harness.reference(path, use_ort=False)[1]


def build(path, target, module, workdir):
    """Generate under `module` (exactly that name), then compile or import; a callable."""
    files = generate(path, Options(target, name=module, max_dims=wide_bounds(path)))
    os.makedirs(workdir, exist_ok=True)
    if target == "numpy":
        assert set(files) == {f"{module}.py"}, f"asked for module {module!r}, got files {sorted(files)}"
        mod = load_numpy(files[f"{module}.py"], module, str(workdir))
        return lambda *xs: list(mod.run(*xs))
    assert {f"{module}.h", f"{module}.c"} <= set(files), f"asked for {module!r}, got files {sorted(files)}"
    assert f"int {module}_run(" in files[f"{module}.h"], f"{module}.h does not declare {module}_run"
    return CModel(files, module, Interface(path), str(workdir))  # -Werror; loads {module}_run


def check(spec, target, workdir):
    canary = workdir / "CANARY"
    spec = substitute(spec, str(canary))
    model, input_sets = make_model(spec)
    path = save(model, workdir, "fuzz")
    try:
        run = build(path, target, spec["module"], workdir / target)
        expected_of = reference(path)
        for inputs in input_sets:
            assert_close(run(*inputs), expected_of(inputs), f"{target} at input shapes "
                         f"{[x.shape for x in inputs]}")
    finally:  # also when something above failed: a payload that ran is the worse bug
        assert not canary.exists(), f"a name from the model ran as code: {canary} was created"


PINNED = {
    "python_injection_input_name": {
        "kind": "add_tanh", "tensors": [PYTHON_PAYLOADS[0], "c", "a", "y"], "dims": ["batch", "seq"],
        "nodes": ["", "", ""], "graph": "g", "docs": ["", "", ""], "cell": "LSTM", "module": "net"},
    "dim_named_t": {
        "kind": "recurrent", "tensors": ["X", "W", "R", "B", "Y_all", "Y_h", "Y", "starts", "ends", "axes"],
        "dims": ["t", "b"], "nodes": ["", "", ""], "graph": "g", "docs": ["", "", ""], "cell": "LSTM",
        "module": "net"},
    "input_named_like_module": {
        "kind": "add_tanh", "tensors": ["m", "c", "a", "y"], "dims": ["batch", "seq"],
        "nodes": ["", "", ""], "graph": "g", "docs": ["", "", ""], "cell": "LSTM", "module": "m"},
    # the rest run only in the plain test below
    "all_payloads_as_strings": {
        "kind": "add_tanh", "tensors": PYTHON_PAYLOADS[1:5], "dims": [PYTHON_PAYLOADS[6], C_PAYLOADS[1]],
        "nodes": [C_PAYLOADS[1], PYTHON_PAYLOADS[6], "??/"], "graph": C_PAYLOADS[0],
        "docs": [PYTHON_PAYLOADS[4], C_PAYLOADS[2], "\x00"], "cell": "LSTM", "module": "net"},
    "gru_locals_and_helpers": {
        "kind": "recurrent", "tensors": ["x", "gates", "bias", "h", "i0", "o2s_gemm_float", "net_run",
                                         "O2S_RESTRICT", "_check", "INPUTS"],
        "dims": ["sizes", "i"], "nodes": ["o2s_expf", "", ""], "graph": "NET_OK",
        "docs": ["*/", "'''", '"""'], "cell": "GRU", "module": "net"},
    "builtins_as_weights": {
        "kind": "add_tanh", "tensors": ["len", "zip", "isinstance", "float_t"], "dims": ["INT64_MAX", "n"],
        "nodes": ["main", "int", ""], "graph": "import", "docs": ["", "", ""], "cell": "LSTM",
        "module": "net"},
    "sanitized_collisions": {
        "kind": "collide", "tensors": collisions("a")[:5], "dims": ["a-b", "a_b"],
        "nodes": ["a.b", "a b", ""], "graph": "a-b", "docs": ["", "", ""], "cell": "LSTM", "module": "net"},
    "long_names_agreeing_for_9990_chars": {
        "kind": "add_tanh", "tensors": [long_name("x", t) for t in ("1", "2", "-", ".")],
        "dims": [long_name("*/", "1"), long_name("*/", "2")], "nodes": [long_name("中", ""), "", ""],
        "graph": long_name('"', ""), "docs": [long_name("\\", ""), "", ""], "cell": "LSTM", "module": "net"},
    "unicode_and_nul": {
        "kind": "collide", "tensors": ["x\x00y", "x\x00z", "\u202ex", "e\u0301", "😀中"], "dims": ["\x00", "中"],
        "nodes": ["\u202e", "\x00", ""], "graph": "\r\n", "docs": ["\ufeff", "", ""], "cell": "LSTM",
        "module": "net"},
}
FUZZ_EXAMPLES = ["python_injection_input_name", "dim_named_t", "input_named_like_module"]


def fuzz_test(f):
    for key in FUZZ_EXAMPLES:
        f = example(spec=PINNED[key])(f)
    return f


@pytest.mark.parametrize("tgt", ["numpy", "c"])
@settings(max_examples=100, deadline=None, derandomize=True, print_blob=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.large_base_example, HealthCheck.filter_too_much])
@given(spec=specs())
@fuzz_test
def test_model_strings_are_data(tgt, spec, tmp_path_factory):
    check(spec, tgt, tmp_path_factory.mktemp("names"))


@pytest.mark.parametrize("key", list(PINNED))
def test_pinned_payloads(target, key, tmp_path):
    check(PINNED[key], target, tmp_path)


# -- the module name ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    spec = dict(PINNED["python_injection_input_name"], tensors=["X", "c", "a", "Y"])
    return save(make_model(spec)[0], tmp_path_factory.mktemp("small"), "small")


@pytest.mark.parametrize("name", ["net", "m", "model", "Model2", "my_rnn"])
def test_module_name_is_used_verbatim(target, name, small_model, tmp_path):
    files = generate(small_model, Options(target, name=name))
    if target == "numpy":
        assert set(files) == {f"{name}.py"}
        module = load_numpy(files[f"{name}.py"], name, str(tmp_path))
        assert callable(module.run)
        return
    assert {f"{name}.h", f"{name}.c"} <= set(files) and all(f.startswith(name + ".") or
                                                            f.startswith(name + "_") for f in files)
    assert f"int {name}_run(" in files[f"{name}.h"]
    CModel(files, name, Interface(small_model), str(tmp_path))  # has the symbol {name}_run


# Refused by both targets (`class` is a C++ keyword and the header is C++-ready), then names
# that only one target reserves: `int` is a C keyword but a valid Python module name.
REFUSED = ([(t, n) for t in ("numpy", "c") for n in
            ("for", "class", "1abc", "a-b", "", "_x", "x y", "o2s", "o2s_x", "../x", "a/b", "x.y")]
           + [("numpy", n) for n in ("None", "lambda", "def", "import", "numpy")]
           + [("c", n) for n in ("int", "double", "static", "restrict", "string", "memo", "a__b")])


@pytest.mark.parametrize("tgt, name", REFUSED)
def test_hostile_or_reserved_module_name_is_refused(tgt, name, small_model):
    with pytest.raises(CompileError):
        generate(small_model, Options(tgt, name=name))
