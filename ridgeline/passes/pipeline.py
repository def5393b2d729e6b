"""Pipeline text: ``canonicalize,fuse-attention,fuse-elementwise{max-nodes=16},dce``.

Grammar (whitespace is free between tokens)::

    pipeline := [item (',' item)*]
    item     := NAME ['{' [option (',' option)*] '}']
    option   := NAME '=' (BARE | "quoted \\"string\\"")

A named pipeline such as ``default`` expands in place. ``str(parse_pipeline(text))`` is the
canonical spelling, and parsing it again gives the same pipeline: options print as given, so a
pipeline round-trips through CLI flags, reports and error messages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from ..ir.errors import PipelineError
from .base import OptionSpec, Pass, format_option_value, parse_option_value
from .registry import get_pass, get_pipeline

__all__ = ["PassInvocation", "Pipeline", "parse_pipeline"]


@dataclass(frozen=True)
class PassInvocation:
    """One pass of a pipeline with the options written for it (kebab names, typed values)."""

    cls: type[Pass]
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.cls.name

    def instantiate(self) -> Pass:
        specs = {o.name: o for o in self.cls.options()}
        kwargs = {specs[k].field: v for k, v in self.options.items()}
        missing = [o.name for o in specs.values() if o.required and o.name not in self.options]
        if missing:
            raise PipelineError(f"pass {self.name}: option {', '.join(missing)} is required "
                                f"(write {self.name}{{{missing[0]}=...}})")
        try:
            return self.cls(**kwargs)
        except (TypeError, ValueError) as e:
            raise PipelineError(f"pass {self.name}: bad options: {e}") from None

    def __str__(self) -> str:
        if not self.options:
            return self.name
        return self.name + "{" + ",".join(f"{k}={format_option_value(v)}" for k, v in self.options.items()) + "}"


@dataclass(frozen=True)
class Pipeline:
    """An ordered list of pass invocations; ``str()`` is its canonical text."""

    passes: tuple[PassInvocation, ...] = ()

    def __str__(self) -> str:
        return ",".join(str(p) for p in self.passes)

    def __len__(self) -> int:
        return len(self.passes)

    def __iter__(self):
        return iter(self.passes)


_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<str>"(?:[^"\\]|\\.)*")
  | (?P<punct>[{},=])
  | (?P<bare>[^\s{},="]+)
""", re.VERBOSE)


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.toks: list[tuple[str, str, int]] = []
        pos = 0
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if m is None:  # an unterminated quote
                self.fail(pos, "unterminated string")
            if m.lastgroup != "ws":
                self.toks.append((m.lastgroup, m.group(), pos))
            pos = m.end()
        self.i = 0

    def fail(self, pos: int, what: str):
        raise PipelineError(f"malformed pipeline {self.text!r} at column {pos + 1}: {what}")

    def peek(self) -> tuple[str, str, int] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> tuple[str, str, int]:
        tok = self.peek()
        if tok is None:
            self.fail(len(self.text), "unexpected end")
        self.i += 1
        return tok  # type: ignore[return-value]

    def expect(self, text: str, what: str) -> None:
        tok = self.peek()
        if tok is None or tok[1] != text or tok[0] != "punct":
            got = f"{tok[1]!r}" if tok else "the end"
            self.fail(tok[2] if tok else len(self.text), f"expected {what}, found {got}")
        self.i += 1

    def name(self, what: str) -> tuple[str, int]:
        tok = self.peek()
        if tok is None or tok[0] != "bare":
            got = f"{tok[1]!r}" if tok else "the end"
            self.fail(tok[2] if tok else len(self.text), f"expected {what}, found {got}")
        self.i += 1
        return tok[1], tok[2]

    def items(self) -> list[tuple[str, int, list[tuple[str, str, int]]]]:
        out = []
        if self.peek() is None:
            return out
        while True:
            name, pos = self.name("a pass name")
            opts: list[tuple[str, str, int]] = []
            tok = self.peek()
            if tok is not None and tok[1] == "{" and tok[0] == "punct":
                self.i += 1
                if not (self.peek() and self.peek()[1] == "}"):
                    while True:
                        key, kpos = self.name("an option name")
                        self.expect("=", f"'=' after option {key}")
                        vtok = self.take()
                        if vtok[0] == "str":
                            value = re.sub(r"\\(.)", r"\1", vtok[1][1:-1])
                        elif vtok[0] == "bare":
                            value = vtok[1]
                        else:
                            self.fail(vtok[2], f"expected a value for option {key}, found {vtok[1]!r}")
                        opts.append((key, value, kpos))
                        tok = self.peek()
                        if tok is not None and tok[1] == "," and tok[0] == "punct":
                            self.i += 1
                            continue
                        break
                self.expect("}", "',' or '}' closing the options of " + name)
            out.append((name, pos, opts))
            tok = self.peek()
            if tok is None:
                return out
            if tok[1] != "," or tok[0] != "punct":
                self.fail(tok[2], f"expected ',' between passes, found {tok[1]!r}")
            self.i += 1


def _option(cls: type[Pass], key: str) -> OptionSpec:
    specs = cls.options()
    norm = key.replace("_", "-")
    for o in specs:
        if o.name == norm:
            return o
    listing = ", ".join(str(o) for o in specs) or "none"
    raise PipelineError(f"pass {cls.name} has no option {key!r} (options: {listing})")


def parse_pipeline(text: str | Pipeline | Sequence[Any]) -> Pipeline:
    """Parse pipeline text (or pass through a ``Pipeline`` / a list of passes and names)."""
    if isinstance(text, Pipeline):
        return text
    if not isinstance(text, str):
        items = []
        for p in text:
            if isinstance(p, PassInvocation):
                items.append(p)
            elif isinstance(p, Pass):
                items.append(PassInvocation(type(p), p.option_values()))
            elif isinstance(p, str):
                items.extend(parse_pipeline(p).passes)
            elif isinstance(p, type) and issubclass(p, Pass):
                items.append(PassInvocation(p, {}))
            else:
                raise PipelineError(f"not a pass: {p!r}")
        return Pipeline(tuple(items))
    return Pipeline(tuple(_expand(text, ())))


def _expand(text: str, stack: tuple[str, ...]) -> list[PassInvocation]:
    out: list[PassInvocation] = []
    for name, pos, opts in _Parser(text).items():
        alias = get_pipeline(name)
        if alias is not None:
            if opts:
                raise PipelineError(f"pipeline {name!r} takes no options (it is {alias})")
            if name in stack:
                raise PipelineError(f"pipeline {name!r} includes itself ({' -> '.join(stack + (name,))})")
            out.extend(_expand(alias, stack + (name,)))
            continue
        cls = get_pass(name)
        values: dict[str, Any] = {}
        for key, value, _ in opts:
            spec = _option(cls, key)
            if spec.name in values:
                raise PipelineError(f"pass {name}: option {spec.name} is given twice")
            values[spec.name] = parse_option_value(spec, value, pass_name=name)
        inv = PassInvocation(cls, values)
        inv.instantiate()  # required options and constructor checks fail now, not mid-pipeline
        out.append(inv)
    return out
