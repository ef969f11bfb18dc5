"""Build generated C into test programs for two emulated machines, run them and measure them:

- "m4": bare-metal Cortex-M4F (MPS2 AN386 board), arm-none-eabi-gcc with newlib's libc/libm,
  startup.S + mps2_an386.ld + mps2.c (semihosting, timer), linked as firmware is (-Wl,--gc-sections
  keeps only what is called), run under qemu-system-arm;
- "aarch64": a static Linux program (aarch64-linux-gnu-gcc, glibc) with host.c, run under
  qemu-aarch64.

Instruction counts (m4 only): qemu runs with `-icount shift=ICOUNT_SHIFT`, which advances the
virtual clock by exactly 2^ICOUNT_SHIFT ns per executed instruction; the program reads the CMSDK
timer (25 MHz, so one tick per TICK_NS ns of virtual time) around its calls. The count is
deterministic and, at shift 6 (1.6 ticks per instruction), exact to an instruction. (Debian's
qemu ships no TCG plugins such as libinsn.so, so this is the way to count there.)"""
import os
import re
import shutil
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))

M4_CPU = ["-mcpu=cortex-m4", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard", "-mthumb"]
WARNINGS = ["-Wall", "-Wextra", "-Wdouble-promotion", "-Wshadow", "-Werror"]
# The builds compared: each variant's optimisation flags (-O2 is the baseline).
VARIANTS = {"-O2": ["-O2"], "-Os": ["-Os"], "-ffreestanding": ["-O2", "-ffreestanding"],
            "-fno-builtin": ["-O2", "-fno-builtin"], "-O0": ["-O0"]}
# -Wl,--gc-sections then drops what the program does not call (NAME_run's static arena when it
# calls only NAME_run_workspace or NAME_step).
M4_SECTIONS = ["-ffunction-sections", "-fdata-sections"]
ICOUNT_SHIFT = 6
TICK_NS = 40  # the MPS2 SYSCLK that clocks the timer: 25 MHz

TOOLS = {"m4": ["arm-none-eabi-gcc", "arm-none-eabi-size", "arm-none-eabi-nm", "qemu-system-arm"],
         "aarch64": ["aarch64-linux-gnu-gcc", "qemu-aarch64"]}
# Debian packages (.ci/run installs them): gcc-arm-none-eabi, libnewlib-arm-none-eabi,
# gcc-aarch64-linux-gnu, libc6-dev-arm64-cross, qemu-system-arm, qemu-user.

# Double-precision code in a Cortex-M4F image, whose FPU is single-precision only: each double
# operation is a call into a software routine. The image is linked, so a routine appears here
# whoever calls it (the model, or a libm float function that works in double):
# - libgcc's soft-double routines (ieee754-df.S, fixdfdi, floatdidf ...), by their ARM EABI
#   names (__aeabi_dadd/dsub/drsub/dmul/ddiv/dneg, the comparisons __aeabi_dcmp*/cdcmp*/cdrcmp*,
#   the conversions __aeabi_d2f/d2iz/d2uiz/d2lz/d2ulz and f2d/i2d/ui2d/l2d/ul2d) and their GCC
#   names (__adddf3 ... __divdf3, __negdf2, __extendsfdf2, __truncdfsf2, __floatsidf ...
#   __floatundidf, __fixdfsi ... __fixunsdfdi, the comparisons __eqdf2 ... __unorddf2,
#   __powidf2, the complex __muldc3/__divdc3);
# - newlib's double <math.h> functions the generated code could reach for by mistake;
# - newlib's fmaf, which computes (double)x * y + z with those routines (sf_fma.c).
DOUBLE_HELPER = re.compile(r"__aeabi_(c?d\w*|\w*2d)|__((add|sub|mul|div)df3|negdf2|extendsfdf2|truncdfsf2"
                           r"|float(un)?[sd]idf|fix(uns)?df[sd]i|(eq|ne|lt|le|gt|ge|cmp|unord)df2|powidf2|(mul|div)dc3)")
DOUBLE_LIBM = {"exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "pow", "sqrt", "cbrt",
               "hypot", "sin", "cos", "tan", "asin", "acos", "atan", "atan2", "sinh", "cosh",
               "tanh", "asinh", "acosh", "atanh", "erf", "erfc", "tgamma", "lgamma", "fma",
               "fmod", "remainder", "floor", "ceil", "trunc", "round", "lround", "llround",
               "rint", "lrint", "nearbyint", "fabs", "fmin", "fmax", "ldexp", "frexp", "modf",
               "copysign", "fmaf"}


def missing_tools(arch: str):
    """The programs `arch` needs that are not on PATH."""
    return [t for t in TOOLS[arch] if shutil.which(t) is None]


def _sizes(path):
    """(flash, RAM) bytes of an object file or image: text + rodata, data + bss."""
    flash = ram = 0
    for line in _run(["arm-none-eabi-size", "-A", path]).splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[1].isdigit():
            section, size = fields[0], int(fields[1])
            if re.match(r"\.(text|rodata)\b", section):
                flash += size
            elif re.match(r"\.(data|bss)\b", section):
                ram += size
    return flash, ram


def _symbols(path):
    """{name: (nm type letter, size in bytes)} of the symbols of an object file or image."""
    table = {}
    for line in _run(["arm-none-eabi-nm", "-S", path]).splitlines():
        fields = line.split()
        if len(fields) >= 3:
            table[fields[-1]] = (fields[-2], int(fields[1], 16) if len(fields) == 4 else 0)
    return table


class BuildError(RuntimeError):
    pass


def _run(cmd, **kw):
    done = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if done.returncode != 0:
        raise BuildError(f"{' '.join(cmd)}\n{done.stderr}")
    return done.stdout


class Program:
    """A generated model (`files`, {file name: text}) and a main.c built for `arch` with the
    flags of `variant` in `workdir`: `elf`, and `objects`, the model's own object files."""

    def __init__(self, files, main_c, workdir, arch, variant):
        self.arch = arch
        os.makedirs(workdir, exist_ok=True)
        for fname, text in {**files, "main.c": main_c}.items():
            with open(os.path.join(workdir, fname), "w") as f:
                f.write(text)
        if arch == "m4":  # each function and object in its own section, unused ones dropped
            cc, flags = "arm-none-eabi-gcc", M4_CPU + WARNINGS + VARIANTS[variant] + M4_SECTIONS
            support = [os.path.join(HERE, "startup.S"), os.path.join(HERE, "mps2.c")]
            link = ["-nostartfiles", "-T", os.path.join(HERE, "mps2_an386.ld"), "-Wl,--gc-sections",
                    "-lm", "-lc", "-lgcc"]
        else:
            cc, flags = "aarch64-linux-gnu-gcc", WARNINGS + VARIANTS[variant]
            support = [os.path.join(HERE, "host.c")]
            link = ["-static", "-lm"]
        model = [os.path.join(workdir, f) for f in sorted(files) if f.endswith(".c")]
        objects = []
        for source in model + [os.path.join(workdir, "main.c")] + support:
            obj = os.path.join(workdir, os.path.basename(source) + ".o")
            _run([cc, *flags, "-I", HERE, "-I", workdir, "-c", source, "-o", obj])
            objects.append(obj)
        self.objects, self.main_object = objects[:len(model)], objects[len(model)]
        self.elf = os.path.join(workdir, "program.elf")
        _run([cc, *flags, *objects, "-o", self.elf, *link])

    def run(self, timeout=120):
        """(exit status, what the program printed) under the emulator."""
        if self.arch == "m4":
            cmd = ["qemu-system-arm", "-M", "mps2-an386", "-nographic", "-monitor", "none",
                   "-serial", "none", "-icount", f"shift={ICOUNT_SHIFT}",
                   "-chardev", "stdio,id=semihosting",
                   "-semihosting-config", "enable=on,target=native,chardev=semihosting",
                   "-kernel", self.elf]
        else:
            cmd = ["qemu-aarch64", self.elf]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
        return done.returncode, done.stdout + done.stderr

    def instructions(self, ticks):
        """The instructions the counter's `ticks` stand for (None where there is no counter)."""
        if self.arch != "m4":
            return None
        return round(ticks * TICK_NS / 2 ** ICOUNT_SHIFT)

    def sizes(self):
        """(flash, RAM) bytes of the model's own objects: text + rodata, data + bss."""
        sizes = [_sizes(obj) for obj in self.objects]
        return sum(f for f, _ in sizes), sum(r for _, r in sizes)

    def ram(self):
        """The bytes of the image's static data (data and bss objects) but main.c's own buffers
        (inputs, outputs, workspace, state): the model's and the runtime's, as linked."""
        own = {name for name, (kind, _) in _symbols(self.main_object).items() if kind in "bBdD"}
        return sum(size for name, (kind, size) in self.symbols().items()
                   if kind in "bBdD" and name not in own)

    def symbols(self):
        """{name: (nm type letter, size in bytes)} of the image's symbols."""
        return _symbols(self.elf)

    def double_helpers(self):
        """The double-precision routines linked into the image (see DOUBLE_HELPER)."""
        names = {name for name, (kind, _) in self.symbols().items() if kind in "TtWw"}
        return sorted(n for n in names if DOUBLE_HELPER.fullmatch(n) or n in DOUBLE_LIBM)
