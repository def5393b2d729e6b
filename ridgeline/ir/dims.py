"""Tensor dimensions: concrete ints or symbolic names and expressions.

A ``Dim`` is an ``int`` or a ``str``. A string is either a bare name (``batch``, ``seq``) or an
arithmetic expression over names (``past + seq``), kept in sympy's canonical spelling so that
equal expressions compare equal as strings. Arithmetic on ints stays on the fast path; sympy is
only consulted (and cached) when a symbol is involved.
"""

from __future__ import annotations

import keyword
import re
from functools import lru_cache
from typing import Mapping, Union


from ._lazy import sympy
from .errors import IRError

__all__ = [
    "Dim", "is_static", "is_name", "add", "sub", "mul", "floordiv", "ceildiv", "product",
    "substitute", "free_symbols", "to_sympy", "from_sympy", "check_dim",
]

Dim = Union[int, str]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def is_static(d: Dim) -> bool:
    return isinstance(d, int)


def is_name(d: Dim) -> bool:
    """True for a bare symbol such as ``batch`` (not an expression)."""
    return isinstance(d, str) and _NAME.match(d) is not None


@lru_cache(maxsize=4096)
def _symbol(name: str) -> sympy.Symbol:
    # Dims are sizes: positive integers, which lets sympy simplify Max(seq, 1) and friends.
    return sympy.Symbol(name, integer=True, positive=True)


_FUNCTIONS = frozenset({"floor", "ceiling", "Max", "Min", "Mod"})
_TOKEN = re.compile(r"\s+|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<int>[0-9]+)|(?P<pow>\*\*)|(?P<op>[-+*/(),])")
_MAX_EXPR_CHARS, _MAX_INT_DIGITS, _MAX_POWERS, _MAX_DEPTH = 512, 19, 4, 16


def _check_expression(expr: str) -> None:
    """Refuse anything but arithmetic on names, ints and floor/ceiling/Max/Min/Mod.

    sympy parses with ``eval``, and dims arrive from untrusted files (an ONNX ``dim_param``, a
    ``.rir`` type): without this check ``(lambda: 1)()`` or attribute access would run, and
    ``9**9**9**9`` would never finish. Exponents are single digits, unchained, at most four.
    """
    if len(expr) > _MAX_EXPR_CHARS:
        raise IRError(f"symbolic dimension is too long ({len(expr)} characters)")
    pos, powers, depth, tokens = 0, 0, 0, []
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if m is None:
            raise IRError(f"malformed symbolic dimension {expr!r}: unexpected {expr[pos]!r} at {pos + 1}")
        pos = m.end()
        if m.lastgroup:
            tokens.append((m.lastgroup, m.group()))
    for i, (kind, text) in enumerate(tokens):
        nxt = tokens[i + 1] if i + 1 < len(tokens) else (None, None)
        if kind == "name":
            if keyword.iskeyword(text):
                raise IRError(f"malformed symbolic dimension {expr!r}: {text!r} is not a dimension name")
            if (text in _FUNCTIONS) != (nxt[1] == "("):
                raise IRError(f"malformed symbolic dimension {expr!r}: only floor, ceiling, Max, Min and Mod "
                              f"can be called")
        elif kind == "int" and len(text) > _MAX_INT_DIGITS:
            raise IRError(f"malformed symbolic dimension {expr!r}: integer {text[:12]}... is too large")
        elif kind == "pow":
            powers += 1
            after = tokens[i + 2][0] if i + 2 < len(tokens) else None
            if nxt[0] != "int" or len(nxt[1]) != 1 or after == "pow" or powers > _MAX_POWERS:
                raise IRError(f"malformed symbolic dimension {expr!r}: exponents must be single digits "
                              f"(at most {_MAX_POWERS})")
        elif text == "(":
            depth += 1
            if depth > _MAX_DEPTH:
                raise IRError(f"malformed symbolic dimension {expr!r}: nested too deeply")
        elif text == ")":
            depth -= 1


@lru_cache(maxsize=16384)
def _parse(expr: str) -> sympy.Expr:
    if is_name(expr):
        if keyword.iskeyword(expr):
            raise IRError(f"{expr!r} is not a dimension name (a Python keyword)")
        return _symbol(expr)
    _check_expression(expr)
    names = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", expr)) - _FUNCTIONS
    try:
        return sympy.sympify(expr, locals={n: _symbol(n) for n in names})
    except (sympy.SympifyError, SyntaxError, TypeError, ValueError, ZeroDivisionError) as e:
        raise IRError(f"malformed symbolic dimension {expr!r}: {e}") from None


def to_sympy(d: Dim) -> sympy.Expr:
    """The sympy expression of a dim (an ``Integer`` for ints)."""
    return sympy.Integer(d) if isinstance(d, int) else _parse(d)


def from_sympy(e) -> Dim:
    """Back from sympy: an int when the expression is constant, else its canonical string."""
    e = sympy.sympify(e)
    if e.is_Integer:
        return int(e)
    if e.is_number:
        raise IRError(f"dimension evaluates to a non-integer {e}")
    return str(e)


def check_dim(d: object) -> Dim:
    """Validate a user-supplied dim: a non-negative int or a well-formed symbolic expression."""
    if isinstance(d, bool):
        raise IRError(f"dimension must be an int or a name, got {d!r}")
    if isinstance(d, (int,)) or (hasattr(d, "__index__") and not isinstance(d, str)):
        v = int(d)  # numpy integers arrive here
        if v < 0:
            raise IRError(f"dimension must be non-negative, got {v}")
        return v
    if isinstance(d, str):
        if is_name(d):
            if keyword.iskeyword(d) or d in _FUNCTIONS:
                raise IRError(f"{d!r} cannot name a dimension (it is reserved)")
            return d
        try:
            return from_sympy(_parse(d))
        except ValueError as e:  # e.g. an integer beyond Python's int-to-str digit limit
            raise IRError(f"malformed symbolic dimension {d[:40]!r}: {e}") from None
    raise IRError(f"dimension must be an int or a name, got {d!r}")


def _binary(a: Dim, b: Dim, op) -> Dim:
    return from_sympy(op(to_sympy(a), to_sympy(b)))


def add(a: Dim, b: Dim) -> Dim:
    if isinstance(a, int) and isinstance(b, int):
        return a + b
    return _cached_binary(a, b, "+")


def sub(a: Dim, b: Dim) -> Dim:
    if isinstance(a, int) and isinstance(b, int):
        return a - b
    return _cached_binary(a, b, "-")


def mul(a: Dim, b: Dim) -> Dim:
    if isinstance(a, int) and isinstance(b, int):
        return a * b
    return _cached_binary(a, b, "*")


def floordiv(a: Dim, b: Dim) -> Dim:
    if isinstance(a, int) and isinstance(b, int):
        return a // b
    return _cached_binary(a, b, "//")


def ceildiv(a: Dim, b: Dim) -> Dim:
    if isinstance(a, int) and isinstance(b, int):
        return -(-a // b)
    return _cached_binary(a, b, "ceil")


_OPS = {
    "+": lambda x, y: x + y,
    "-": lambda x, y: x - y,
    "*": lambda x, y: x * y,
    "//": lambda x, y: sympy.floor(x / y),
    "ceil": lambda x, y: sympy.ceiling(x / y),
}


@lru_cache(maxsize=16384)
def _cached_binary(a: Dim, b: Dim, op: str) -> Dim:
    return _binary(a, b, _OPS[op])


def product(dims) -> Dim:
    """Product of dims: an int when all are static."""
    out: Dim = 1
    for d in dims:
        out = mul(out, d)
    return out


def free_symbols(d: Dim) -> set[str]:
    if isinstance(d, int):
        return set()
    if is_name(d):
        return {d}
    return {s.name for s in to_sympy(d).free_symbols}


def substitute(d: Dim, binding: Mapping[str, Dim]) -> Dim:
    """Replace symbols by the dims bound to them; unbound symbols stay symbolic."""
    if isinstance(d, int):
        return d
    if is_name(d):
        return binding.get(d, d)
    expr = to_sympy(d)
    subs = {_symbol(s.name): to_sympy(binding[s.name]) for s in expr.free_symbols if s.name in binding}
    return from_sympy(expr.subs(subs)) if subs else d
