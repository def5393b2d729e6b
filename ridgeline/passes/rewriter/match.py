"""Matching a pattern against the graph, backwards from a root value, with backtracking.

The matcher is a set of generators that bind in place and undo on backtrack (a trail), so a
commutative op or a ``OneOf`` costs nothing until it is needed. When ``explain`` is on it keeps
the deepest failure — how many pattern ops matched and which constraint failed where — which is
what ``--explain`` reports for a rule that did not fire.
"""

from __future__ import annotations

from typing import Any, Iterator

import ml_dtypes
import numpy as np

from ...ir import Node, Value
from ...ir.ops import find_spec
from .pattern import Const, OneOf, Op, Pattern, Var

__all__ = ["Match", "Matcher", "value_text", "node_text", "commutative"]

_COMMUTATIVE: dict[str, bool] = {}


def commutative(op: str) -> bool:
    """Whether the op's spec says its two inputs commute (cached: asked for every match)."""
    got = _COMMUTATIVE.get(op)
    if got is None:
        spec = find_spec(op)
        got = _COMMUTATIVE[op] = bool(spec and spec.commutative)
    return got


def value_text(v: Value | None) -> str:
    if v is None:
        return "(missing input)"
    if v.producer is not None:
        return f"%{v.name} ({v.producer.op})"
    return f"%{v.name} ({'constant' if v.const else 'graph input'})"


def node_text(n: Node) -> str:
    out = f"%{n.outputs[0].name}" if n.outputs else "(no outputs)"
    return f"{n.op} node {out}"


def _close(data: np.ndarray, p: Const) -> bool:
    """``data`` equals the pattern's value within its tolerances, widened to the precision of the
    constant's dtype (0.044715 is 0.04471 in f16). Scalars compare without numpy calls."""
    kind = data.dtype.kind
    rtol = p.rtol
    if kind in "fV":
        try:
            rtol = max(rtol, 2.0 * float(ml_dtypes.finfo(data.dtype).eps)) if rtol else 0.0
        except ValueError:
            return False
    elif kind not in "iub":
        return False
    want = p.value
    if data.size == 1 and want.ndim == 0:
        x, w = float(data.reshape(-1)[0]), float(want)
        return x == w or abs(x - w) <= p.atol + rtol * abs(w)
    try:
        d = data.astype(np.float64)
        return bool(np.all(np.abs(d - want) <= p.atol + rtol * np.abs(want)))
    except ValueError:
        return False


class Match:
    """A successful match: bound values by name (``m["x"]``), named nodes (``m.node("sm")``),
    the root node, and every matched node (root first)."""

    __slots__ = ("root", "values", "nodes", "matched")

    def __init__(self, root: Node, values: dict[str, Value], nodes: dict[str, Node], matched: list[Node]):
        self.root, self.values, self.nodes, self.matched = root, values, nodes, matched

    def __getitem__(self, name: str) -> Value:
        return self.values[name]

    def __contains__(self, name: str) -> bool:
        return name in self.values

    def get(self, name: str, default: Any = None) -> Any:
        return self.values.get(name, default)

    def node(self, name: str) -> Node:
        return self.nodes[name]

    def const(self, name: str) -> np.ndarray:
        """The data of a bound constant."""
        v = self.values[name]
        if v.data is None:
            raise KeyError(f"%{v.name} is not a constant with data")
        return v.data

    def scalar(self, name: str) -> float:
        """The single element of a bound constant, as a float."""
        return float(np.asarray(self.const(name)).reshape(-1)[0])

    def __repr__(self) -> str:
        return f"<Match at {node_text(self.root)}: {', '.join(self.values)}>"


class Matcher:
    """Match state for one attempt at one root; reusable across roots via ``reset``."""

    def __init__(self, explain: bool = False):
        self.explain = explain
        self.values: dict[str, Value] = {}
        self.nodes: dict[str, Node] = {}
        self.matched: list[tuple[Node, Op]] = []
        self.matched_ids: set[int] = set()
        self.by_pattern: dict[int, Value] = {}
        self._named: list[bool] = []
        self.best: tuple[float, str] | None = None

    def reset(self) -> None:
        self.values.clear()
        self.nodes.clear()
        self.matched.clear()
        self.matched_ids.clear()
        self.by_pattern.clear()
        self._named.clear()
        self.best = None

    # ------------------------------------------------------------------ failures
    def fail(self, reason: Any, *args: Any, bonus: float = 0.0) -> None:
        """Record a failure; ``reason`` is a format string (formatted only if it is the best)."""
        if not self.explain:
            return
        score = len(self.matched) + bonus
        if self.best is None or score > self.best[0]:  # the first failure at a depth is the natural one
            self.best = (score, reason.format(*args) if args else str(reason))

    # ------------------------------------------------------------------ matching
    def match(self, p: Pattern, v: Value | None) -> Iterator[None]:
        if isinstance(p, Op):
            yield from self._op(p, v)
        elif isinstance(p, Var):
            yield from self._var(p, v)
        elif isinstance(p, Const):
            yield from self._const(p, v)
        elif isinstance(p, OneOf):
            for alt in p.alternatives:
                for _ in self.match(alt, v):
                    if p.name is None:
                        yield
                    elif p.name not in self.values:
                        self.values[p.name] = v  # type: ignore[assignment]
                        yield
                        del self.values[p.name]
                    elif self.values[p.name] is v:
                        yield
                    else:
                        if self.explain:
                            self.fail("{} must be the same value as %{}", value_text(v), self.values[p.name].name)
        else:  # pragma: no cover - guarded by as_pattern
            raise TypeError(p)

    def _check(self, where, subject, what) -> bool:
        if where is None:
            return True
        ok = where(subject)
        if ok is None or ok is True:
            return True
        if self.explain:
            self.fail("{}: {}", what(), ok if isinstance(ok, str) else "constraint not met")
        return False

    def _var(self, p: Var, v: Value | None) -> Iterator[None]:
        if v is None:
            if self.explain:
                self.fail("expected a value for {!r}, the input is missing", p)
            return
        if p.name is not None and p.name in self.values:
            if self.values[p.name] is v:
                yield
            else:
                if self.explain:
                    self.fail("{} must be the same value as %{} (bound to {!r}), found {}", p, self.values[p.name].name,
                              p.name, value_text(v))
            return
        t = v.type
        if p.dtypes is not None and t.dtype.name not in p.dtypes:
            if self.explain:
                self.fail("{} is {}, expected dtype {}", value_text(v), t.dtype.name, "|".join(sorted(p.dtypes)))
            return
        if p.rank is not None and t.rank != p.rank:
            if self.explain:
                self.fail("{} has rank {}, expected {}", value_text(v), t.rank, p.rank)
            return
        if p.shape is not None and (len(p.shape) != t.rank or
                                    any(a is not None and a != b for a, b in zip(p.shape, t.shape))):
            if self.explain:
                self.fail("{} has shape {}, expected {}", value_text(v), t, p.shape)
            return
        if p.constant is not None and bool(v.const) != p.constant:
            if self.explain:
                self.fail("{} {} a constant", value_text(v), "is not" if p.constant else "is")
            return
        if not self._check(p.where, v, lambda: f"{value_text(v)} as {p!r}"):
            return
        yield from self._bind(p.name, v)

    def _const(self, p: Const, v: Value | None) -> Iterator[None]:
        if v is None or not v.const or v.data is None:
            if self.explain:
                self.fail("{} is not a constant{}", value_text(v), f" (expected {p!r})" if p.value is not None else "")
            return
        data = v.data
        if p.scalar and data.size != 1:
            if self.explain:
                self.fail("constant %{} has {} elements, expected a scalar{}", v.name, data.size,
                          f" {p!r}" if p.value is not None else "")
            return
        if p.value is not None:
            ok = _close(data, p)
            if not ok:
                shown = data.reshape(-1)[0].item() if data.size == 1 else f"{data.size} values"
                if self.explain:
                    self.fail("constant %{} is {!r}, expected {!r}", v.name, shown, p)
                return
        if not self._check(p.where, v, lambda: f"constant %{v.name}"):
            return
        if p.name in self.values:
            if self.values[p.name] is v:
                yield
            elif self.explain:
                self.fail("constant %{} must be the same value as %{}", v.name, self.values[p.name].name)
            return
        yield from self._bind(p.name, v)

    def _bind(self, name: str | None, v: Value) -> Iterator[None]:
        """Hold ``name`` → ``v`` while the rest of the pattern matches (nothing for an unnamed part)."""
        if name is None:
            yield
            return
        self.values[name] = v
        yield
        del self.values[name]

    def _op(self, p: Op, v: Value | None) -> Iterator[None]:
        seen = self.by_pattern.get(id(p))
        if seen is not None:  # the same pattern object reached again: a DAG pattern
            if seen is v:
                yield
            else:
                if self.explain:
                    self.fail("{} must be the same value as %{}", value_text(v), seen.name)
            return
        node = v.producer if v is not None else None
        if node is None:
            if self.explain:
                self.fail("{} is not produced by {}", value_text(v), p.op_text)
            return
        if node.op not in p.ops:
            if self.explain:
                self.fail("{} is produced by {}, expected {}", value_text(v), node.op, p.op_text)
            return
        if v.index != p.output:
            if self.explain:
                self.fail("{} is output {} of its {} node, expected output {}", value_text(v), v.index, node.op,
                          p.output)
            return
        # a node reached again through another pattern object (a shared sub-expression such as
        # the cat(θ, θ) feeding both cos and sin) is matched again but counted once
        again = id(node) in self.matched_ids
        if p.name is not None and p.name in self.values and self.values[p.name] is not v:
            if self.explain:
                self.fail("{} must be the same value as %{} ({})", value_text(v), self.values[p.name].name, p.name)
            return
        for key, want in p.attrs.items():
            got = node.attr(key)
            if callable(want):
                ok = want(got)
                if not (ok is None or ok is True):
                    if self.explain:
                        self.fail("{}: attribute {}: {}", node_text(node), key,
                                  ok if isinstance(ok, str) else f"{got!r} does not satisfy the constraint")
                    return
            elif got != want and not (isinstance(want, (list, tuple)) and tuple(want) == got):
                if self.explain:
                    self.fail("{}: attribute {} is {!r}, expected {!r}", node_text(node), key, got, want)
                return
        if not self._check(p.where, node, lambda: node_text(node)):
            return
        if p.inputs is None:  # any inputs
            self._enter(node, p, v, again)
            yield
            self._leave(node, p, v, again)
            return
        inputs = list(node.inputs)
        while inputs and inputs[-1] is None:
            inputs.pop()
        if len(inputs) != len(p.inputs):
            if self.explain:
                self.fail("{} has {} inputs, the pattern expects {}", node_text(node), len(inputs), len(p.inputs))
            return
        commute = p.commute
        if commute is None:
            commute = commutative(node.op)
        orders = [inputs] if not (commute and len(inputs) == 2) else [inputs, inputs[::-1]]
        self._enter(node, p, v, again)
        for order in orders:
            yield from self._seq(p.inputs, order, 0)
        self._leave(node, p, v, again)

    def _enter(self, node: Node, p: Op, v: Value, again: bool) -> None:
        if not again:
            self.matched.append((node, p))
            self.matched_ids.add(id(node))
        self.by_pattern[id(p)] = v
        if p.name is not None and p.name not in self.nodes:
            self.nodes[p.name] = node
            self.values.setdefault(p.name, v)
            self._named.append(True)
        else:
            self._named.append(False)

    def _leave(self, node: Node, p: Op, v: Value, again: bool) -> None:
        if self._named.pop():
            del self.nodes[p.name]  # type: ignore[arg-type]
            if self.values.get(p.name) is v:  # type: ignore[arg-type]
                del self.values[p.name]  # type: ignore[arg-type]
        del self.by_pattern[id(p)]
        if not again:
            self.matched_ids.discard(id(node))
            self.matched.pop()

    def _seq(self, ps, vs, i: int) -> Iterator[None]:
        if i == len(ps):
            yield
            return
        for _ in self.match(ps[i], vs[i]):
            yield from self._seq(ps, vs, i + 1)

    # ------------------------------------------------------------------ after a structural match
    def interior_ok(self) -> bool:
        """Interior nodes must be used only inside the match (unless their pattern allows more)."""
        root = self.matched[0][0]
        for node, p in self.matched[1:]:
            if p.uses == "any":
                continue
            for out in node.outputs:
                for user, _ in out.uses:
                    if user.is_return:
                        if self.explain:
                            self.fail("{} is a graph output, so {} cannot be fused away", value_text(out),
                                      node_text(node), bonus=0.5)
                        return False
                    if id(user) not in self.matched_ids:
                        if self.explain:
                            self.fail("{} is also used outside the pattern, by {}", value_text(out), node_text(user),
                                      bonus=0.5)
                        return False
        del root
        return True

    def snapshot(self) -> Match:
        return Match(self.matched[0][0], dict(self.values), dict(self.nodes), [n for n, _ in self.matched])
