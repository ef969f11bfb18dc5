"""Identifiers and comment text made from model names.

Nothing from the model reaches generated code unsanitized: identifiers keep only [A-Za-z0-9_]
and never collide with keywords or with each other; comment text can't close a comment,
start a nested one, or form a trigraph.
"""
import keyword
import re

C_KEYWORDS = set("""auto break case char const continue default do double else enum extern float
for goto if inline int long register restrict return short signed sizeof static struct switch
typedef union unsigned void volatile while _Bool _Complex _Imaginary bool true false NULL
int8_t int16_t int32_t int64_t uint8_t uint16_t uint32_t uint64_t size_t ptrdiff_t main
class new delete this template typename namespace operator private public protected virtual
friend try catch throw explicit mutable""".split())
LIBRARY = set("""exp expf log logf tanh tanhf sqrt sqrtf fabs fabsf memcpy memset INFINITY NAN
HUGE_VAL""".split())
TEMPLATE_LOCALS = set("""A B C Y x y m n k o i j a e s st acc max sum index dims out_dims strides start
step count offset axis x0 x1 i0 i1 i2 i3 i4 i5 i6 i7 sizes h c t b d g gates hr xt hb cb rb
W R lengths y y_h y_c xw r_zr r_h rb_h p_i p_o p_f gi go gf gc gz gr gh h_new c_new active
w_bias r_bias peep z cj bias step xb yb hr c_old""".split())
RESERVED = (C_KEYWORDS | LIBRARY | TEMPLATE_LOCALS | set(keyword.kwlist)
            | {"np", "numpy", "run", "inputs", "outputs", "INPUTS"})


def identifier(text: str) -> str:
    """A valid C and Python identifier resembling `text`."""
    name = re.sub(r"[^A-Za-z0-9_]+", "_", text).strip("_") or "v"
    name = re.sub(r"__+", "_", name)
    if name[0].isdigit():
        name = "v" + name
    if name in RESERVED or name.startswith("_"):
        name = name + "_"
    return name[:60]


class Namer:
    """Hands out unique identifiers, one per key, in the order they are first asked for."""

    def __init__(self, taken=()):
        self.names = {}
        self.used = set(taken)

    def __call__(self, key, text: str) -> str:
        if key not in self.names:
            base = identifier(text)
            name, i = base, 1
            while name in self.used:
                i += 1
                name = f"{base}_{i}"
            self.used.add(name)
            self.names[key] = name
        return self.names[key]


def comment(text: str) -> str:
    """Text safe inside a C block comment or after a Python `#`."""
    text = "".join(c if 32 <= ord(c) < 127 else "?" for c in str(text))
    return text.replace("*/", "* /").replace("/*", "/ *").replace("??", "?-?")
