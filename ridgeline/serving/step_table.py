"""How long one engine iteration takes: the step-time interface and the cost-model table behind it.

An iteration (one forward pass of a serving engine) decodes one token for each of ``batch``
running sequences (mean KV context ``context``) and processes prefill ``chunks`` — ``(tokens,
context_after)`` pairs, one per prompt (or prompt chunk) in the step. ``StepTime.time`` prices it.

``EstimateTable`` asks the cost models (``ridgeline.estimate`` on preset graphs) for decode steps
on a grid of batch sizes (powers of 2) × contexts (powers of 4 from 128) and for single prefills
on a grid of prompt tokens (powers of 2) × contexts, each point estimated once, lazily, and
interpolates linearly in between — so a simulation of 10,000 requests needs a few dozen
estimates, not millions.

Composition (an assumption, stated in docs/serving.md): weights are read once per iteration, so
a step's prefill chunks and its decode batch share the weight-streaming floor ``F`` (the batch-1
decode step at 128 tokens of context) — ``t = D + max(0, Σ P_i − k·F)`` where ``D`` is the
decode batch's step, ``P_i`` the chunks' prefills (``k`` of them); with no decode batch it is
``Σ P_i − (k−1)·F``. Both are floored at the largest single part.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["EstimateTable", "LinearStepTime", "StepTime", "compose"]

log = logging.getLogger(__name__)

Chunks = Sequence[tuple[int, float]]


class StepTime(Protocol):
    """Prices one iteration; see the module docstring."""

    def time(self, batch: int, context: float, chunks: Chunks = ()) -> float: ...


@dataclass(frozen=True)
class LinearStepTime:
    """A hand-computable step: ``fixed + per_seq·batch + per_ctx·batch·context`` for decode plus
    ``per_token·tokens + per_token_ctx·tokens·context`` per prefill chunk (one ``fixed`` per step).

    For tests and back-of-envelope studies: every number it produces can be computed by hand.
    """

    fixed: float = 0.01
    per_seq: float = 0.0
    per_ctx: float = 0.0
    per_token: float = 0.0
    per_token_ctx: float = 0.0

    def time(self, batch: int, context: float, chunks: Chunks = ()) -> float:
        t = self.fixed + batch * (self.per_seq + self.per_ctx * context)
        for n, c in chunks:
            t += n * (self.per_token + self.per_token_ctx * c)
        return t


def compose(decode: float | None, prefills: Sequence[float], floor: float) -> float:
    """One iteration from its decode-batch step and its prefills sharing one weight read (``floor``)."""
    if not prefills:
        return decode or 0.0
    parts = list(prefills) + ([decode] if decode is not None else [])
    shared = len(parts) - 1
    return max(max(parts), sum(parts) - shared * floor)


def _bracket(x: float, base: float, lo: float) -> tuple[float, float, float]:
    """Grid points ``a <= x <= b`` (powers of ``base`` from ``lo``) and x's weight toward ``b``."""
    if x <= lo:
        return lo, lo, 0.0
    k = math.floor(math.log(x / lo, base) + 1e-12)
    a = lo * base ** k
    if abs(a - x) < 1e-9 * x:
        return a, a, 0.0
    b = a * base
    return a, b, (x - a) / (b - a)


class EstimateTable:
    """Step times of ``model`` on ``target`` from the cost models, cached and interpolated.

    ``estimator(phase, batch, context, prompt) -> seconds`` may replace the cost models (tests);
    by default it is ``ridgeline.estimate`` of the preset graph with ``options`` (tp, pp, dtypes).
    """

    CONTEXT_BASE = 4.0
    CONTEXT_MIN = 128.0

    def __init__(self, estimator: Callable[[str, int, int, int], float]):
        self._estimate = estimator
        self._cache: dict[tuple[str, int, int, int], float] = {}
        self.seconds = 0.0      # spent in the estimator
        self.floor = self.decode(1, self.CONTEXT_MIN)

    # -- grid points --------------------------------------------------------------------------
    def _point(self, phase: str, batch: int, context: int, prompt: int) -> float:
        key = (phase, batch, context, prompt)
        t = self._cache.get(key)
        if t is None:
            t0 = time.perf_counter()
            t = float(self._estimate(phase, batch, context, prompt))
            self.seconds += time.perf_counter() - t0
            if not (t > 0 and math.isfinite(t)):
                raise ValueError(f"step-time estimator returned {t} for {key}")
            self._cache[key] = t
            log.info("step table: %s batch=%d context=%d prompt=%d -> %.4g s", phase, batch, context, prompt, t)
        return t

    @property
    def points(self) -> int:
        """How many cost-model estimates the table has made."""
        return len(self._cache)

    # -- interpolation ------------------------------------------------------------------------
    def decode(self, batch: float, context: float) -> float:
        """One decode step of ``batch`` sequences at mean KV context ``context`` (after the step)."""
        b0, b1, wb = _bracket(max(batch, 1.0), 2.0, 1.0)
        c0, c1, wc = _bracket(max(context, self.CONTEXT_MIN), self.CONTEXT_BASE, self.CONTEXT_MIN)

        def at(b: float, c: float) -> float:
            return self._point("decode", int(b), int(c), 1)

        lo = at(b0, c0) if wc == 0 else (1 - wc) * at(b0, c0) + wc * at(b0, c1)
        if wb == 0:
            return lo
        hi = at(b1, c0) if wc == 0 else (1 - wc) * at(b1, c0) + wc * at(b1, c1)
        return (1 - wb) * lo + wb * hi

    def prefill(self, tokens: float, context: float) -> float:
        """Prefill of ``tokens`` new tokens of one sequence whose KV context is ``context`` after it."""
        n0, n1, wn = _bracket(max(tokens, 1.0), 2.0, 1.0)

        def at_n(n: float) -> float:
            c = max(context, n)
            lo = max(n, self.CONTEXT_MIN)
            c0, c1, wc = _bracket(c, self.CONTEXT_BASE, lo)
            t0 = self._point("prefill", 1, int(c0), int(n))
            return t0 if wc == 0 else (1 - wc) * t0 + wc * self._point("prefill", 1, int(c1), int(n))

        t = at_n(n0)
        return t if wn == 0 else (1 - wn) * t + wn * at_n(n1)

    def time(self, batch: int, context: float, chunks: Chunks = ()) -> float:
        dec = self.decode(batch, context) if batch else None
        return compose(dec, [self.prefill(n, c) for n, c in chunks], self.floor)


def estimate_on(graph, target: Any, **options: Any):
    """``ridgeline.estimate`` of ``graph`` without a companion; ``target`` a name or a ``Target``
    (a sweep's variant, which no registry knows by name)."""
    from ..backends.estimate import EstimateBackend
    return EstimateBackend(target).compile(graph, companion=None, **options)


def preset_estimator(model: str, target: Any, options: dict[str, Any],
                     preset_options: dict[str, Any]) -> Callable[[str, int, int, int], float]:
    """``(phase, batch, context, prompt) -> seconds`` through one estimate of a preset's step."""

    def run(phase: str, batch: int, context: int, prompt: int) -> float:
        kw = dict(preset_options, phase=phase, batch=batch, context=max(context, 2))
        if phase == "prefill":
            kw["prompt"] = min(prompt, kw["context"])
        return preset_step(model, target, options, **kw)[1].time_s

    return run


def preset_step(model: str, target: Any, options: dict[str, Any], **build: Any) -> tuple[Any, Any]:
    """``(graph, estimate)`` of one step of the preset ``model`` (no companion phase): what serve-sim
    prices. A graph file is refused by name: serving needs a transformer config."""
    import os

    from ..ir.errors import ModelError
    from ..models import build as build_preset
    from ..models import find_preset
    if find_preset(model) is None and os.path.exists(model):
        raise ModelError(f"{model}: serve-sim needs an LLM preset (a transformer config), not a graph file")
    g = build_preset(model, **build)
    return g, estimate_on(g, target, **options)   # a Target (a sweep's variant) too
