"""Small IR graphs of one fused op with random inputs, shared by the export tests (ridgeline.std
functions in test_onnx_lowering, onnxruntime contrib ops in test_ort_contrib)."""

from __future__ import annotations

import numpy as np

from ridgeline.ir import Builder, Graph, tensor

#: RoPE tables: position ids into (max, R/2) tables, or tables gathered per position with a row
#: per batch element or one row shared by the batch
TABLES = ("positions", "per-batch", "shared")


def rotary_case(b: int, s: int, h: int, d: int, partial: bool, interleaved: bool, four_d: bool, tables: str,
                seed: int) -> tuple[Graph, dict[str, np.ndarray]]:
    """A RotaryEmbedding graph over x ``(b, h, s, d)`` or ``(b, s, h·d)`` and its inputs."""
    rot = d // 2 if partial and d % 4 == 0 else d
    rng = np.random.default_rng(seed)
    g = Graph("rope")
    shape = (b, h, s, d) if four_d else (b, s, h * d)
    x = g.add_input("x", tensor("f32", *shape))
    feeds = {"x": rng.standard_normal(shape).astype(np.float32)}
    table = {"positions": (7, rot // 2), "per-batch": (b, s, rot // 2), "shared": (1, s, rot // 2)}[tables]
    cos, sin = g.add_input("cos", tensor("f32", *table)), g.add_input("sin", tensor("f32", *table))
    angles = rng.uniform(-3, 3, table)
    feeds["cos"], feeds["sin"] = np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)
    ins = [x, cos, sin]
    if tables == "positions":
        ins.append(g.add_input("pos", tensor("i64", b, s)))
        feeds["pos"] = rng.integers(0, 7, (b, s))
    attrs = {"interleaved": int(interleaved), "rotary_embedding_dim": rot if partial else 0}
    if not four_d:
        attrs["num_heads"] = h
    g.outputs = [Builder(g).RotaryEmbedding(*ins, **attrs)]
    return g, feeds
