"""The only place numbers become text. Floats are written exactly: C gets the shortest decimal
that reads back as the same float32 or float64 (valid in every C and C++ dialect, unlike hex
floats, which C++ before C++17 rejects), Python gets the raw little-endian bytes as hex, so
weights survive bit for bit."""
import math

import numpy as np

from ..ir import DType

LINE = 96  # characters per line of a C initializer or a Python hex string


def c_number(value, dtype: DType) -> str:
    kind = dtype.numpy.kind
    if kind == "f":
        value = float(value)
        suffix = "f" if dtype.name == "float" else ""
        if math.isnan(value):
            return "NAN" if suffix else "((double)NAN)"
        if math.isinf(value):
            text = "INFINITY" if suffix else "HUGE_VAL"
            return text if value > 0 else "-" + text
        if value.is_integer() and abs(value) < 2**24:  # exact and easier to read
            return ("-" if math.copysign(1, value) < 0 else "") + f"{abs(int(value))}.0{suffix}"
        x = dtype.numpy.type(value)  # numpy prints the shortest digits that read back as x
        if 1e-4 <= abs(value) < 1e16:
            return np.format_float_positional(x, unique=True, trim="0") + suffix  # 0.25, 1234.5
        return np.format_float_scientific(x, unique=True, trim="-") + suffix  # 1e-05, 1.5e+20
    value = int(value)
    if kind == "b" or dtype.name == "bool":
        return "1" if value else "0"
    bits = dtype.numpy.itemsize * 8
    if kind == "u":
        return f"UINT{bits}_C({value})" if bits == 64 else f"{value}u"
    if value == -(1 << (bits - 1)):  # the most negative value has no literal of its own
        return f"(-{c_number(-(value + 1), dtype)} - 1)"
    return f"INT64_C({value})" if bits == 64 else str(value)


def c_initializer(data: np.ndarray, dtype: DType, indent: str = "    ") -> str:
    """Lines of comma-separated literals for `{ ... }`."""
    items = [c_number(x, dtype) for x in np.asarray(data).reshape(-1)]
    lines, line = [], ""
    for item in items:
        if line and len(line) + len(item) + 2 > LINE:
            lines.append(indent + line.rstrip())
            line = ""
        line += item + ", "
    if line:
        lines.append(indent + line.rstrip())
    return "\n".join(lines)


def py_number(value, dtype: DType) -> str:
    kind = dtype.numpy.kind
    if kind == "f":
        value = float(value)
        if math.isnan(value) or math.isinf(value):
            return f"float('{value}')"
        return repr(value)
    if kind == "b":
        return "True" if value else "False"
    return str(int(value))


def py_array(data: np.ndarray, indent: str = "    ") -> str:
    """An expression rebuilding `data` exactly: np.frombuffer over its bytes in hex."""
    data = np.asarray(data)
    raw = data.astype(data.dtype.newbyteorder("<")).tobytes().hex()
    chunks = [raw[i:i + LINE] for i in range(0, len(raw), LINE)] or [""]
    body = "\n".join(f'{indent}"{c}"' for c in chunks)
    dtype = data.dtype.newbyteorder("<").str
    return (f"np.frombuffer(bytes.fromhex(\n{body}\n), dtype={dtype!r})"
            f".reshape({tuple(data.shape)!r})")
