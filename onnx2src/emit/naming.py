"""Identifiers, comments and string literals made from model text, which is untrusted.

Every string from a model reaches generated code through one of these: `Namer` (an
identifier), `comment` (text inside a C block comment, after a Python `#` or in a docstring) or
`py_string` (a Python string literal). Nothing else pastes model text.

Namespaces. Names made from the model never start with an underscore (sanitizing strips it),
never collide with a keyword or with what the language's standard headers / builtins declare,
and never start with a prefix the generator owns: `o2s_`/`O2S_` and, in C, the module name's
`NAME_`/`NAME_` prefix. Everything the generator invents lives in those spaces: C and Python
locals start with `_` and a lower-case letter (legal at block scope in C), C helpers with
`o2s_`, C macros with `O2S_` or `NAME_`, Python helpers with `_`. So no model name, dim name or
user prefix can collide with a local or a helper, and templates may add locals freely.
"""
import builtins
import json
import keyword
import re

import numpy as np

C_KEYWORDS = set("""auto break case char const continue default do double else enum extern float
for goto if inline int long register restrict return short signed sizeof static struct switch
typedef union unsigned void volatile while alignas alignof bool constexpr false nullptr
static_assert thread_local true typeof typeof_unqual
and and_eq asm bitand bitor catch char8_t char16_t char32_t class compl concept consteval
constinit const_cast co_await co_return co_yield decltype delete dynamic_cast explicit export
friend mutable namespace new noexcept not not_eq operator or or_eq private protected public
reinterpret_cast requires static_cast template this throw try typeid typename using virtual
wchar_t xor xor_eq""".split())  # C99 to C23, and C++ (the header is included from C++)

# What <math.h>, <stdint.h>, <stddef.h> and <string.h> declare (C99, plus the POSIX and GNU
# extensions glibc and newlib declare by default), and the names the C standard reserves for
# them: a model name equal to one would clash with the header at file scope or shadow it.
_MATH = """acos asin atan atan2 cos sin tan acosh asinh atanh cosh sinh tanh exp exp2 expm1 frexp
ilogb ldexp log log10 log1p log2 logb modf scalbn scalbln cbrt fabs hypot pow sqrt erf erfc lgamma
tgamma ceil floor nearbyint rint lrint llrint round lround llround trunc fmod remainder remquo
copysign nan nextafter nexttoward fdim fmax fmin fma""".split()
C_LIBRARY = ({f + suffix for f in _MATH for suffix in ("", "f", "l")} | set("""
j0 j1 jn y0 y1 yn j0f j1f jnf y0f y1f ynf gamma gammaf drem dremf finite finitef significand
significandf signgam scalb scalbf exp10 exp10f pow10 sincos sincosf isinff isnanf
HUGE_VAL HUGE_VALF HUGE_VALL INFINITY NAN HUGE MAXFLOAT DOMAIN SING OVERFLOW UNDERFLOW TLOSS
PLOSS MATH_ERRNO MATH_ERREXCEPT math_errhandling float_t double_t fpclassify signbit
size_t ptrdiff_t max_align_t nullptr_t NULL offsetof unreachable main errno assert""".split()))
C_RESERVED_PATTERN = re.compile(  # stdint's types and limits, string.h's future functions,
    r"u?int\w*_t|U?INT\w*_(MIN|MAX|C)|(SIZE|PTRDIFF|WCHAR|WINT|SIG_ATOMIC)_(MIN|MAX)"  # math.h's
    r"|(str|mem|wcs)[a-z]\w*|FP_[A-Z]\w*|M_\w+")  # FP_ macros and the POSIX constants (M_PI)
OWN_PREFIXES = ("o2s", "onnx2src")  # helpers, macros and the header guard of generated code
PY_RESERVED = set(keyword.kwlist) | set(dir(builtins)) | {"np", "numpy", "run", "Stream"}

MAX_LENGTH = 60     # characters kept of a long name (a counter keeps them unique)
COMMENT_LENGTH = 120


def sanitize(text: str) -> str:
    """[A-Za-z0-9_] only, no leading, trailing or doubled underscore, never empty, never
    starting with a digit, at most MAX_LENGTH characters."""
    name = re.sub(r"[^A-Za-z0-9]+", "_", str(text)).strip("_")[:MAX_LENGTH].rstrip("_") or "v"
    return "v" + name if name[0].isdigit() else name


def c_reserved(name: str, module: str) -> bool:
    low = name.lower()
    return (name in C_KEYWORDS or name in C_LIBRARY or bool(C_RESERVED_PATTERN.fullmatch(name))
            or low.startswith(OWN_PREFIXES) or low.startswith(module.lower() + "_"))


def py_reserved(name: str, module: str) -> bool:
    return name in PY_RESERVED


class Namer:
    """Hands out identifiers, one per key, in the order they are first asked for: the model's
    text sanitized, kept when free, else given a counter. Unique ignoring case, so that the
    upper-case macros made from them are unique too."""

    def __init__(self, reserved, module: str):
        self.reserved, self.module = reserved, module
        self.names = {}
        self.used = set()

    def __call__(self, key, text: str) -> str:
        if key not in self.names:
            base = sanitize(text)
            if self.reserved(base, self.module):
                base = base + "_" if not self.reserved(base + "_", self.module) else "v_" + base
            name, i = base, 1
            while name.lower() in self.used:
                i += 1
                name = f"{base}_{i}"
            self.used.add(name.lower())
            self.names[key] = name
        return self.names[key]


def c_namer(module: str) -> Namer:
    return Namer(c_reserved, module)


def py_namer(module: str) -> Namer:
    return Namer(py_reserved, module)


def module_name_problem(name: str, target: str):
    """Why `name` can't be the module name / symbol prefix for `target`, or None. A name the
    user gives is used exactly or refused; it is never changed."""
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name or ""):
        return "it must start with a letter and contain only letters, digits and underscores"
    if len(name) > MAX_LENGTH:
        return f"it is longer than {MAX_LENGTH} characters"
    if name.lower().startswith(OWN_PREFIXES):
        return "names starting with o2s or onnx2src are the generated code's own"
    if target == "numpy":
        if keyword.iskeyword(name) or name in ("numpy", "np"):
            return "it is a Python keyword or the name of numpy, which the module imports"
        return None
    if name in C_KEYWORDS:
        return "it is a C or C++ keyword"
    if "__" in name:
        return "C++ reserves identifiers containing a double underscore (the header is C++-ready)"
    if re.match(r"(str|mem|wcs)[a-z]", name) or (name.upper() + "_").startswith("FP_"):
        return ("the C standard reserves its symbols (NAME_run) or macros (NAME_OK) for "
                "<string.h> and <math.h>")
    return None


def default_module_name(path_stem: str, target: str) -> str:
    """The file's stem made a valid module name (the user did not choose it, so it may change)."""
    name = sanitize(path_stem)
    return name if module_name_problem(name, target) is None else "m_" + name


def comment(text: str) -> str:
    """Text safe inside a C block comment, after a Python `#`, and inside a Python docstring:
    printable ASCII but for backslash and double quote; anything else shows as <U+XXXX>;
    `*/`, `/*` and `??` are broken apart; at most COMMENT_LENGTH characters."""
    text = str(text)
    short = text if len(text) <= COMMENT_LENGTH else text[:COMMENT_LENGTH] + "..."
    safe = "".join(c if 32 <= ord(c) < 127 and c not in '\\"' else f"<U+{ord(c):04X}>" for c in short)
    return safe.replace("*/", "* /").replace("/*", "/ *").replace("??", "?-?")


def sentence(text: str) -> str:
    """A message of ours that quotes model names ("why a model can't stream"), for comments and
    docstrings: as `comment`, with double quotes shown as single ones."""
    return comment(str(text).replace('"', "'"))


def quoted(text: str) -> str:
    """A model's name in double quotes, for comments and docstrings."""
    return f'"{comment(text)}"'


def dim_origin(graph, symbol: str) -> str:
    """For a symbolic dim the frontend named: where it is and what the model declares there
    (`, axis 0 of "x", size -1 in the model`), for the header and docstring; else ""."""
    if symbol not in graph.dim_origins:
        return ""
    name, axis, declared = graph.dim_origins[symbol]
    said = (f"size {declared}" if isinstance(declared, int) else "no size or name" if declared is None
            else f"name {quoted(declared)}")
    return f", axis {axis} of {quoted(name)}, {said} in the model"


def node_comment(node) -> str:
    """`LSTM "name" (opset 14)`: what each generated block is headed with."""
    return f'{comment(node.attrs["onnx_op"])} {quoted(node.name)} (opset {node.version})'


def pinned(graph) -> list:
    """The inputs fixed at compile time (--const), as text for the documentation."""
    return [{"onnx": quoted(name), "value": comment(json.dumps(np.asarray(v).tolist()))}
            for name, v in graph.pinned.items()]


def py_string(text: str) -> str:
    """A Python string literal of `text`, in ASCII with every other character escaped."""
    return ascii(str(text))
