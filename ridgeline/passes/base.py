"""The pass contract: a named, in-place rewrite of a graph with typed options.

A pass is a small class whose dataclass fields are its options (xDSL's habit), or a function whose
keyword-only parameters are; either way ``register_pass`` turns it into a ``Pass`` subclass::

    @register_pass("fuse-elementwise")
    class FuseElementwise(Pass):
        '''Fuse chains of elementwise ops into one Fused node.'''
        max_nodes: int = 16                      # the option `max-nodes`

        def run(self, graph, ctx) -> PassResult:
            ...

A pass rewrites ``graph`` in place and returns a ``PassResult`` (or just a bool: did it change
the graph). Option names are the field names in kebab case, so ``FuseElementwise(max_nodes=8)``
prints as ``fuse-elementwise{max-nodes=8}`` and parses back to the same pass.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import re
import typing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Literal, Mapping

from ..ir import Graph
from ..ir.errors import PipelineError

if TYPE_CHECKING:
    from .evaluate import Evaluator

__all__ = ["Pass", "PassResult", "PassContext", "OptionSpec", "options_of", "format_option_value",
           "parse_option_value", "kebab"]


@dataclass(frozen=True)
class PassResult:
    """What a pass did: the graph (rewritten in place), whether it changed, and remarks for the report."""

    graph: Graph
    modified: bool
    #: one-line remarks shown in reports (``--explain`` near-misses, folding limits, ...)
    notes: tuple[str, ...] = ()
    #: counters such as rewrites per rule: ``{"gelu-tanh": 12}``
    stats: Mapping[str, int] = field(default_factory=dict)


class PassContext:
    """What the pass manager hands every pass besides the graph.

    ``evaluator`` computes a node's outputs from constant inputs (for ``fold-constants``; the
    ``ridgeline.api`` layer injects the numpy reference). ``explain`` asks rewrite passes to report
    why their rules did not fire. ``note`` adds a line to the pass's report.
    """

    def __init__(self, *, evaluator: "Evaluator | None" = None, explain: bool = False,
                 logger: logging.Logger | None = None):
        self.evaluator = evaluator
        self.explain = explain
        self.log = logger or logging.getLogger("ridgeline.passes")
        self.notes: list[str] = []

    def note(self, message: str) -> None:
        self.notes.append(message)
        self.log.info("%s", message)


def kebab(name: str) -> str:
    """``max_nodes`` -> ``max-nodes``; ``FuseGelu`` -> ``fuse-gelu``."""
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i and (name[i - 1].islower() or name[i - 1].isdigit()):
            out.append("-")
        out.append("-" if ch == "_" else ch.lower())
    return "".join(out).strip("-")


@dataclass(frozen=True)
class OptionSpec:
    """One typed option: ``max-nodes: int = 16``. ``kind`` is int, float, bool, str or choice."""

    name: str                 # kebab-case, as written in pipelines
    field: str                # the Python field / parameter name
    kind: str
    default: Any = dataclasses.MISSING
    choices: tuple[str, ...] = ()
    doc: str = ""
    #: inclusive bounds of an int/float option (``field(metadata={"lo": 1, "hi": 100})``); an int
    #: option without a declared ``lo`` is a count or size and may not be negative
    lo: float | None = None
    hi: float | None = None

    def check(self, value: Any, pass_name: str) -> None:
        """A ``PipelineError`` naming the option unless ``value`` fits its kind and bounds."""
        if self.kind in ("int", "float") and not isinstance(value, bool) and isinstance(value, (int, float)):
            if self.kind == "int" and not isinstance(value, int):
                raise PipelineError(f"pass {pass_name}: option {self.name} expects an integer, got {value!r}")
            if not math.isfinite(value):
                raise PipelineError(f"pass {pass_name}: option {self.name} expects a finite number, got {value!r}")
            if (self.lo is not None and value < self.lo) or (self.hi is not None and value > self.hi):
                lo = "" if self.lo is None else f"at least {self.lo:g}"
                hi = "" if self.hi is None else f"at most {self.hi:g}"
                raise PipelineError(f"pass {pass_name}: option {self.name} must be {' and '.join(x for x in (lo, hi) if x)}, "
                                    f"got {value!r}")

    @property
    def required(self) -> bool:
        return self.default is dataclasses.MISSING

    @property
    def type_text(self) -> str:
        return "|".join(self.choices) if self.kind == "choice" else self.kind

    def __str__(self) -> str:
        if self.required:
            return f"{self.name}: {self.type_text} (required)"
        return f"{self.name}: {self.type_text} = {format_option_value(self.default)}"


_KINDS: dict[Any, str] = {int: "int", float: "float", bool: "bool", str: "str"}


def _kind_of(annotation: Any, where: str) -> tuple[str, tuple[str, ...]]:
    if annotation in _KINDS:
        return _KINDS[annotation], ()
    if typing.get_origin(annotation) is Literal:
        choices = typing.get_args(annotation)
        if all(isinstance(c, str) for c in choices):
            return "choice", tuple(choices)
    raise TypeError(f"{where}: option type {annotation!r} is not supported "
                    f"(use int, float, bool, str or Literal[...] of strings)")


@functools.cache  # every pass run asks; get_type_hints compiles each string annotation anew
def options_of(cls: type) -> tuple[OptionSpec, ...]:
    """The options of a pass class: its dataclass fields, minus private (``_``) ones."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        if f.name.startswith("_") or not f.init:
            continue
        kind, choices = _kind_of(hints.get(f.name, f.type), f"{cls.__name__}.{f.name}")
        default = f.default
        if default is dataclasses.MISSING and f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            default = f.default_factory()  # type: ignore[misc]
        lo = f.metadata.get("lo", 0 if kind == "int" else None)
        out.append(OptionSpec(kebab(f.name), f.name, kind, default, choices, f.metadata.get("doc", ""),
                              lo, f.metadata.get("hi")))
    return tuple(out)


_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}
#: option kind -> (what its text must match, what it is, its type); ASCII digits only: no 1_000, no ٣
_NUMBERS = {"int": (r"[-+]?[0-9]{1,19}", "an integer", int),
            "float": (r"[-+]?([0-9]{1,30}\.?[0-9]{0,30}|\.[0-9]{1,30})([eE][-+]?[0-9]{1,4})?", "a number", float)}


def parse_option_value(spec: OptionSpec, text: str, *, pass_name: str) -> Any:
    """Convert the text of an option to its type; a mismatch names the option and its type."""
    def bad(expected: str):
        return PipelineError(f"pass {pass_name}: option {spec.name} expects {expected}, got {text!r}")
    if spec.kind in _NUMBERS:
        pattern, what, convert = _NUMBERS[spec.kind]
        if not re.fullmatch(pattern, text.strip()):
            raise bad(what)
        value = convert(text)
        spec.check(value, pass_name)
        return value
    if spec.kind == "bool":
        low = text.lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise bad("true or false")
    if spec.kind == "choice":
        if text not in spec.choices:
            raise bad("one of " + ", ".join(spec.choices))
        return text
    return text


def format_option_value(value: Any) -> str:
    """The pipeline spelling of an option value (strings quoted only when they need it)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        return str(value)
    text = str(value)
    if text and all(ch.isalnum() or ch in "_.-+/:" for ch in text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Pass:
    """Base of every pass. Subclasses are frozen dataclasses; fields are options.

    Set ``name`` (kebab-case) or let ``register_pass`` derive it; the first docstring line is
    the summary ``ridgeline passes`` shows. Implement ``run(graph, ctx)``.
    """

    name: ClassVar[str] = ""
    #: where the pass comes from: "built-in", "plugin <package>" or "local <module>"
    origin: ClassVar[str] = "local"
    #: what the pass rewrites: idiom names of ``ridgeline.testing.strategies.IDIOMS`` and op or
    #: category names; ``check_pass`` generates graphs holding them (empty: random graphs only)
    touches: ClassVar[tuple[str, ...]] = ()

    def run(self, graph: Graph, ctx: PassContext) -> PassResult | bool:  # pragma: no cover - abstract
        raise NotImplementedError(f"pass {self.name} does not implement run()")

    def requires(self, graph: Graph) -> None:
        """Check the pass's precondition on ``graph``; raise to refuse (the manager names the pass)."""

    def ensures(self, graph: Graph) -> None:
        """Check the pass's postcondition after it ran; raise to report a broken promise."""

    def __call__(self, graph: Graph, ctx: PassContext | None = None) -> PassResult:
        """Run once, outside a pipeline; a bool result becomes a ``PassResult``."""
        ctx = ctx or PassContext()
        self.check_options()
        result = check_result(self.run(graph, ctx), self.name, graph)
        if ctx.notes and not result.notes:
            result = dataclasses.replace(result, notes=tuple(ctx.notes))
        return result

    @classmethod
    def options(cls) -> tuple[OptionSpec, ...]:
        return options_of(cls)

    def check_options(self) -> None:
        """A ``PipelineError`` naming the first option whose value is outside its declared range."""
        for o in self.options():
            o.check(getattr(self, o.field), self.name)

    @classmethod
    def summary(cls) -> str:
        doc = (cls.__doc__ or "").strip()
        return doc.splitlines()[0].strip() if doc else ""

    def option_values(self) -> dict[str, Any]:
        """Options that differ from their defaults, by kebab name."""
        out = {}
        for o in self.options():
            v = getattr(self, o.field)
            if o.required or v != o.default:
                out[o.name] = v
        return out

    def __str__(self) -> str:
        opts = self.option_values()
        if not opts:
            return self.name
        return self.name + "{" + ",".join(f"{k}={format_option_value(v)}" for k, v in opts.items()) + "}"


class FunctionPass(Pass):
    """A pass made from a function ``fn(graph, [ctx,] *, option=default, ...) -> bool | PassResult``."""

    _fn: ClassVar[Callable[..., Any]]
    _wants_ctx: ClassVar[bool]

    def run(self, graph: Graph, ctx: PassContext) -> PassResult | bool:
        kwargs = {o.field: getattr(self, o.field) for o in self.options()}
        fn = type(self)._fn
        return fn(graph, ctx, **kwargs) if self._wants_ctx else fn(graph, **kwargs)


def pass_from_function(fn: Callable[..., Any], name: str) -> type[Pass]:
    """Wrap ``fn`` in a frozen dataclass ``Pass`` whose fields are its keyword-only parameters."""
    import inspect
    sig = inspect.signature(fn)
    params = list(sig.parameters.values())
    if not params or params[0].kind not in (params[0].POSITIONAL_ONLY, params[0].POSITIONAL_OR_KEYWORD):
        raise TypeError(f"pass function {fn.__qualname__} must take the graph as its first argument")
    wants_ctx = len(params) > 1 and params[1].name == "ctx" and params[1].kind != params[1].KEYWORD_ONLY
    hints = typing.get_type_hints(fn)
    fields: list[tuple[str, Any, Any]] = []
    for p in params[2 if wants_ctx else 1:]:
        if p.kind != p.KEYWORD_ONLY:
            raise TypeError(f"pass function {fn.__qualname__}: option {p.name} must be keyword-only "
                            f"(put a `*` before the options)")
        ann = hints.get(p.name, type(p.default) if p.default is not p.empty else str)
        _kind_of(ann, f"{fn.__qualname__}.{p.name}")
        fields.append((p.name, ann, field() if p.default is p.empty else field(default=p.default)))
    cls_name = "".join(part.capitalize() for part in name.replace("_", "-").split("-")) or "FunctionPass"
    ns = {"__doc__": fn.__doc__, "_fn": staticmethod(fn), "_wants_ctx": wants_ctx, "__module__": fn.__module__}
    return dataclasses.make_dataclass(cls_name, fields, bases=(FunctionPass,), frozen=True, kw_only=True,
                                      namespace=ns)


def ensure_dataclass(cls: type) -> type:
    """Make a plain ``Pass`` subclass a frozen dataclass, so its annotated attributes are options."""
    if "__dataclass_fields__" in cls.__dict__:
        return cls
    options_of.cache_clear()   # the class is changed in place: options read before are stale
    return dataclass(frozen=True, kw_only=True)(cls)


def check_result(result: Any, name: str, graph: Graph) -> PassResult:
    if isinstance(result, PassResult):
        return result
    if isinstance(result, bool):
        return PassResult(graph, result)
    raise TypeError(f"pass {name} returned {type(result).__name__}; return a PassResult or a bool")
