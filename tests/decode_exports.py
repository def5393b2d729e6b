"""Small causal LMs exported from transformers with DEFAULT settings (SDPA attention, no
position_ids unless asked) as ONE graph serving prefill and decode: ``input_ids[batch, seq]``,
``attention_mask[batch, past + seq]``, ``past_key_values.{i}.key/value[batch, kv_heads, past,
head_dim]`` (past may be 0) -> ``logits``, ``present.{i}.key/value``; dynamic batch/seq/past.

Exports are cached under the temp dir keyed by the config, exporter and library versions (the
dynamo exporter takes tens of seconds). ``model_for`` gives the same random-weight torch model.
"""

from __future__ import annotations

import hashlib
import io
import tempfile
import warnings
from functools import partial
from pathlib import Path

import numpy as np

#: GQA 6/2, head dim 16 (issue 11's shape), two layers
LLAMA = {"family": "llama", "hidden_size": 96, "num_attention_heads": 6, "num_key_value_heads": 2, "head_dim": 16,
         "intermediate_size": 160, "vocab_size": 389, "num_hidden_layers": 2, "max_position_embeddings": 256}
GPT2 = {"family": "gpt2", "n_embd": 64, "n_head": 4, "n_inner": 128, "vocab_size": 301, "n_layer": 2,
        "n_positions": 256}


#: weights this large make each next token depend on the whole context (at transformers' 0.02 a
#: random model repeats one token, which a broken cache would reproduce too)
INIT = 0.25


def _layers(cfg: dict) -> int:
    return cfg.get("num_hidden_layers", cfg.get("n_layer"))


def model_for(cfg: dict, seed: int = 0):
    """The random-weight transformers model of ``cfg`` (every parameter perturbed, so no norm
    weight sits at exactly 1), in eval mode, float32."""
    import torch
    import transformers as tf
    torch.manual_seed(seed)
    kw = {k: v for k, v in cfg.items() if k != "family"}
    if cfg["family"] == "llama":
        model = tf.LlamaForCausalLM(tf.LlamaConfig(**kw, tie_word_embeddings=True, bos_token_id=1, eos_token_id=2,
                                                   pad_token_id=0, initializer_range=INIT))
    else:
        model = tf.GPT2LMHeadModel(tf.GPT2Config(**kw, bos_token_id=1, eos_token_id=2, pad_token_id=0,
                                                             initializer_range=INIT))
    model.eval()
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(INIT * torch.randn(p.shape, generator=g))
    return model


def kv_shape(cfg: dict, batch: int, past: int) -> tuple[int, int, int, int]:
    if cfg["family"] == "llama":
        return batch, cfg["num_key_value_heads"], past, cfg["head_dim"]
    return batch, cfg["n_head"], past, cfg["n_embd"] // cfg["n_head"]


#: batch, seq, past of the example inputs an export traces
EXAMPLE = (2, 5, 3)


def port_names(layers: int) -> tuple[list[str], list[str]]:
    """The cache inputs ``past_key_values.{i}.key/value`` and outputs ``present.{i}.key/value``."""
    kinds = ("key", "value")
    return ([f"past_key_values.{i}.{kv}" for i in range(layers) for kv in kinds],
            [f"present.{i}.{kv}" for i in range(layers) for kv in kinds])


def step_module(model, layers: int, position_ids: bool = False):
    """``model`` as one export-ready step: ``(input_ids, attention_mask[, position_ids], *past)`` ->
    ``(logits, *present)``, the cache flattened key, value per layer (tools/export_heldout.py uses it too)."""
    import torch
    from transformers import DynamicCache

    class Step(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.m = model

        def forward(self, input_ids, attention_mask, *rest):
            pos, past = (rest[0], rest[1:]) if position_ids else (None, rest)
            pairs = [(past[2 * i], past[2 * i + 1]) for i in range(layers)]
            kw = {"position_ids": pos} if position_ids else {}
            o = self.m(input_ids=input_ids, attention_mask=attention_mask, use_cache=True,
                       past_key_values=DynamicCache(ddp_cache_data=pairs, config=model.config), **kw)
            present = []
            for layer in o.past_key_values.layers[:layers]:
                present += [layer.keys, layer.values]
            return (o.logits, *present)

    return Step()


def export_decode(cfg: dict, exporter: str = "legacy", opset: int = 17, position_ids: bool = False,
                  seed: int = 0) -> Path:
    """The cached path of ``cfg`` exported as one prefill/decode graph (see the module doc)."""
    import torch
    import transformers as tf
    key = hashlib.sha1(repr((sorted(cfg.items()), exporter, opset, position_ids, seed, INIT, torch.__version__,
                             tf.__version__)).encode()).hexdigest()[:12]
    path = Path(tempfile.gettempdir()) / "ridgeline-decode-exports" / f"{cfg['family']}-{exporter}{opset}-{key}.onnx"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model_for(cfg, seed)
    layers = _layers(cfg)
    Step = partial(step_module, model, layers, position_ids)
    b, s, p = EXAMPLE
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, cfg["vocab_size"], (b, s), generator=gen)
    mask = torch.ones(b, p + s, dtype=torch.int64)
    past = [torch.randn(*kv_shape(cfg, b, p), generator=gen) for _ in range(2 * layers)]
    pn, on = port_names(layers)
    extra = [torch.arange(p, p + s).expand(b, s)] if position_ids else []
    in_names = ["input_ids", "attention_mask"] + (["position_ids"] if position_ids else []) + pn
    args = (ids, mask, *extra, *past)
    tmp = path.with_suffix(".part")
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        if exporter == "legacy":
            axes = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "total"},
                    "logits": {0: "batch", 1: "seq"}, "position_ids": {0: "batch", 1: "seq"}}
            axes.update({n: {0: "batch", 2: "past"} for n in pn})
            axes.update({n: {0: "batch", 2: "total"} for n in on})
            buf = io.BytesIO()
            torch.onnx.export(Step(), args, buf, dynamo=False, opset_version=opset, input_names=in_names,
                              output_names=["logits", *on], dynamic_axes={k: v for k, v in axes.items()
                                                                          if k in in_names + on + ["logits"]})
            tmp.write_bytes(buf.getvalue())
        else:
            from torch.export import Dim
            dyn = Dim.DYNAMIC  # torch.export relates seq, past and the mask's length itself
            rest = ([{0: dyn, 1: dyn}] if position_ids else []) + [{0: dyn, 2: dyn}] * len(pn)
            shapes = ({0: dyn, 1: dyn}, {0: dyn, 1: dyn}, tuple(rest))  # forward(ids, mask, *rest)
            prog = torch.onnx.export(Step(), args, dynamo=True, opset_version=opset, dynamic_shapes=shapes,
                                     input_names=in_names, output_names=["logits", *on], verbose=False)
            prog.save(str(tmp))
    tmp.replace(path)
    return path


def prompts(cfg: dict, batch: int, seq: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Left-padded prompts: row ``r`` has ``r`` pads (pad id 0) then real tokens (never 0-2)."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(3, cfg["vocab_size"], (batch, seq)).astype(np.int64)
    mask = np.ones((batch, seq), np.int64)
    for r in range(batch):
        pads = min(r, seq - 1)
        ids[r, :pads] = 0
        mask[r, :pads] = 0
    return ids, mask


def torch_greedy(cfg: dict, ids: np.ndarray, mask: np.ndarray, new: int, seed: int = 0) -> np.ndarray:
    """transformers' own ``generate(do_sample=False)`` on the same weights: the new tokens."""
    import torch
    model = model_for(cfg, seed)
    with torch.no_grad():
        out = model.generate(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask),
                             max_new_tokens=new, min_new_tokens=new, do_sample=False, pad_token_id=0,
                             eos_token_id=None)
    return out[:, ids.shape[1]:].numpy()
