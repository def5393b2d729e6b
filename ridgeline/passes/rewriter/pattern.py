"""Patterns: declarative descriptions of the sub-graphs a rule matches.

A pattern is a tree (or DAG, when the same object appears twice) of

* ``Var("x", rank=3, dtype="f32")`` — any value, with optional constraints; one name binds one
  value, so ``Mul(x, Sigmoid(x))`` only matches when both ``x`` are the same value;
* ``Const(0.5)`` / ``Const(name="eps")`` — a constant with data (a value to match within a
  tolerance, or any constant); plain numbers in a pattern mean ``Const(number)``;
* ``ops.Softmax(s, axis=-1)`` — a node of that op (or of any op in a set: ``Op({"Div", "Mul"}, ...)``)
  whose output is the value, whose attributes match (a value, or a predicate), and whose inputs
  match the sub-patterns. Two-input ops whose spec says ``commutative`` match in both orders;
* ``OneOf(p1, p2)`` — alternatives, tried in order.

Interior nodes of a match (all but the root) must have no users outside the match, unless their
pattern says ``_uses="any"``: otherwise replacing the root would leave them computed twice.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

import numpy as np

__all__ = ["Pattern", "Var", "Const", "Op", "OneOf", "ops", "as_pattern", "count_ops"]

#: a predicate returning True/None to accept, or False / a reason string to reject
Predicate = Callable[[Any], "bool | str | None"]


class Pattern:
    """Base of all patterns; ``name`` binds the matched value (``match[name]``)."""

    name: str | None = None

    def describe(self) -> str:
        return repr(self)


class Var(Pattern):
    """Any value, optionally constrained by dtype (a name or set), rank, shape, or a predicate."""

    def __init__(self, name: str | None = None, *, dtype: str | Iterable[str] | None = None,
                 rank: int | None = None, shape: tuple | None = None, constant: bool | None = None,
                 where: Predicate | None = None):
        self.name = name
        self.dtypes = None if dtype is None else ({dtype} if isinstance(dtype, str) else set(dtype))
        self.rank = rank
        self.shape = shape
        self.constant = constant
        self.where = where

    def __repr__(self) -> str:
        return f"%{self.name}" if self.name else "_"


class Const(Pattern):
    """A constant with data. ``value`` (a number or array) must match within ``rtol``/``atol``;
    without it any constant matches. ``scalar=True`` demands exactly one element."""

    def __init__(self, value: Any = None, name: str | None = None, *, rtol: float = 1e-4, atol: float = 1e-7,
                 scalar: bool | None = None, where: Predicate | None = None):
        self.value = None if value is None else np.asarray(value, dtype=np.float64)
        self.name = name
        self.rtol, self.atol = rtol, atol
        self.scalar = (self.value is not None and self.value.ndim == 0) if scalar is None else scalar
        self.where = where

    def __repr__(self) -> str:
        if self.value is not None:
            v = self.value.item() if self.value.ndim == 0 else self.value.tolist()
            return f"{v!r}" if not self.name else f"%{self.name}={v!r}"
        return f"const %{self.name}" if self.name else "const"


class Op(Pattern):
    """A node of op ``op`` (a name or a set of names) producing the value at output ``output``.

    ``attrs`` constrain attributes (spec defaults apply): a value compares equal, a callable is a
    predicate. A single ``...`` as the inputs accepts any inputs (a rule's ``check`` inspects them).
    ``uses="any"`` allows an interior node to have users outside the match;
    ``commute`` overrides the spec's ``commutative``; ``where`` is a predicate on the node.
    """

    def __init__(self, op: str | Iterable[str], *inputs: Any, name: str | None = None,
                 attrs: dict[str, Any] | None = None, uses: str = "exclusive", commute: bool | None = None,
                 output: int = 0, where: Predicate | None = None):
        self.ops = frozenset({op} if isinstance(op, str) else op)
        self.inputs = None if inputs == (Ellipsis,) else tuple(as_pattern(p) for p in inputs)
        self.name = name
        self.attrs = dict(attrs or {})
        if uses not in ("exclusive", "any"):
            raise ValueError(f"uses must be 'exclusive' or 'any', got {uses!r}")
        self.uses = uses
        self.commute = commute
        self.output = output
        self.where = where

    @property
    def op_text(self) -> str:
        return "|".join(sorted(self.ops))

    def __repr__(self) -> str:
        args = "..." if self.inputs is None else ", ".join(repr(p) for p in self.inputs)
        attrs = "".join(f", {k}={v!r}" for k, v in self.attrs.items() if not callable(v))
        return f"{self.op_text}({args}{attrs})"


class OneOf(Pattern):
    """The first alternative that matches."""

    def __init__(self, *alternatives: Any, name: str | None = None):
        if not alternatives:
            raise ValueError("OneOf needs at least one alternative")
        self.alternatives = tuple(as_pattern(p) for p in alternatives)
        self.name = name

    def __repr__(self) -> str:
        return "OneOf(" + " | ".join(repr(p) for p in self.alternatives) + ")"


def as_pattern(p: Any) -> Pattern:
    """Patterns pass through; numbers and arrays become ``Const``."""
    if isinstance(p, Pattern):
        return p
    if isinstance(p, (int, float, np.ndarray, np.generic)) and not isinstance(p, bool):
        return Const(p)
    raise TypeError(f"not a pattern: {p!r} (use Var, Const, ops.<Op>(...) or a number)")


class _Ops:
    """``ops.Mul(a, b)`` builds ``Op("Mul", a, b)``; keyword arguments constrain attributes and
    underscore-prefixed ones set the pattern's options: ``_name``, ``_uses``, ``_commute``,
    ``_output``, ``_where``."""

    def __getattr__(self, op: str):
        if op.startswith("_"):
            raise AttributeError(op)

        def make(*inputs: Any, _name: str | None = None, _uses: str = "exclusive", _commute: bool | None = None,
                 _output: int = 0, _where: Predicate | None = None, **attrs: Any) -> Op:
            return Op(op, *inputs, name=_name, attrs=attrs, uses=_uses, commute=_commute, output=_output,
                      where=_where)
        make.__name__ = op
        return make


ops = _Ops()


def count_ops(p: Pattern, seen: set[int] | None = None) -> int:
    """The number of op nodes a full match of ``p`` covers (the largest alternative)."""
    seen = set() if seen is None else seen
    if id(p) in seen:
        return 0
    if isinstance(p, Op):
        seen.add(id(p))
        return 1 + sum(count_ops(q, seen) for q in p.inputs or ())
    if isinstance(p, OneOf):
        return max(count_ops(q, set(seen)) for q in p.alternatives)
    return 0
