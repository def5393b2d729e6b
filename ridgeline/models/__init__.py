"""Weightless transformer presets: ``build("llama-3-70b", phase="decode", batch=8, context=8192)``.

Presets are published architectures (``preset_names()``) built as graphs whose weights carry only
their types, so the cost models can estimate a 405B-parameter model in milliseconds. Options:

- ``phase``: ``"prefill"`` (process ``prompt`` tokens, default the whole ``context``) or
  ``"decode"`` (one new token attending to ``context - 1`` cached ones); default decode
  (prefill for encoders such as bert-base);
- ``batch``, ``context`` (KV-cache length after the step), ``prompt``;
- ``dtype`` (weights and activations: bf16, fp16, fp32, fp8, int8, int4 — below 8 bits weights
  only), ``weight_dtype``, ``act_dtype``, ``kv_dtype`` override one side; ``weight_group``
  (quantization group along K, default 128 for int4, per channel otherwise);
- ``logits``: ``"last"`` (default: only the last position, as serving does) or ``"all"``;
- ``tp``, ``pp``: recorded in ``graph.meta["llm"]`` as the default split for the cost models.

``companion(graph)`` builds the other phase of a preset graph with the same options (the
estimate backend uses it to report both TTFT and TPOT).
"""

from __future__ import annotations

import difflib
from typing import Any

from ..ir import Graph
from ..ir.errors import ModelError
from .builder import BuildOptions, build_graph, resolve_dtypes
from .config import PRESETS, TransformerConfig

__all__ = ["build", "find_preset", "preset_names", "companion", "companion_build", "TransformerConfig", "PRESETS", "BuildOptions"]

_ALIASES = {name.replace(".", "_"): name for name in PRESETS} | {"bert-base-uncased": "bert-base",
                                                                  "llama-3.1-405B": "llama-3.1-405b"}


def preset_names() -> list[str]:
    return list(PRESETS)


def find_preset(name: str) -> TransformerConfig | None:
    """The preset's config, or None (names are case-insensitive; ``_`` may stand for ``.``)."""
    if not isinstance(name, str):
        return None
    key = name.strip().lower()
    return PRESETS.get(key) or PRESETS.get(_ALIASES.get(key, ""))


#: the largest batch and context a preset is built for: far beyond real use (assumptions, not
#: hardware figures), small enough that no estimate built from them runs or allocates without bound
MAX_BATCH, MAX_CONTEXT = 2 ** 20, 2 ** 30


def _positive(value: Any, what: str, limit: int = MAX_CONTEXT) -> int:
    try:
        v = int(value)
    except (TypeError, ValueError, OverflowError):
        raise ModelError(f"{what} must be a positive integer, got {str(value)[:40]!r}") from None
    if v != value and not (isinstance(value, str) and value.strip().isascii() and value.strip().isdigit()) or v < 1:
        raise ModelError(f"{what} must be a positive integer, got {str(value)[:40]!r}")
    if v > limit:
        raise ModelError(f"{what} {v} is beyond the {limit} ridgeline builds presets for")
    return v


def build(preset: str, *, phase: str | None = None, batch: int = 1, context: int | None = None,
          prompt: int | None = None, dtype: str | None = None, weight_dtype: str | None = None,
          act_dtype: str | None = None, kv_dtype: str | None = None, weight_group: int | None = None,
          logits: str = "last", tp: int | None = None, pp: int | None = None) -> Graph:
    """The weightless graph of one step of ``preset`` (see the module docstring)."""
    cfg = find_preset(preset)
    if cfg is None:
        close = difflib.get_close_matches(str(preset).lower(), list(PRESETS), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ModelError(f"unknown preset {preset!r}{hint}; presets: {', '.join(PRESETS)}")
    if phase is None:
        phase = "decode" if cfg.causal else "prefill"
    if phase not in ("prefill", "decode"):
        raise ModelError(f"phase must be 'prefill' or 'decode', got {phase!r}")
    if phase == "decode" and not cfg.causal:
        raise ModelError(f"{cfg.name} is an encoder: it has no decode phase (use phase=prefill)")
    batch = _positive(batch, "batch", MAX_BATCH)
    context = _positive(context, "context") if context is not None else min(2048, cfg.max_context)
    if not cfg.causal or cfg.arch == "gpt2":
        if context > cfg.max_context:
            raise ModelError(f"context {context} exceeds {cfg.name}'s {cfg.max_context} learned positions")
    if phase == "decode":
        if prompt not in (None, 1):
            raise ModelError("a decode step processes one token; prompt applies to prefill")
        if context < 2:
            raise ModelError("decode needs a context of at least 2 (one cached token and the new one)")
        prompt = 1
    else:
        prompt = _positive(prompt, "prompt") if prompt is not None else context
        if prompt > context:
            raise ModelError(f"prompt ({prompt} tokens) exceeds the context ({context})")
        if not cfg.causal and prompt != context:
            raise ModelError(f"{cfg.name} is an encoder: it has no KV cache, so prompt must equal context")
    if logits not in ("last", "all"):
        raise ModelError(f"logits must be 'last' or 'all', got {logits!r}")
    wd, ad, base, kv = resolve_dtypes(dtype, weight_dtype, act_dtype, kv_dtype)
    if weight_group is None:
        weight_group = 128 if wd == "i4" else 0
    elif int(weight_group) < 0:
        raise ModelError(f"weight_group must be >= 0, got {weight_group}")
    opt = BuildOptions(phase, batch, context, prompt, wd, ad, base, kv, int(weight_group), logits)
    g = build_graph(cfg, opt)
    for key, val in (("tp", tp), ("pp", pp)):
        if val is not None:
            g.meta["llm"][key] = "auto" if val == "auto" else _positive(val, key)
    return g


def companion_build(graph: Graph) -> dict[str, Any] | None:
    """``build``'s arguments for the other phase of a preset graph (prefill ↔ decode), same model,
    batch, context, dtypes; None for an encoder, a one-token context or any other graph."""
    m = graph.meta.get("llm")
    cfg = find_preset(m.get("preset", "")) if isinstance(m, dict) else None
    if cfg is None or not cfg.causal:
        return None
    other = "decode" if m.get("phase") == "prefill" else "prefill"
    context = int(m.get("context", 2))
    if other == "decode" and context < 2:
        return None
    return {"preset": cfg.name, "phase": other, "batch": m.get("batch", 1), "context": context,
            **{k: m.get(k) for k in ("weight_dtype", "act_dtype", "kv_dtype", "weight_group")},
            "logits": m.get("logits", "last")}


def companion(graph: Graph) -> Graph | None:
    """The other phase of a preset graph (``companion_build``), with its tensor/pipeline split."""
    kw = companion_build(graph)
    if kw is None:
        return None
    g = build(**kw)
    for key in ("tp", "pp"):
        if key in graph.meta["llm"]:
            g.meta["llm"][key] = graph.meta["llm"][key]
    return g
