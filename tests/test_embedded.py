"""The generated C on a microcontroller and on a 64-bit ARM, emulated (issue 9): every sample
and a few exports (tests/embedded/cases.py) built with arm-none-eabi-gcc for a bare-metal
Cortex-M4F (-Werror with -Wdouble-promotion -Wshadow, linked with --gc-sections) and run under
qemu-system-arm -M mps2-an386, and built with aarch64-linux-gnu-gcc -static and run under
qemu-aarch64, each compared with onnxruntime. On the M4, the single-precision code must stay
single precision under any flags (that FPU turns each double operation into a slow library
call): the builds with -ffreestanding, -fno-builtin and -Os run at most 1.2x the instructions of
the -O2 build (counted exactly under qemu -icount, see tests/embedded/toolchain.py), and the -O0
image links no double-precision routine. NAME_run_workspace on the program's own static
workspace gives the same outputs on the M4, and the linked image then holds no static arena:
its RAM is NAME_run's less exactly the arena. The streaming models' NAME_init + NAME_step, one
step at a time and in uneven chunks, give onnxruntime's outputs for the whole sequence on both
machines. tests/embedded/report.py prints the figures (sizes, errors, instruction counts)
behind these checks."""
import numpy as np
import pytest

from conftest import assert_close
from embedded import cases, program, toolchain

pytestmark = pytest.mark.emulator

MAX_SLOWDOWN = 1.2


def need(arch):
    missing = toolchain.missing_tools(arch)
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (.ci/run installs the Debian packages "
                    "gcc-arm-none-eabi, libnewlib-arm-none-eabi, gcc-aarch64-linux-gnu, "
                    "libc6-dev-arm64-cross, qemu-user, qemu-system-arm)")


@pytest.fixture(scope="module")
def runner(tmp_path_factory):
    return cases.Runner(str(tmp_path_factory.mktemp("embedded")))


def checked(runner, model, arch, variant="-O2", api="run"):
    """The run of `model`, after checking it succeeded and matches onnxruntime."""
    need(arch)
    run = runner.run(model, arch, variant, api)
    assert run.status == 0, f"{model} ({arch} {variant} {api}): status {run.status}"
    assert run.results, f"{model} ({arch} {variant} {api}): no results"
    for what, outputs in run.results.items():
        assert_close(outputs, runner.case(model).expected, f"{model} ({arch} {variant} {what})")
    return run


@pytest.mark.parametrize("model", cases.MODELS)
def test_cortex_m4(runner, model):
    checked(runner, model, "m4")


@pytest.mark.parametrize("model", cases.MODELS)
def test_aarch64(runner, model):
    checked(runner, model, "aarch64")


@pytest.mark.parametrize("arch", ["m4", "aarch64"])
@pytest.mark.parametrize("model", cases.INT8)
def test_int8_weights(runner, model, arch):
    """The int8 matrix kernel: one partial sum per column on the M4, four with NEON."""
    checked(runner, model, arch)


@pytest.mark.parametrize("variant", ["-Os", "-ffreestanding", "-fno-builtin"])
@pytest.mark.parametrize("model", cases.SAMPLES)
def test_instructions_within_1_2x_of_O2(runner, model, variant):
    base = checked(runner, model, "m4").instructions
    count = checked(runner, model, "m4", variant).instructions
    assert count <= MAX_SLOWDOWN * base, (
        f"{model}: {variant} runs {count} instructions, {count / base:.2f}x the {base} of -O2; "
        f"double-precision routines linked: {runner.run(model, 'm4', variant).program.double_helpers()}")


@pytest.mark.parametrize("model", cases.MODELS)
def test_O0_links_no_double_precision_code(runner, model):
    run = checked(runner, model, "m4", "-O0")
    assert run.program.double_helpers() == []


def arenas(run, name):
    """{symbol: bytes} of the model's static arenas in a run's image."""
    return {n: size for n, (_, size) in run.program.symbols().items() if n.startswith(f"{name}_arena")}


@pytest.mark.parametrize("model", cases.MODELS)
def test_workspace_api_drops_the_static_arena(runner, model):
    name = runner.case(model).name
    whole = checked(runner, model, "m4")
    own = checked(runner, model, "m4", api="workspace")
    arena = arenas(whole, name)
    assert arena and arenas(own, name) == {}, (arena, arenas(own, name))
    assert own.program.ram() == whole.program.ram() - sum(arena.values())


@pytest.mark.parametrize("arch", ["m4", "aarch64"])
@pytest.mark.parametrize("model", cases.STREAMING)
def test_step_api_in_chunks(runner, model, arch):
    """One step at a time and in uneven chunks, from NAME_init, as onnxruntime on the whole."""
    case = runner.case(model)
    run = checked(runner, model, arch, api="step")
    assert len(run.results) == len(cases.splits(case.sizes[case.plan.time])), run.results.keys()
    if arch == "m4":
        assert arenas(run, case.name) == {}


# A stand-in model for checking the measurements themselves: `n` turns of a two-instruction
# loop, then y = fmaf(x0, x1, x2).
PROBE = {"probe.h": "#include <stdint.h>\nint probe_run(int64_t n, const float *x, float *y);\n",
         "probe.c": """#include <math.h>
#include "probe.h"

int probe_run(int64_t n, const float *x, float *y)
{
    uint32_t k = (uint32_t)n;
    __asm__ volatile("1: subs %0, %0, #1\\n\\tbne 1b" : "+r"(k));
    y[0] = fmaf(x[0], x[1], x[2]);
    return 0;
}
"""}


def probe(tmp_path, n, variant):
    x = np.array([1.5, 2.0, 0.25], np.float32)
    main = program.main_c("probe", [program.Call("probe_run", [n], [x], [(np.dtype(np.float32), (1,))])])
    build = toolchain.Program(PROBE, main, str(tmp_path / f"{n}{variant}"), "m4", variant)
    code, text = build.run()
    status, ticks, outputs = program.parse(text, [(np.dtype(np.float32), (1,))])
    assert code == status == 0 and outputs[0][0] == np.float32(3.25), text
    return build, build.instructions(ticks)


def test_instruction_counter_is_exact(tmp_path):
    need("m4")
    _, fewer = probe(tmp_path, 1000, "-O2")
    _, more = probe(tmp_path, 3000, "-O2")
    assert abs((more - fewer) - 2 * 2000) <= 1, (fewer, more)


def test_double_check_sees_newlib_fmaf(tmp_path):
    """Without the builtin, fmaf is newlib's, which works in double: the check must see it."""
    need("m4")
    build, _ = probe(tmp_path, 1, "-fno-builtin")
    assert {"fmaf", "__aeabi_dmul", "__aeabi_f2d"} <= set(build.double_helpers())
