"""Accuracy of a causal language model on real text, as users measure it: perplexity of the
next token, and top-1 agreement of the logits with a reference model (the unquantized one).

A model graph is fed windows of token ids (``input_ids`` [1, L]; ``attention_mask`` ones and
``position_ids`` 0..L-1 when it takes them); its first output is the logits [1, L, vocab].
Tokenizing is the caller's (``tokenize`` wraps transformers' ``AutoTokenizer``, which reads
the tokenizer a GGUF file carries with ``gguf_file=``). ``PASSAGE`` is a bundled public-domain
text (the US Declaration of Independence, 1776) for when the user gives none.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from importlib import resources
from pathlib import Path

import numpy as np

from ..ir.errors import ModelError

__all__ = ["PASSAGE", "TextScore", "lm_feeds", "passage", "score", "tokenize", "windows"]

PASSAGE = "declaration_of_independence.txt"


def passage() -> str:
    """The bundled public-domain passage."""
    return resources.files("ridgeline.data").joinpath(PASSAGE).read_text(encoding="utf-8")


def tokenize(text: str, tokenizer: str) -> np.ndarray:
    """Token ids of ``text`` with ``tokenizer``: a transformers tokenizer directory/name, or a
    ``.gguf`` file (its embedded tokenizer). Needs the ``transformers`` package."""
    try:
        from transformers import AutoTokenizer
    except ImportError:   # pragma: no cover - an optional dependency
        raise ModelError("tokenizing text needs transformers (pip install 'ridgeline[text]'), "
                         "or give token ids instead") from None
    p = Path(tokenizer)
    looks_like_path = p.suffix.lower() == ".gguf" or "/" in tokenizer or "\\" in tokenizer
    if looks_like_path and not p.exists():
        # a path, not a hub name: say so instead of transformers' hub advice
        raise ModelError(f"{tokenizer}: no such tokenizer file or folder")
    try:
        if p.suffix.lower() == ".gguf":
            tok = AutoTokenizer.from_pretrained(str(p.parent), gguf_file=p.name)
        else:
            tok = AutoTokenizer.from_pretrained(tokenizer)
    except Exception as e:   # noqa: BLE001 - transformers raises many kinds; one line for the user
        raise ModelError(f"cannot load tokenizer {tokenizer!r}: {str(e).splitlines()[0]}") from None
    return np.asarray(tok(text)["input_ids"], dtype=np.int64)


def windows(ids: np.ndarray, length: int, count: int | None = None) -> list[np.ndarray]:
    """Consecutive non-overlapping windows of ``length`` tokens (the last partial one dropped)."""
    n = len(ids) // length
    if count is not None:
        n = min(n, count)
    return [ids[i * length:(i + 1) * length] for i in range(n)]


def lm_feeds(input_names: Sequence[str], window: np.ndarray) -> dict[str, np.ndarray]:
    """The inputs of a causal LM for one window of token ids (batch 1)."""
    ids = np.asarray(window, np.int64)[None, :]
    out = {}
    for name in input_names:
        if "input_ids" in name:
            out[name] = ids
        elif "attention_mask" in name:
            out[name] = np.ones_like(ids)
        elif "position_ids" in name:
            out[name] = np.arange(ids.shape[1], dtype=np.int64)[None, :]
        else:
            raise ModelError(f"cannot feed input {name!r} from text: a causal LM takes input_ids, "
                             f"attention_mask and position_ids (export it without a KV cache)")
    return out


class TextScore:
    """Running perplexity and top-1 agreement over windows."""

    def __init__(self) -> None:
        self.nll = 0.0
        self.tokens = 0
        self.agree = 0
        self.positions = 0

    def add(self, logits: np.ndarray, window: np.ndarray, reference: np.ndarray | None = None) -> None:
        """``logits`` [1, L, V] of ``window`` (L ids); ``reference``: the reference model's logits."""
        lg = np.asarray(logits, np.float64).reshape(len(window), -1)
        z = lg - lg.max(axis=-1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
        nxt = np.asarray(window[1:], np.int64)
        self.nll -= float(logp[np.arange(len(nxt)), nxt].sum())
        self.tokens += len(nxt)
        if reference is not None:
            ref = np.asarray(reference).reshape(len(window), -1)
            self.agree += int((ref.argmax(-1) == lg.argmax(-1)).sum())
            self.positions += len(window)

    @property
    def perplexity(self) -> float:
        return math.exp(self.nll / self.tokens) if self.tokens else float("nan")

    @property
    def top1(self) -> float:
        return self.agree / self.positions if self.positions else float("nan")


def score(run: Callable[[dict[str, np.ndarray]], np.ndarray], input_names: Sequence[str],
          wins: Iterable[np.ndarray], references: Sequence[np.ndarray] | None = None
          ) -> tuple[TextScore, list[np.ndarray]]:
    """Run ``run(feeds) -> logits`` on each window; returns the score and the logits."""
    s = TextScore()
    outs = []
    for i, w in enumerate(wins):
        lg = np.asarray(run(lm_feeds(input_names, w)))
        s.add(lg, w, None if references is None else references[i])
        outs.append(lg)
    return s, outs
