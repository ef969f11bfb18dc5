"""Symbolic dimensions: integer polynomials over named sizes such as `batch` and `seq`, and over
clamped terms such as min(seq, 3), max(seq - 2, 0) or floor((seq + 1) / 2).

PyTorch exports compute shapes at run time (Shape → Gather → Concat → Reshape), and ONNX
clamps Slice bounds at run time (`y[:, 1:3]` has min(seq, 3) - 1 steps). To fold those chains
we need arithmetic on sizes that are unknown until the generated code runs. A dim is either a
plain int or a `Dim`: a polynomial whose factors ("atoms") are symbol names or `Func`s (min,
max, floor division by a positive constant). Every operation returns a plain int again when the
result is constant, so code that only ever sees ints never meets a `Dim`.

Comparisons hold for every assignment of the symbols >= 1, or raise ValueError when that can't
be decided; `minimum` / `maximum` then keep the choice symbolic instead of raising.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Dict, Mapping, Tuple, Union

INF = math.inf


@dataclass(frozen=True)
class Func:
    """min(a, b), max(a, b) or floordiv(a, k) with k a positive int; a factor of a monomial."""
    kind: str
    args: tuple

    def key(self) -> str:
        return _atom_text(self, str, "doc")

    def as_dim(self) -> "Dim":
        return Dim({(self,): 1})


Atom = Union[str, Func]
Monomial = Tuple[Atom, ...]  # sorted atoms, repeated for powers; () is the constant term


def _atom_key(a: Atom):
    return (0, a) if isinstance(a, str) else (1, a.key())


class Dim:
    __slots__ = ("terms",)

    def __init__(self, terms: Mapping[Monomial, int]):
        self.terms: Dict[Monomial, int] = {  # constant term last, for readable output
            m: c for m, c in sorted(terms.items(), key=lambda t: (not t[0], [_atom_key(a) for a in t[0]]))
            if c}

    @staticmethod
    def symbol(name: str) -> "Dim":
        return Dim({(name,): 1})

    # -- arithmetic ---------------------------------------------------------------------------
    def __add__(self, other):
        terms = dict(self.terms)
        for m, c in _terms(other).items():
            terms[m] = terms.get(m, 0) + c
        return simplify(Dim(terms))

    __radd__ = __add__

    def __neg__(self):
        return simplify(Dim({m: -c for m, c in self.terms.items()}))

    def __sub__(self, other):
        return self + (-other)

    def __rsub__(self, other):
        return (-self) + other

    def __mul__(self, other):
        terms: Dict[Monomial, int] = {}
        for m1, c1 in self.terms.items():
            for m2, c2 in _terms(other).items():
                m = tuple(sorted(m1 + m2, key=_atom_key))
                terms[m] = terms.get(m, 0) + c1 * c2
        return simplify(Dim(terms))

    __rmul__ = __mul__

    def __floordiv__(self, other):
        """Exact division only: by an int dividing every coefficient, or by a monomial."""
        other = _terms(other)
        if len(other) != 1:
            raise ValueError(f"cannot divide {self} by {render(Dim(other), str)}")
        (mono, coef), = other.items()
        terms = {}
        for m, c in self.terms.items():
            rest = list(m)
            for s in mono:
                if s not in rest:
                    raise ValueError(f"{self} is not divisible by {render(Dim(other), str)}")
                rest.remove(s)
            if c % coef:
                raise ValueError(f"{self} is not divisible by {render(Dim(other), str)}")
            terms[tuple(rest)] = c // coef
        return simplify(Dim(terms))

    def __rfloordiv__(self, other):
        raise ValueError(f"cannot divide {other} by the symbolic size {self}")

    # -- comparison: equal polynomials are equal dims; ordering must hold for all sizes ---------
    def __eq__(self, other):
        return isinstance(other, (Dim, int)) and self.terms == _terms(other)

    def __hash__(self):
        return hash(tuple(self.terms.items()))

    def _ordering(self, other, strict: bool, less: bool):
        small, big = (self, other) if less else (other, self)
        gap = big - small - (1 if strict else 0)      # the claim holds iff gap >= 0
        if nonneg(gap):
            return True
        if nonneg(-gap - 1):                          # gap < 0 always
            return False
        raise ValueError(f"cannot compare symbolic sizes {self} and {other}")

    def __lt__(self, other):
        return self._ordering(other, True, True)

    def __le__(self, other):
        return self._ordering(other, False, True)

    def __gt__(self, other):
        return self._ordering(other, True, False)

    def __ge__(self, other):
        return self._ordering(other, False, False)

    def __repr__(self):
        return render(self, str, "doc")

    def symbols(self):
        found = set()
        for m in self.terms:
            for a in m:
                found.update([a] if isinstance(a, str) else
                             (s for x in a.args if isinstance(x, Dim) for s in x.symbols()))
        return sorted(found)


DimLike = Union[int, Dim]


def _terms(x) -> Dict[Monomial, int]:
    if isinstance(x, Dim):
        return x.terms
    return {(): int(x)} if int(x) else {}


def simplify(d: DimLike) -> DimLike:
    if isinstance(d, Dim):
        if not d.terms:
            return 0
        if list(d.terms) == [()]:
            return d.terms[()]
        return d
    return int(d)


def is_static(d) -> bool:
    return not isinstance(d, Dim)


# -- min, max, floor division -------------------------------------------------------------------

def minimum(a: DimLike, b: DimLike) -> DimLike:
    return _choose("min", a, b)


def maximum(a: DimLike, b: DimLike) -> DimLike:
    return _choose("max", a, b)


def _choose(kind, a, b):
    a, b = simplify(a), simplify(b)
    if nonneg(b - a):          # a <= b everywhere
        return a if kind == "min" else b
    if nonneg(a - b):
        return b if kind == "min" else a
    return Func(kind, tuple(sorted((a, b), key=lambda x: render(x, str, "doc")))).as_dim()


def floor_div(a: DimLike, k: int) -> DimLike:
    """floor(a / k) for a positive int k and an `a` that is never negative."""
    a = simplify(a)
    if k <= 0:
        raise ValueError(f"cannot divide by {k}")
    if isinstance(a, int):
        return a // k
    if all(c % k == 0 for c in a.terms.values()):
        return a // k
    if not nonneg(a):
        raise ValueError(f"cannot divide {a}, which may be negative, by {k}")
    return Func("floordiv", (a, k)).as_dim()


def ceil_div(a: DimLike, k: int) -> DimLike:
    return floor_div(a + (k - 1), k)


# -- ranges and proofs --------------------------------------------------------------------------

def _mul(p, q):
    return 0 if p == 0 or q == 0 else p * q


def interval(d: DimLike) -> Tuple[float, float]:
    """Bounds of d over every assignment of the symbols >= 1 (possibly infinite)."""
    if isinstance(d, int):
        return d, d
    lo = hi = 0
    for mono, coef in d.terms.items():
        m_lo, m_hi = 1, 1
        for a in mono:
            a_lo, a_hi = _atom_interval(a)
            products = [_mul(x, y) for x in (m_lo, m_hi) for y in (a_lo, a_hi)]
            m_lo, m_hi = min(products), max(products)
        ends = [_mul(coef, m_lo), _mul(coef, m_hi)]
        lo, hi = lo + min(ends), hi + max(ends)
    return lo, hi


def _atom_interval(a: Atom):
    if isinstance(a, str):
        return 1, INF
    if a.kind == "floordiv":
        lo, hi = interval(a.args[0])
        k = a.args[1]
        return (lo // k if lo != -INF else -INF), (hi // k if hi != INF else INF)
    (lo1, hi1), (lo2, hi2) = interval(a.args[0]), interval(a.args[1])
    pick = min if a.kind == "min" else max
    return pick(lo1, lo2), pick(hi1, hi2)


def nonneg(d: DimLike) -> bool:
    """Whether d >= 0 provably holds for every assignment of the symbols >= 1. A linear
    min/max term splits the question in two (rest + c*min(a, b) >= 0 iff both branches are,
    for c > 0; and so on), so e.g. seq - max(seq - 2, 0) >= 0 is proved."""
    if interval(d)[0] >= 0:
        return True
    if not isinstance(d, Dim):
        return False
    for mono, c in d.terms.items():
        if len(mono) == 1 and isinstance(mono[0], Func) and mono[0].kind in ("min", "max"):
            rest = d - c * mono[0].as_dim()
            first, second = (nonneg(rest + c * x) for x in mono[0].args)
            both = (c > 0) == (mono[0].kind == "min")
            return (first and second) if both else (first or second)
    return False


# -- text, values, bounds -----------------------------------------------------------------------

STYLES = {  # how each target spells min, max and floor division (of a non-negative value)
    "c": {"min": "O2S_MIN({0}, {1})", "max": "O2S_MAX({0}, {1})", "floordiv": "({0} / {1})"},
    "py": {"min": "min({0}, {1})", "max": "max({0}, {1})", "floordiv": "({0} // {1})"},
    "doc": {"min": "min({0}, {1})", "max": "max({0}, {1})", "floordiv": "floor({0} / {1})"},
}


def render(d: DimLike, name: Callable[[str], str], style: str = "c") -> str:
    """Text of a dim in C ("c") or Python ("py") syntax, or for documentation ("doc"), with
    `name` mapping a symbol to its identifier."""
    if not isinstance(d, Dim):
        return str(int(d))

    text = ""
    for mono, coef in d.terms.items():
        factors = ([str(abs(coef))] if abs(coef) != 1 or not mono else []) + [
            _atom_text(a, name, style) for a in mono]
        sign = ("-" if coef < 0 else "") if not text else (" - " if coef < 0 else " + ")
        text += sign + "*".join(factors)
    (mono, coef), = list(d.terms.items())[:1]
    single = len(d.terms) == 1 and len(mono) == 1 and coef == 1  # a name or a call: no parentheses
    return text if single else f"({text})"


def _atom_text(a: Atom, name, style) -> str:
    if isinstance(a, str):
        return name(a)
    return STYLES[style][a.kind].format(*(render(x, name, style) for x in a.args))


def evaluate(d: DimLike, env: Mapping[str, int]) -> int:
    if not isinstance(d, Dim):
        return int(d)
    total = 0
    for mono, coef in d.terms.items():
        v = coef
        for a in mono:
            v *= env[a] if isinstance(a, str) else _evaluate_func(a, env)
        total += v
    return total


def _evaluate_func(f: Func, env) -> int:
    if f.kind == "floordiv":
        return evaluate(f.args[0], env) // f.args[1]
    return (min if f.kind == "min" else max)(evaluate(x, env) for x in f.args)


def upper_bound(d: DimLike) -> DimLike:
    """A dim that is >= d whenever every symbol lies in [1, its bound], and that only grows
    with each symbol: evaluate it with the bounds (or render it with the bound macros).
    Positive terms take each factor's upper bound (at least 0: a size is never negative when
    the model runs); negative ones their least value."""
    if not isinstance(d, Dim):
        return int(d)
    total: DimLike = 0
    for mono, coef in d.terms.items():
        if coef > 0:
            term: DimLike = coef
            for a in mono:
                bound = _atom_upper_bound(a)
                term = term * (bound if _atom_interval(a)[0] >= 0 else _choose("max", bound, 0))
        else:
            least = interval(Dim({mono: 1}))[0]
            if least == -INF:
                raise ValueError(f"cannot bound {d}: a term has no least value")
            term = coef * least
        total = total + term
    return total


def _atom_upper_bound(a: Atom) -> DimLike:
    if isinstance(a, str):
        return Dim.symbol(a)
    if a.kind == "floordiv":
        return floor_div(upper_bound(a.args[0]), a.args[1])
    return _choose(a.kind, *(upper_bound(x) for x in a.args))


def product(dims) -> DimLike:
    p: DimLike = 1
    for d in dims:
        p = p * d
    return p
