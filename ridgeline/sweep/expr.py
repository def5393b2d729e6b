"""Constraint expressions (``tp * pp <= 64``) parsed with ``ast`` and evaluated by a small walker.

Only numbers, strings, names, arithmetic, comparisons, ``and``/``or``/``not`` and ``in`` over a
literal list are accepted; anything else (calls, attributes, subscripts, lambdas) is refused when
the spec is read. Nothing is ever passed to ``eval``.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Mapping
from typing import Any

from ..ir.errors import RidgelineError

__all__ = ["Constraint", "ExprError"]


class ExprError(RidgelineError):
    """A constraint that is not a plain arithmetic/comparison expression over the axes."""


_BIN = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
        ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}
_CMP = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
        ast.Gt: operator.gt, ast.GtE: operator.ge, ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Not: operator.not_}
_MAX_POW = 64     # keeps `2 ** 2 ** 99` from eating the machine


class Constraint:
    """One boolean expression over axis names; ``names`` are the axes it reads."""

    def __init__(self, text: str, allowed: Mapping[str, Any] | None = None):
        if not isinstance(text, str) or not text.strip():
            raise ExprError(f"constraint {text!r}: expected a non-empty string such as 'tp * pp <= 64'")
        self.text = text.strip()
        try:
            tree = ast.parse(self.text, mode="eval")
        except SyntaxError as e:
            raise ExprError(f"constraint {self.text!r}: not an expression ({e.msg})") from None
        self.names: set[str] = set()
        self._check(tree.body)
        self._tree = tree.body
        if allowed is not None:
            unknown = sorted(self.names - set(allowed))
            if unknown:
                raise ExprError(f"constraint {self.text!r}: unknown name(s) {', '.join(unknown)} "
                                f"(axes: {', '.join(allowed)})")

    def _check(self, n: ast.AST) -> None:
        if isinstance(n, ast.Constant):
            if not isinstance(n.value, (int, float, str, bool)):
                raise ExprError(f"constraint {self.text!r}: constant {n.value!r} is not allowed")
        elif isinstance(n, ast.Name):
            self.names.add(n.id)
        elif isinstance(n, (ast.List, ast.Tuple)):
            for e in n.elts:
                if not isinstance(e, ast.Constant):
                    raise ExprError(f"constraint {self.text!r}: lists may hold constants only")
                self._check(e)
        elif isinstance(n, ast.BinOp) and type(n.op) in _BIN:
            self._check(n.left)
            self._check(n.right)
        elif isinstance(n, ast.UnaryOp) and type(n.op) in _UNARY:
            self._check(n.operand)
        elif isinstance(n, ast.BoolOp):
            for v in n.values:
                self._check(v)
        elif isinstance(n, ast.Compare) and all(type(o) in _CMP for o in n.ops):
            self._check(n.left)
            for c in n.comparators:
                self._check(c)
        elif isinstance(n, ast.IfExp):
            for c in (n.test, n.body, n.orelse):
                self._check(c)
        else:
            raise ExprError(f"constraint {self.text!r}: {type(n).__name__} is not allowed (use names, numbers, "
                            f"arithmetic, comparisons, and/or/not, `in [..]`)")

    def __call__(self, env: Mapping[str, Any]) -> bool:
        """True when the point satisfies the constraint; a comparison that cannot be made (a None
        default, ``"auto"`` against a number) does not exclude the point."""
        try:
            return bool(self._eval(self._tree, env))
        except TypeError:
            return True
        except (ZeroDivisionError, OverflowError, ValueError) as e:
            at = ", ".join(f"{k}={env.get(k)!r}" for k in sorted(self.names))
            raise ExprError(f"constraint {self.text!r}: {e} at {at}") from None

    def _eval(self, n: ast.AST, env: Mapping[str, Any]) -> Any:
        if isinstance(n, ast.Constant):
            return n.value
        if isinstance(n, ast.Name):
            return env[n.id]
        if isinstance(n, (ast.List, ast.Tuple)):
            return [e.value for e in n.elts]  # type: ignore[attr-defined]
        if isinstance(n, ast.BinOp):
            a, b = self._eval(n.left, env), self._eval(n.right, env)
            if isinstance(n.op, ast.Pow) and isinstance(b, (int, float)) and abs(b) > _MAX_POW:
                raise ValueError(f"exponent {b} is larger than {_MAX_POW}")
            return _BIN[type(n.op)](a, b)
        if isinstance(n, ast.UnaryOp):
            return _UNARY[type(n.op)](self._eval(n.operand, env))
        if isinstance(n, ast.BoolOp):
            if isinstance(n.op, ast.And):
                return all(self._eval(v, env) for v in n.values)
            return any(self._eval(v, env) for v in n.values)
        if isinstance(n, ast.Compare):
            left = self._eval(n.left, env)
            for op, c in zip(n.ops, n.comparators):
                right = self._eval(c, env)
                if not _CMP[type(op)](left, right):
                    return False
                left = right
            return True
        if isinstance(n, ast.IfExp):
            return self._eval(n.body, env) if self._eval(n.test, env) else self._eval(n.orelse, env)
        raise AssertionError(type(n).__name__)  # pragma: no cover - _check refused it

    def __repr__(self) -> str:
        return f"Constraint({self.text!r})"
