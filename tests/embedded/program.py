"""The main.c of an embedded test program, and the reading of what it prints.

The program embeds its inputs as C arrays (exact literals: hex floats), makes its calls
(NAME_run once; NAME_run_workspace on a workspace of its own; NAME_init then NAME_step chunk by
chunk) between emb_counter_start() and emb_counter_read() (platform.h), and prints the status,
the counter and every output's bytes in hex, through emb_write only: no printf, so no libc
formatting (and no double arithmetic) is linked into a bare-metal build. main returns the
status. Both targets (Cortex-M4, aarch64) are little-endian, so the bytes read back with the
output's NumPy dtype."""
import re
from dataclasses import dataclass, field

import numpy as np

from onnx2src.ir import BY_NUMPY

BYTES_PER_LINE = 32
WORKSPACE_SHORT = 100  # the status when NAME_workspace_size asks more than main.c's workspace has

OUTPUT_HELPERS = r"""
static void put_u32(uint32_t v)
{
    char text[12];
    int i = (int)sizeof text - 1;
    text[i] = '\0';
    do {
        text[--i] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v != 0u);
    emb_write(text + i);
}

/* "out N\n", then the bytes as hex, BYTES_PER_LINE to a line */
static void put_bytes(uint32_t index, const void *data, uint32_t size)
{
    static const char digits[] = "0123456789abcdef";
    const unsigned char *bytes = (const unsigned char *)data;
    char line[2 * BYTES_PER_LINE + 2];
    uint32_t i = 0u;
    emb_write("out ");
    put_u32(index);
    emb_write("\n");
    while (i < size) {
        int n = 0;
        for (; i < size && n < 2 * BYTES_PER_LINE; ++i) {
            line[n++] = digits[bytes[i] >> 4];
            line[n++] = digits[bytes[i] & 15u];
        }
        line[n++] = '\n';
        line[n] = '\0';
        emb_write(line);
    }
}
""".replace("BYTES_PER_LINE", str(BYTES_PER_LINE))


def c_literal(value, dtype: np.dtype) -> str:
    """The exact C literal of one element."""
    if dtype == np.float32:
        return float(value).hex() + "f"
    if dtype == np.float64:
        return float(value).hex()
    if dtype.itemsize == 8:
        return f"{'U' if dtype.kind == 'u' else ''}INT64_C({int(value)})"
    return str(int(value))


def array(name: str, ctype: str, qualifier: str, values) -> str:
    """A static array definition; at least one element (C has no empty arrays)."""
    items = list(values)
    body = ",\n    ".join(", ".join(items[i:i + 4]) for i in range(0, len(items), 4)) if items else "0"
    return f"static {qualifier}{ctype} {name}[{max(len(items), 1)}] = {{\n    {body}\n}};\n"


@dataclass
class Call:
    """One call of a generated function in main.c: `function`(&state if `state`, workspace if
    `workspace`, dims..., inputs..., outputs...). `dims`: the dim arguments in header order;
    `inputs`: arrays of the inputs' dtypes; `outputs`: (dtype, shape) each."""
    function: str
    dims: list
    inputs: list = field(default_factory=list)
    outputs: list = field(default_factory=list)
    state: bool = False
    workspace: bool = False


def main_c(name: str, calls, workspace: int = 0) -> str:
    """main.c making `calls` (Call each) to model `name` in order, until one returns a nonzero
    status. The calls that take a workspace share a static one of main.c's, of `workspace`
    bytes, and each first checks that NAME_workspace_size at its dims fits in it (else the
    status is WORKSPACE_SHORT; dims out of bounds are left to the call, which answers NAME_EDIM). The calls with `state` share a NAME_state of main.c's. The
    outputs are printed in order, call after call."""
    parts = [f"/* main.c: written by tests/embedded/program.py: call {name} on fixed inputs and\n"
             " * print the status, the instruction counter and the outputs' bytes. */\n"
             "#include <stdint.h>\n\n"
             '#include "platform.h"\n'
             f'#include "{name}.h"\n']
    if any(call.workspace for call in calls):  # double elements: aligned to NAME_WORKSPACE_ALIGN
        parts.append(f"#define WORKSPACE_SHORT {WORKSPACE_SHORT} /* status: the workspace is too small */\n"
                     f"static double workspace[{max(-(-workspace // 8), 1)}]; /* {workspace} bytes */\n")
    if any(call.state for call in calls):
        parts.append(f"static {name}_state state;\n")
    statements, inputs, outputs = [], 0, 0
    for call in calls:
        dims = [str(int(d)) for d in call.dims]
        args = (["&state"] if call.state else []) + (["workspace"] if call.workspace else []) + dims
        for x in call.inputs:
            x = np.asarray(x)
            parts.append(array(f"input{inputs}", BY_NUMPY[x.dtype].c, "const ",
                               (c_literal(v, x.dtype) for v in x.ravel())))
            args.append(f"input{inputs}")
            inputs += 1
        for dtype, shape in call.outputs:
            size = int(np.prod(shape, dtype=np.int64))
            parts.append(f"static {BY_NUMPY[np.dtype(dtype)].c} output{outputs}[{max(size, 1)}];\n")
            args.append(f"output{outputs}")
            outputs += 1
        if call.workspace:  # dims out of bounds (NAME_WORKSPACE_INVALID): the call says NAME_EDIM
            needed = f"{name}_workspace_size({', '.join(dims)})"
            statements.append(f"    if (status == 0 && {needed} != {name.upper()}_WORKSPACE_INVALID && "
                              f"{needed} > sizeof workspace)\n"
                              "        status = WORKSPACE_SHORT;\n")
        statements.append(f"    if (status == 0)\n        status = {call.function}({', '.join(args)});\n")
    parts.append(OUTPUT_HELPERS)
    dumps = "".join(f"        put_bytes({i}u, output{i}, (uint32_t)sizeof output{i});\n"
                    for i in range(outputs))
    parts.append(f"""
int main(void)
{{
    int status = 0;
    uint32_t ticks;
    emb_counter_start();
{"".join(statements)}    ticks = emb_counter_read();
    emb_write("status ");
    put_u32((uint32_t)status);
    emb_write("\\nticks ");
    put_u32(ticks);
    emb_write("\\n");
    if (status == 0) {{
{dumps}    }}
    emb_write("end\\n");
    return status;
}}
""")
    return "\n".join(parts)


def parse(text: str, outputs):
    """(status, ticks, output arrays) from what the program printed; ValueError if it did not
    get to the end (a crash or a fault midway)."""
    if not re.search(r"^end$", text, re.M):
        raise ValueError(f"the program stopped before the end of its output:\n{text[-2000:]}")
    status = int(re.search(r"^status (\d+)$", text, re.M).group(1))
    ticks = int(re.search(r"^ticks (\d+)$", text, re.M).group(1))
    sections = dict((int(i), "".join(body.split()))
                    for i, body in re.findall(r"^out (\d+)\n((?:[0-9a-f]+\n)*)", text, re.M))
    arrays = []
    for i, (dtype, shape) in enumerate(outputs):
        if i not in sections:
            arrays.append(None)
            continue
        data = np.frombuffer(bytes.fromhex(sections[i]), dtype=dtype)
        arrays.append(data[:int(np.prod(shape, dtype=np.int64))].reshape(shape))
    return status, ticks, arrays
