"""Rules and the greedy driver that applies them to a fixed point.

A ``Rule`` is a pattern rooted at an op, an optional ``check`` on the match (returning a reason
when it rejects), and a ``rewrite`` that builds the replacement before the root and returns the
value(s) replacing the root's outputs — or a ``{old: new}`` dict to also replace other values of
the match (an attention absorbing the KV-cache Concats that are graph outputs) — or ``None`` to
decline. The driver works like MLIR's
greedy pattern rewriter: a worklist seeded with every node, consumers first (so the largest
pattern ending at a node is tried before its parts are); a node is tried against
the rules indexed by its op (highest ``benefit`` first); after a rewrite the new nodes, the
users of the new values and the producers that lost a use go back on the worklist, and nodes
left dead are erased at once. Nothing rescans the graph, so the work is linear in the number of
nodes plus rewrites.

With ``explain=True`` the driver remembers, for every rule, the candidate that came closest to
matching and the constraint that failed there; ``explain(rules, graph)`` returns those lines
without changing the graph.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

from ...ir import Graph, Node, Value
from ...ir.errors import PassError
from .edit import RewriteBuilder, adopt_name, erase_dead, output_slots, replace_value
from .match import Match, Matcher, commutative, node_text
from .pattern import Const, OneOf, Op, Pattern, count_ops

__all__ = ["Rule", "RewriteStats", "apply_rules", "explain", "try_rule"]

Check = Callable[[Match], "bool | str | None"]
Rewrite = Callable[[Match, RewriteBuilder], "Value | Sequence[Value | None] | None"]


@dataclass
class Rule:
    """``pattern`` (rooted at an op) → ``rewrite(match, builder)``; ``check`` may reject with a reason."""

    name: str
    pattern: Pattern
    rewrite: Rewrite
    check: Check | None = None
    benefit: int = 1
    doc: str = ""

    def __post_init__(self):
        self.roots = _root_ops(self.pattern)
        self.size = count_ops(self.pattern)

    def __repr__(self) -> str:
        return f"<Rule {self.name}: {self.pattern!r}>"


def _root_ops(p: Pattern) -> frozenset[str]:
    if isinstance(p, Op):
        return p.ops
    if isinstance(p, OneOf):
        out: set[str] = set()
        for a in p.alternatives:
            out |= _root_ops(a)
        return frozenset(out)
    raise TypeError(f"a rule's pattern must be rooted at an op, got {p!r}")


def _root_output(p: Pattern, node: Node) -> Value | None:
    idx = p.output if isinstance(p, Op) else 0
    return node.outputs[idx] if idx < len(node.outputs) else None


@dataclass
class _Miss:
    score: float = -1.0
    reason: str = ""
    where: str = ""
    candidates: int = 0

    def note(self, matcher: Matcher, node: Node) -> None:
        """One more node the rule did not match; keep the failure that got furthest."""
        self.candidates += 1
        if matcher.best is not None and matcher.best[0] > self.score:
            self.score, self.reason = matcher.best
            self.where = node_text(node)


@dataclass
class RewriteStats:
    """Rewrites per rule, and (with ``explain``) a line per rule that never fired."""

    rewrites: Counter = field(default_factory=Counter)
    near_misses: dict[str, str] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.rewrites.values())


def _cannot_match(p: Pattern, node: Node) -> bool:
    """A cheap look one level up: the root's op and its inputs' producer ops (no generators)."""
    if isinstance(p, OneOf):
        for a in p.alternatives:
            if not _cannot_match(a, node):
                return False
        return True
    if not isinstance(p, Op):
        return False
    if node.op not in p.ops:
        return True
    wants = p.inputs
    if wants is None:
        return False
    ins = node.inputs
    n = len(ins)
    while n and ins[n - 1] is None:
        n -= 1
    if n != len(wants):
        return True
    if _inputs_fit(wants, ins, 0, 1):
        return False
    return not (n == 2 and commutative(node.op) and _inputs_fit(wants, ins, 1, -1))


def _inputs_fit(wants, ins, start: int, step: int) -> bool:
    k = start
    for q in wants:
        if isinstance(q, Op):
            v = ins[k]
            if v is None or v.producer is None or v.producer.op not in q.ops:
                return False
        elif isinstance(q, Const):
            v = ins[k]
            if v is None or v.data is None or (q.scalar and v.data.size != 1):
                return False
        k += step
    return True


def try_rule(rule: Rule, node: Node, matcher: Matcher) -> Match | None:
    """Match ``rule`` at ``node``: structure, then interior uses, then the rule's check."""
    if not matcher.explain and _cannot_match(rule.pattern, node):
        return None
    matcher.reset()
    v = _root_output(rule.pattern, node)
    if v is None:
        return None
    for _ in matcher.match(rule.pattern, v):
        if not matcher.interior_ok():
            continue
        m = matcher.snapshot()
        if rule.check is not None:
            ok = rule.check(m)
            if not (ok is None or ok is True):
                matcher.fail("{}", ok if isinstance(ok, str) else f"rule {rule.name}: check failed",
                             bonus=0.75 + rule.size)
                continue
        return m
    return None


def _miss_line(rule: Rule, miss: _Miss | None) -> str:
    if miss is None or miss.candidates == 0:
        return f"{rule.name}: did not fire: no {'|'.join(sorted(rule.roots))} node in the graph"
    matched = min(int(miss.score), rule.size)
    return (f"{rule.name}: did not fire on {miss.candidates} candidate(s); nearest: {miss.where} matched "
            f"{matched}/{rule.size} pattern ops, then {miss.reason}")


def apply_rules(graph: Graph, rules: Sequence[Rule], *, explain: bool = False,
                max_rewrites: int | None = None) -> RewriteStats:
    """Apply ``rules`` greedily until none matches; returns what fired (and near-misses)."""
    by_op: dict[str, list[Rule]] = {}
    for r in sorted(rules, key=lambda r: -r.benefit):
        for op in r.roots:
            by_op.setdefault(op, []).append(r)
    stats = RewriteStats()
    misses: dict[str, _Miss] = {}
    matcher = Matcher(explain)
    limit = max_rewrites if max_rewrites is not None else 8 * len(graph) + 64
    stack: list[Node] = []
    queued: dict[int, Node] = {}

    def push(n: Node) -> None:
        if queued.get(id(n)) is not n:
            queued[id(n)] = n
            stack.append(n)

    # consumers first: a pattern is tried at its last node before any of its parts is, so the
    # largest match wins (LayerNorm·scale+bias before LayerNorm alone)
    for n in graph:
        if n.op in by_op:
            push(n)
    while stack:
        node = stack.pop()
        queued.pop(id(node), None)
        if node.graph is not graph:
            continue
        for rule in by_op.get(node.op, ()):
            m = try_rule(rule, node, matcher)
            if m is None:
                if explain:
                    misses.setdefault(rule.name, _Miss()).note(matcher, node)
                continue
            if _apply(graph, rule, m, push):
                stats.rewrites[rule.name] += 1
                if stats.total > limit:
                    top = ", ".join(f"{k} ({v})" for k, v in stats.rewrites.most_common(3))
                    raise PassError(f"rewrite rules did not converge after {stats.total} rewrites "
                                    f"(most frequent: {top}); two rules probably undo each other")
                break
    if explain:
        for r in rules:
            if stats.rewrites[r.name] == 0:
                stats.near_misses[r.name] = _miss_line(r, misses.get(r.name))
    return stats


def _pairs(root: Node, result) -> list[tuple[Value, Value | None]]:
    """(old, new) replacements: the root's outputs in order, or an explicit {old: new} mapping."""
    if isinstance(result, dict):
        return list(result.items())
    news = [result] if isinstance(result, Value) else list(result)
    news += [None] * (len(root.outputs) - len(news))
    return list(zip(root.outputs, news))


def _same_type(a, b) -> bool:
    """Same dtype and shape, a dim nobody knows (``_u…``) matching any other."""
    from ...ir.infer import is_unknown
    return a.dtype == b.dtype and a.rank == b.rank and all(
        x == y or is_unknown(x) or is_unknown(y) for x, y in zip(a.shape, b.shape))


def _apply(graph: Graph, rule: Rule, m: Match, push: Callable[[Node], None]) -> bool:
    root = m.root
    b = RewriteBuilder(graph, before=root, hint=root.outputs[0].name if root.outputs else "")
    result = rule.rewrite(m, b)
    if result is None:
        erase_dead(graph, reversed(b.created))
        return False
    pairs = _pairs(root, result)
    created = {id(n) for n in b.created}
    if any(new is not None and not _same_type(old.type, new.type) for old, new in pairs):
        # a replacement of another type is a rule that overlooked a broadcast (Gelu(x) for
        # ½·x·(1 + tanh(...)) whose constant 1 is [1] while x is a scalar): keep the original
        erase_dead(graph, reversed(b.created))
        return False
    for old, new in pairs:
        # an output replaced by an input, a constant or another output would only move its name
        # onto an Identity: no progress, and a fixed point would never be reached
        if (new is not None and new is not old and output_slots(graph, old) and
                (new.producer is None or id(new.producer) not in created) and
                (new.producer is None or output_slots(graph, new))):
            erase_dead(graph, reversed(b.created))
            return False
    if all(new is old or new is None for old, new in pairs):
        erase_dead(graph, reversed(b.created))
        return False
    renames = []
    for old, new in pairs:
        if new is None or new is old:
            if new is None and old.uses and old.producer is root:
                raise PassError(f"rule {rule.name} gave no replacement for %{old.name}, which is still used")
            continue
        renames.append((old.name, new, output_slots(graph, old)))
        replace_value(graph, old, new)
    touched: list[Node] = []

    def on_erase(n: Node) -> None:
        for v in n.inputs:
            if v is not None and v.producer is not None:
                touched.append(v.producer)
    replaced = [old.producer for old, _ in pairs if old.producer is not None and old.producer is not root]
    erase_dead(graph, [root] + m.matched[1:] + replaced + b.created[::-1], on_erase=on_erase)
    for name, new, slots in renames:
        adopt_name(graph, new, name, created=new.producer is not None and id(new.producer) in created, slots=slots)
    for n in b.created:
        if n.graph is graph:
            push(n)
    for _, new, _ in renames:
        for user, _ in new.uses:
            push(user)
    for n in touched:
        if n.graph is graph:
            push(n)
    return True


def explain(rules: Rule | Iterable[Rule], graph: Graph) -> list[str]:
    """Why each rule does or does not match ``graph`` (the graph is not changed)."""
    rules = [rules] if isinstance(rules, Rule) else list(rules)
    matcher = Matcher(explain=True)
    out = []
    for r in rules:
        miss = _Miss()
        hits = 0
        for node in graph:
            if node.op not in r.roots:
                continue
            if try_rule(r, node, matcher) is not None:
                hits += 1
                continue
            miss.note(matcher, node)
        out.append(f"{r.name}: matches {hits} node(s)" if hits else _miss_line(r, miss))
    return out
