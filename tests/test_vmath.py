"""Tests of templates/c/vmath.c, the float32 activation kernels pasted into
generated C code: paste-safety, warning-free C99/C++ compilation, accuracy
against double-precision references (tests/c/vmath_check.c) and
auto-vectorization of the loops that use them."""

import platform
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VMATH = ROOT / "templates" / "c" / "vmath.c"
CHECK = ROOT / "tests" / "c" / "vmath_check.c"

# Every STRIDE-th float bit pattern (about 4.3 million inputs, under a second
# per build).  The exhaustive check is `vmath_check 1`.
STRIDE = 997

GCC = shutil.which("gcc")
CLANG = shutil.which("clang")
IS_X86_64 = platform.machine().lower() in ("x86_64", "amd64")

HEADERS = "#include <math.h>\n#include <stdint.h>\n#include <stddef.h>\n#include <string.h>\n"

FUNCS = ["o2s_expf", "o2s_sigmoidf", "o2s_tanhf", "o2s_fast_sigmoidf", "o2s_fast_tanhf"]

need_gcc = pytest.mark.skipif(GCC is None, reason="gcc not installed")


def _compiler(name):
    path = GCC if name == "gcc" else CLANG
    if path is None:
        pytest.skip(f"{name} not installed")
    return path


def _run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)


def test_template_is_paste_safe():
    text = VMATH.read_text()
    for seq in ("{#", "{{", "{%"):
        assert seq not in text, f"Jinja delimiter {seq!r} in vmath.c"
    assert not re.search(r"^\s*#\s*include", text, re.M), "vmath.c must not #include"
    # only static inline functions (O2S_VM_INLINE: static inline, always inlined where it can be)
    assert re.search(r"^#define O2S_VM_INLINE .*\bstatic inline$", text, re.M)
    defs = re.findall(r"^([A-Za-z_][^\n;{]*?)\b(o2s_\w+)\s*\(", text, re.M)
    assert defs, "no o2s_ functions found"
    for prefix, name in defs:
        assert prefix.startswith("O2S_VM_INLINE "), f"{name} is not O2S_VM_INLINE (static inline)"
    for name in FUNCS:
        assert any(n == name for _, n in defs), f"{name} missing"


# (compiler, language flags) -- all with warnings as errors
BUILDS = [
    ("gcc", ["-std=c99", "-O2", "-Wall", "-Wextra", "-pedantic", "-Werror",
             "-Wconversion", "-Wshadow", "-Wdouble-promotion", "-Wsign-conversion",
             "-Wstrict-prototypes", "-Wmissing-prototypes", "-Wunused-function"]),
    ("gcc", ["-std=c99", "-O0", "-Wall", "-Wextra", "-pedantic", "-Werror"]),
    ("gcc", ["-x", "c++", "-std=c++11", "-O2", "-Wall", "-Wextra", "-pedantic", "-Werror",
             "-Wconversion", "-Wshadow"]),
    ("clang", ["-std=c99", "-O2", "-Weverything", "-Werror"]),
    ("clang", ["-x", "c++", "-std=c++11", "-O2", "-Wall", "-Wextra", "-pedantic", "-Werror"]),
]


@pytest.mark.parametrize("cc,flags", BUILDS, ids=lambda v: v if isinstance(v, str) else " ".join(v))
def test_compiles_warning_free_without_symbols(tmp_path, cc, flags):
    exe = _compiler(cc)
    if "c++" in flags:
        exe = shutil.which("g++" if cc == "gcc" else "clang++")
        if exe is None:
            pytest.skip(f"C++ driver for {cc} not installed")
    src = tmp_path / "tu.c"
    src.write_text(HEADERS + f'#include "{VMATH}"\n')
    obj = tmp_path / "tu.o"
    r = _run([exe, *flags, "-c", str(src), "-o", str(obj)])
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip() == "", r.stderr
    nm = shutil.which("nm")
    if nm:
        syms = _run([nm, "--defined-only", str(obj)]).stdout.split()
        assert not [s for s in syms if "o2s" in s], f"vmath.c emitted symbols: {syms}"


def _check_builds():
    builds = [
        pytest.param("gcc", ["-O2"], id="gcc-O2"),
        pytest.param("gcc", ["-O3"], id="gcc-O3-vectorized"),
        pytest.param("clang", ["-O2"], id="clang-O2"),
    ]
    if IS_X86_64:
        # AVX2/FMA code path with a*b+c contracted to fused multiply-adds
        builds.append(pytest.param("gcc", ["-O3", "-mavx2", "-mfma", "-ffp-contract=fast"],
                                   id="gcc-O3-avx2-fma"))
    return builds


def _cpu_has(flag):
    try:
        return flag in Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False


@pytest.mark.parametrize("cc,opt", _check_builds())
def test_accuracy(tmp_path, cc, opt):
    exe = _compiler(cc)
    if "-mfma" in opt and not (_cpu_has("avx2") and _cpu_has("fma")):
        pytest.skip("CPU lacks AVX2/FMA")
    out = tmp_path / "vmath_check"
    r = _run([exe, "-std=c99", *opt, "-Wall", "-Wextra", "-pedantic", "-Werror",
              str(CHECK), "-o", str(out), "-lm"])
    assert r.returncode == 0, r.stderr
    r = _run([str(out), str(STRIDE)])
    print(r.stdout)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "vmath_check: PASS" in r.stdout


VEC_SRC = HEADERS + f'#include "{VMATH}"\n' + "".join(
    f"void k_{f}(float *y, const float *x, size_t n)\n"
    f"{{ size_t i; for (i = 0; i < n; ++i) y[i] = {f}(x[i]); }}\n"
    for f in FUNCS
) + "void k_inplace(float *y, int n)\n{ int i; for (i = 0; i < n; ++i) y[i] = o2s_tanhf(y[i]); }\n"


def _loop_lines(src_text):
    lines = {}
    for no, line in enumerate(src_text.splitlines(), 1):
        m = re.match(r"void (k_\w+)\(", line)
        if m:
            lines[m.group(1)] = no + 1  # the loop is on the next line
    return lines


def _vec_flags():
    flags = [pytest.param(["-O3"], id="O3")]
    if IS_X86_64:
        flags.append(pytest.param(["-O3", "-march=x86-64-v2"], id="O3-x86-64-v2"))
        flags.append(pytest.param(["-O3", "-mavx2", "-mfma"], id="O3-avx2-fma"))
    return flags


@need_gcc
@pytest.mark.parametrize("flags", _vec_flags())
def test_gcc_vectorizes(tmp_path, flags):
    src_text = VEC_SRC
    src = tmp_path / "vec.c"
    src.write_text(src_text)
    r = _run([GCC, "-std=c99", *flags, "-fopt-info-vec-optimized", "-c", str(src),
              "-o", str(tmp_path / "vec.o")])
    assert r.returncode == 0, r.stderr
    vectorized = {int(m.group(1)) for m in
                  re.finditer(r"vec\.c:(\d+):\d+: optimized: loop vectorized", r.stderr)}
    missing = [k for k, line in _loop_lines(src_text).items() if line not in vectorized]
    assert not missing, f"not vectorized: {missing}\n{r.stderr}"


@need_gcc
def test_gcc_O2_vectorizes_fixed_size_inplace_loop(tmp_path):
    """gcc >= 12 vectorizes at -O2 with the 'very cheap' cost model: only loops
    that need no epilogue and no runtime alias check, e.g. an in-place loop
    with a constant trip count that is a multiple of 4 (older gcc: -O3)."""
    ver = _run([GCC, "-dumpversion"]).stdout.strip()
    if int(ver.split(".")[0]) < 12:
        pytest.skip(f"gcc {ver} does not vectorize at -O2")
    body = "".join(
        f"void k_{f}(float *y)\n{{ int i; for (i = 0; i < 128; ++i) y[i] = {f}(y[i]); }}\n"
        for f in FUNCS)
    src_text = HEADERS + f'#include "{VMATH}"\n' + body
    src = tmp_path / "vec.c"
    src.write_text(src_text)
    r = _run([GCC, "-std=c99", "-O2", "-fopt-info-vec-optimized", "-c", str(src),
              "-o", str(tmp_path / "vec.o")])
    assert r.returncode == 0, r.stderr
    vectorized = {int(m.group(1)) for m in
                  re.finditer(r"vec\.c:(\d+):\d+: optimized: loop vectorized", r.stderr)}
    missing = [k for k, line in _loop_lines(src_text).items() if line not in vectorized]
    assert not missing, f"not vectorized at -O2: {missing}\n{r.stderr}"


@pytest.mark.skipif(CLANG is None, reason="clang not installed")
def test_clang_vectorizes(tmp_path):
    src_text = VEC_SRC
    src = tmp_path / "vec.c"
    src.write_text(src_text)
    r = _run([CLANG, "-std=c99", "-O2", "-Rpass=loop-vectorize", "-c", str(src),
              "-o", str(tmp_path / "vec.o")])
    assert r.returncode == 0, r.stderr
    vectorized = {int(m.group(1)) for m in
                  re.finditer(r"vec\.c:(\d+):\d+: remark: vectorized loop", r.stderr)}
    missing = [k for k, line in _loop_lines(src_text).items() if line not in vectorized]
    assert not missing, f"not vectorized: {missing}\n{r.stderr}"
