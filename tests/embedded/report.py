"""Print the embedded figures of every model in tests/embedded/cases.py, one row each: the
model's own flash (text + rodata) in the -O2 Cortex-M4 build; the static RAM of the linked image
(but the test program's own buffers) when it calls NAME_run and when it calls only
NAME_run_workspace, and the workspace that takes instead; the largest absolute error against
onnxruntime under qemu-system-arm and qemu-aarch64 of NAME_run and, for the models that stream,
of NAME_init + NAME_step in chunks; the instructions NAME_run executes on the M4 for each build
variant, and which variants link double-precision routines. tests/test_embedded.py checks the
same runs.

    python tests/embedded/report.py"""
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from conftest import max_error  # noqa: E402
from embedded import cases, toolchain  # noqa: E402


def attempt(runner, model, arch, variant="-O2", api="run"):
    """The run, or None (with the reason on stderr) when it does not build or run through."""
    try:
        run = runner.run(model, arch, variant, api)
    except (toolchain.BuildError, RuntimeError, ValueError, subprocess.TimeoutExpired) as error:
        print(f"report: {model} ({arch} {variant} {api}): {error}", file=sys.stderr)
        return None
    if run.status != 0:
        print(f"report: {model} ({arch} {variant} {api}): status {run.status}", file=sys.stderr)
        return None
    return run


def row(runner, model):
    case = runner.case(model)
    error = lambda run: (f"{max(max_error(outputs, case.expected) for outputs in run.results.values()):.1e}"
                         if run else "fails")
    m4 = {v: attempt(runner, model, "m4", v) for v in toolchain.VARIANTS}
    base, workspace = m4["-O2"], attempt(runner, model, "m4", api="workspace")
    steps = ([error(attempt(runner, model, arch, api="step")) for arch in ("m4", "aarch64")]
             if model in cases.STREAMING else ["-", "-"])
    count = lambda v, run: ("fails" if run is None else str(run.instructions) if v == "-O2" or base is None
                            else f"{run.instructions} ({run.instructions / base.instructions:.2f}x)")
    doubles = [v for v, run in m4.items() if run and run.program.double_helpers()]
    memory = ([str(base.program.sizes()[0]), str(base.program.ram())] if base else ["-", "-"]) + (
        [str(workspace.program.ram()), str(case.workspace)] if workspace else ["-", "-"])
    return [case.name, *memory, error(base), error(attempt(runner, model, "aarch64")), *steps,
            *(count(v, run) for v, run in m4.items()), " ".join(doubles) or "none"]


def main():
    missing = toolchain.missing_tools("m4") + toolchain.missing_tools("aarch64")
    if missing:
        sys.exit(f"report: {', '.join(missing)} not installed")
    header = ["model", "flash B", "RAM run", "RAM ws", "ws B", "err M4", "err aarch64",
              "step err M4", "step err aarch64",
              *(f"insns {v}" for v in toolchain.VARIANTS), "double code in"]
    with tempfile.TemporaryDirectory() as workdir:
        runner = cases.Runner(workdir)
        rows = [header] + [row(runner, m) for m in cases.MODELS]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for r in rows:
        print("  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(r, widths))))
    print(f"\nflash: arm-none-eabi-size -A of the model's objects (-O2); RAM run / RAM ws: bytes of "
          f"static data (nm -S) in the -O2 image linked with --gc-sections, but the program's own "
          f"buffers, calling NAME_run / only NAME_run_workspace; ws B: NAME_workspace_size, the "
          f"program's static workspace; errors: max |output - onnxruntime| (step: NAME_init + "
          f"NAME_step, chunks of 1 step and uneven chunks, joined); insns: instructions in one "
          f"NAME_run on the Cortex-M4 (qemu -icount shift={toolchain.ICOUNT_SHIFT}), with the "
          f"ratio to -O2; sizes: {cases.SIZES}")


if __name__ == "__main__":
    main()
