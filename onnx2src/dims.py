"""Symbolic dimensions: integer polynomials over named sizes such as `batch` and `seq`.

PyTorch exports compute shapes at run time (Shape → Gather → Concat → Reshape). To fold those
chains we need arithmetic on sizes that are unknown until the generated code runs. A dim is
either a plain int or a `Dim` polynomial (e.g. 20*batch*seq); every operation returns a plain
int again when the result is constant, so code that only ever sees ints never meets a `Dim`.
"""
from __future__ import annotations

from typing import Callable, Dict, Mapping, Tuple, Union

Monomial = Tuple[str, ...]  # sorted symbol names, repeated for powers; () is the constant term


class Dim:
    __slots__ = ("terms",)

    def __init__(self, terms: Mapping[Monomial, int]):
        self.terms: Dict[Monomial, int] = {  # constant term last, for readable output
            m: c for m, c in sorted(terms.items(), key=lambda t: (not t[0], t[0])) if c}

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
                m = tuple(sorted(m1 + m2))
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

    # -- comparison: equal polynomials are equal dims; ordering needs a constant ---------------
    def __eq__(self, other):
        return isinstance(other, (Dim, int)) and self.terms == _terms(other)

    def __hash__(self):
        return hash(tuple(self.terms.items()))

    def _ordering(self, other, op):
        """Decide an ordering that holds for every assignment of sizes >= 1, or raise. With all
        symbol coefficients of one sign the difference is monotone, ranging from its value at
        all-ones to (minus) infinity, and a threshold test is decided if both ends agree."""
        diff = self - other
        if isinstance(diff, int):
            return op(diff, 0)
        at_one = evaluate(diff, {s: 1 for s in diff.symbols()})
        coefs = [c for m, c in diff.terms.items() if m]
        lo, hi = (at_one, None) if all(c > 0 for c in coefs) else \
                 (None, at_one) if all(c < 0 for c in coefs) else (None, None)
        if lo is not None and op(lo, 0) == op(lo + 10**9, 0):
            return op(lo, 0)
        if hi is not None and op(hi, 0) == op(hi - 10**9, 0):
            return op(hi, 0)
        raise ValueError(f"cannot compare symbolic sizes {self} and {other}")

    def __lt__(self, other):
        return self._ordering(other, lambda a, b: a < b)

    def __le__(self, other):
        return self._ordering(other, lambda a, b: a <= b)

    def __gt__(self, other):
        return self._ordering(other, lambda a, b: a > b)

    def __ge__(self, other):
        return self._ordering(other, lambda a, b: a >= b)

    def __repr__(self):
        return render(self, str)

    def symbols(self):
        return sorted({s for m in self.terms for s in m})


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


def render(d: DimLike, name: Callable[[str], str]) -> str:
    """Text of a dim in C or Python syntax, with `name` mapping a symbol to its identifier."""
    if not isinstance(d, Dim):
        return str(int(d))
    text = ""
    for mono, coef in d.terms.items():
        factors = ([str(abs(coef))] if abs(coef) != 1 or not mono else []) + [name(s) for s in mono]
        sign = ("-" if coef < 0 else "") if not text else (" - " if coef < 0 else " + ")
        text += sign + "*".join(factors)
    single = len(d.terms) == 1 and text.count("*") == 0 and not text.startswith("-")
    return text if single else f"({text})"


def evaluate(d: DimLike, env: Mapping[str, int]) -> int:
    if not isinstance(d, Dim):
        return int(d)
    total = 0
    for mono, coef in d.terms.items():
        v = coef
        for s in mono:
            v *= env[s]
        total += v
    return total


def upper_bound(d: DimLike) -> DimLike:
    """A polynomial in the symbols' bounds that is >= d whenever every symbol lies in
    [1, its bound]: the positive terms stay, the negative ones are taken with symbols at 1.
    Evaluate it with the bounds (or render it with the bound macros)."""
    if not isinstance(d, Dim):
        return int(d)
    return Dim({m: c for m, c in d.terms.items() if c > 0}) + sum(c for c in d.terms.values() if c < 0)


def product(dims) -> DimLike:
    p: DimLike = 1
    for d in dims:
        p = p * d
    return p
