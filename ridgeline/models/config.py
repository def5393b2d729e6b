"""Transformer configs and the named presets (published architectures, no weights).

Figures are the models' published configs (Hugging Face ``config.json`` of each release):
layers, hidden size, heads, KV heads (GQA), MLP size, vocabulary, context length, RoPE base.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TransformerConfig", "PRESETS"]


@dataclass(frozen=True)
class TransformerConfig:
    """The shape of a transformer. ``arch`` picks the block: llama, gpt2 or bert."""

    name: str
    arch: str                 # "llama" (RMSNorm, RoPE, SwiGLU, GQA), "gpt2", "bert"
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    intermediate: int
    vocab: int
    max_context: int
    norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    tied_embeddings: bool = False
    type_vocab: int = 0       # BERT token types

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    @property
    def causal(self) -> bool:
        return self.arch != "bert"

    def parameters(self) -> int:
        """Parameter count (what the built graph's constants add up to)."""
        h, d, i, v = self.hidden, self.head_dim, self.intermediate, self.vocab
        qkvo = h * self.heads * d * 2 + h * self.kv_heads * d * 2
        if self.arch == "llama":
            per = qkvo + 3 * h * i + 2 * h
            head = 0 if self.tied_embeddings else h * v
            return self.layers * per + v * h + h + head
        # gpt2 / bert: Q/K/V/O biases, two LayerNorms (weight + bias), MLP biases, learned positions
        biases = 2 * self.heads * d + 2 * self.kv_heads * d
        per = qkvo + biases + 4 * h + 2 * h * i + i + h
        emb = v * h + self.max_context * h + self.type_vocab * h + 2 * h
        return self.layers * per + emb


PRESETS: dict[str, TransformerConfig] = {c.name: c for c in (
    # openai-community/gpt2
    TransformerConfig("gpt2", "gpt2", 12, 768, 12, 12, 3072, 50257, 1024, 1e-5, tied_embeddings=True),
    # google-bert/bert-base-uncased
    TransformerConfig("bert-base", "bert", 12, 768, 12, 12, 3072, 30522, 512, 1e-12, type_vocab=2),
    # meta-llama/Llama-2-{7,13,70}b-hf
    TransformerConfig("llama-2-7b", "llama", 32, 4096, 32, 32, 11008, 32000, 4096, 1e-5, 10000.0),
    TransformerConfig("llama-2-13b", "llama", 40, 5120, 40, 40, 13824, 32000, 4096, 1e-5, 10000.0),
    TransformerConfig("llama-2-70b", "llama", 80, 8192, 64, 8, 28672, 32000, 4096, 1e-5, 10000.0),
    # meta-llama/Meta-Llama-3-{8,70}B
    TransformerConfig("llama-3-8b", "llama", 32, 4096, 32, 8, 14336, 128256, 8192, 1e-5, 500000.0),
    TransformerConfig("llama-3-70b", "llama", 80, 8192, 64, 8, 28672, 128256, 8192, 1e-5, 500000.0),
    # meta-llama/Llama-3.1-405B
    TransformerConfig("llama-3.1-405b", "llama", 126, 16384, 128, 8, 53248, 128256, 131072, 1e-5, 500000.0),
)}
