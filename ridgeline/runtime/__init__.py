"""Running compiled models in loops: ``generate`` (a KV-cache decode loop over any backend)."""

from .decode_loop import GenerateResult, KVPair, StepModel, generate, kv_pairs, step_model

__all__ = ["GenerateResult", "KVPair", "StepModel", "generate", "kv_pairs", "step_model"]
