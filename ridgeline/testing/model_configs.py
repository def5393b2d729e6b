"""Hypothesis strategies over the transformer configs users bring, built as small IR models.

``model_configs()`` draws a ``ModelConfig``: head dims 8…128 (24, 40, 48, 80, 96 included),
query/KV head ratios 1…8 and MQA, hidden sizes that are not multiples of 16, sequence 1…67,
batch 1…3, a KV cache of 0…N past tokens (a decode step when the sequence is 1), rotary off, full
or partial, with position ids into 2-D caches or — as transformers' default exports do — cos/sin
computed outside of shape [1, seq, rot/2] (broadcast over the batch) and no position ids, and an
optional padding mask. ``build_model(cfg)`` makes the Llama-style graph (embedding, RMSNorm, Q/K/V
projections, rotary, grouped-query Attention with the cache, SwiGLU MLP, LM head) with small
random weights; ``model_graphs()`` draws configs and builds them, for ``check_backend`` /
``check_onnxruntime``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st

from ..ir import Builder, Graph, tensor

__all__ = ["HEAD_DIMS", "ModelConfig", "build_model", "model_configs", "model_graphs"]

HEAD_DIMS = (8, 12, 16, 24, 32, 40, 48, 64, 80, 96, 128)


@dataclass(frozen=True)
class ModelConfig:
    """One small decoder-only transformer and the step it runs."""

    hidden: int
    head_dim: int
    kv_heads: int
    ratio: int            # query heads per KV head (kv_heads = 1 is MQA)
    intermediate: int
    vocab: int
    layers: int
    batch: int
    seq: int
    past: int
    rotary: str           # "none", "full" or "partial"
    positions: str        # "ids": position ids into [positions, rot/2] caches; "caches": [1, seq, rot/2] inputs
    padding_mask: bool
    seed: int = 0

    @property
    def heads(self) -> int:
        return self.kv_heads * self.ratio

    @property
    def rot(self) -> int:
        if self.rotary == "partial":
            return max(2, self.head_dim // 2 // 2 * 2)
        return self.head_dim


@st.composite
def model_configs(draw, *, max_head_dim: int = 128, max_seq: int = 67, max_past: int = 40) -> ModelConfig:
    """Transformer configs over the space described in the module docstring."""
    head_dim = draw(st.sampled_from([d for d in HEAD_DIMS if d <= max_head_dim]))
    kv_heads = draw(st.sampled_from([1, 1, 2, 3]))
    ratio = draw(st.sampled_from([1, 2, 3, 4, 6, 8]))
    hidden = draw(st.integers(2, 12)) * 8 + draw(st.sampled_from([1, 3, 4, 7]))   # never a multiple of 16
    seq = draw(st.one_of(st.just(1), st.integers(1, max_seq)))
    past = draw(st.sampled_from([0, 0, 1, 5, max_past]))
    return ModelConfig(
        hidden=hidden, head_dim=head_dim, kv_heads=kv_heads, ratio=ratio,
        intermediate=draw(st.integers(hidden, 3 * hidden)), vocab=draw(st.integers(17, 131)),
        layers=draw(st.sampled_from([1, 1, 2])), batch=draw(st.integers(1, 3)), seq=seq, past=past,
        rotary=draw(st.sampled_from(["full", "full", "partial", "none"])),
        positions=draw(st.sampled_from(["ids", "caches"])), padding_mask=draw(st.booleans()),
        seed=draw(st.integers(0, 2 ** 16)))


def build_model(cfg: ModelConfig) -> Graph:
    """The Llama-style graph of ``cfg`` with random weights (see the module docstring)."""
    rng = np.random.default_rng(cfg.seed)
    g = Graph("model")
    b = Builder(g)
    B, S, P, D, H = cfg.batch, cfg.seq, cfg.past, cfg.head_dim, cfg.hidden
    T = P + S

    def weight(name: str, *shape: int, scale: float | None = None):
        s = scale if scale is not None else 1.0 / np.sqrt(shape[0])
        return g.add_constant(name, (rng.standard_normal(shape) * s).astype(np.float32))

    ids = g.add_input("input_ids", tensor("i64", B, S))
    ranges: dict[str, tuple[float, float]] = {"input_ids": (0, cfg.vocab - 1)}
    kinds: dict[str, str] = {}
    cos = sin = pos = None
    half = cfg.rot // 2
    if cfg.rotary != "none":
        if cfg.positions == "ids":
            pos = g.add_input("position_ids", tensor("i64", B, S))
            ranges["position_ids"] = (0, T - 1)
            angles = np.arange(T)[:, None] / (10000.0 ** (np.arange(half) / max(half, 1)))
            cos = g.add_constant("cos_cache", np.cos(angles).astype(np.float32))
            sin = g.add_constant("sin_cache", np.sin(angles).astype(np.float32))
        else:   # transformers' default export: cos/sin [1, S, rot/2] computed outside, no position ids
            cos = g.add_input("cos", tensor("f32", 1, S, half))
            sin = g.add_input("sin", tensor("f32", 1, S, half))
            ranges["cos"] = ranges["sin"] = (-1.0, 1.0)
    mask = None
    if cfg.padding_mask:
        mask = g.add_input("attention_mask", tensor("bool", B, 1, S, T))
        kinds["attention_mask"] = "rowmask"
    x = b.Gather(weight("embed", cfg.vocab, H, scale=1.0), ids, axis=0)
    outs = []
    for i in range(cfg.layers):
        h = b.RMSNormalization(x, weight(f"ln1.{i}", H, scale=0.1), epsilon=1e-5)
        q = b.MatMul(h, weight(f"wq.{i}", H, cfg.heads * D))
        k = b.MatMul(h, weight(f"wk.{i}", H, cfg.kv_heads * D))
        v = b.MatMul(h, weight(f"wv.{i}", H, cfg.kv_heads * D))
        if cfg.rotary != "none":
            extra = {"rotary_embedding_dim": cfg.rot} if cfg.rotary == "partial" else {}
            rin = (cos, sin, pos) if pos is not None else (cos, sin)
            q = b.RotaryEmbedding(q, *rin, num_heads=cfg.heads, **extra)
            k = b.RotaryEmbedding(k, *rin, num_heads=cfg.kv_heads, **extra)
        pk = pv = None
        if P:
            pk = g.add_input(f"past_key.{i}", tensor("f32", B, cfg.kv_heads, P, D))
            pv = g.add_input(f"past_value.{i}", tensor("f32", B, cfg.kv_heads, P, D))
        y, nk, nv = b.Attention(q, k, v, mask, pk, pv, q_num_heads=cfg.heads, kv_num_heads=cfg.kv_heads,
                                is_causal=1, _outputs=3)
        outs += [nk, nv]
        x = b.Add(x, b.MatMul(y, weight(f"wo.{i}", cfg.heads * D, H)))
        h = b.RMSNormalization(x, weight(f"ln2.{i}", H, scale=0.1), epsilon=1e-5)
        gate = b.MatMul(h, weight(f"wg.{i}", H, cfg.intermediate))
        up = b.MatMul(h, weight(f"wu.{i}", H, cfg.intermediate))
        act = b.Mul(b.Mul(gate, b.Sigmoid(gate)), up)
        x = b.Add(x, b.MatMul(act, weight(f"wd.{i}", cfg.intermediate, H)))
    x = b.RMSNormalization(x, weight("ln_f", H, scale=0.1), epsilon=1e-5)
    logits = b.MatMul(x, weight("lm_head", H, cfg.vocab))
    g.outputs = [logits] + outs
    g.verify()
    g.meta["testing"] = {"ranges": ranges, "kinds": kinds}
    g.meta["model_config"] = cfg.__dict__.copy()
    return g


def model_graphs(**limits) -> st.SearchStrategy[Graph]:
    """Graphs of drawn configs (``limits`` as for ``model_configs``)."""
    return model_configs(**limits).map(build_model)
