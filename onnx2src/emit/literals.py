"""The only place numbers become text. Floats are written exactly: C gets the shortest decimal
that reads back as the same float32 or float64 (valid in every C and C++ dialect, unlike hex
floats, which C++ before C++17 rejects), or, in NAME_weights.c, as bit patterns in 64-bit hex
words (2.4 source bytes per weight byte, quick to write and to compile);
Python gets the raw little-endian bytes as hex, so weights survive bit for bit."""
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


# The weights of NAME_weights.c are 64-bit words, the largest integers C99 has: gcc parses an
# initializer at a few microseconds per element, whatever its size, so two floats a word halve
# the time of one a word. ELEMENTS_PER_WORD of each type that has an entry go in one
# little-endian word.
ELEMENTS_PER_WORD = {"float": 2, "double": 1, "bfloat16": 4, "int8": 8, "int32": 2}
WORDS_PER_LINE = 8


def c_words(data: np.ndarray, dtype: DType) -> bytes:
    """`data` (a multiple of ELEMENTS_PER_WORD long) as lines of 64-bit hex words, fixed
    width: "0x3f8000003f800000," holds the floats 1.0 (low half) and 1.0 (high half) as a
    little-endian target stores them. Built with array operations: a 100 MB model's weights
    are written in about a second."""
    little = np.ascontiguousarray(data, dtype.numpy.newbyteorder("<")).reshape(-1)
    words = little.view("<u8").astype(">u8")  # big-endian bytes: the hex digits in reading order
    chunks = []
    for start in range(0, words.size, 1 << 20):  # a million words at a time: bounded memory
        part = words[start:start + (1 << 20)]
        text = np.empty((part.size, 19), np.uint8)
        text[:, 0], text[:, 1], text[:, -1] = ord("0"), ord("x"), ord(",")
        text[:, 2:-1] = np.frombuffer(part.tobytes().hex().encode(), np.uint8).reshape(part.size, 16)
        chunks.append(text.reshape(-1))
    flat = np.concatenate(chunks) if chunks else np.empty(0, np.uint8)
    line = WORDS_PER_LINE * 19
    full = flat.size // line * line
    rows = flat[:full].reshape(-1, line)
    body = np.concatenate([rows, np.full((rows.shape[0], 1), ord("\n"), np.uint8)], axis=1).tobytes()
    rest = flat[full:].tobytes()
    return body + (rest + b"\n" if rest else b"")


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
