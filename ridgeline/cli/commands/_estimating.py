"""What ``estimate``, ``compare`` and ``targets`` share: target selection, preset flags, options.

(A leading underscore keeps this module from being registered as a command.)
"""

from __future__ import annotations

import argparse
import contextlib
import math
import re
import sys
from typing import Any, Iterator

from ...api import optimize
from ...ir import Graph
from ...ir.errors import TargetError
from ..common import (MAX_BATCH, MAX_CONTEXT, MAX_DEGREE, PRESET_FLAGS, UsageError, int_arg, is_file_model,
                      load_model, parse_int)

__all__ = ["add_preset_arguments", "add_estimate_options", "parse_degree", "target_from_args",
           "load_estimable", "estimate_options", "progress", "companion_for"]


def parse_degree(text: str) -> int | str:
    """A parallel degree: a positive integer or ``auto``."""
    if text == "auto":
        return "auto"
    try:
        return parse_int(text, "the degree", 1, MAX_DEGREE)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"{e} (or 'auto')") from None


_DTYPES = ("bf16", "fp16", "fp32", "fp8", "int8", "int4")


def add_preset_arguments(p: argparse.ArgumentParser, *, tp_default: str | None = None) -> None:
    g = p.add_argument_group("LLM presets (ignored for .onnx/.rir files)")
    g.add_argument("--phase", choices=("prefill", "decode"), help="the step to estimate (default: decode; "
                   "the other phase is estimated too, for TTFT and TPOT)")
    g.add_argument("--batch", type=int_arg(1, MAX_BATCH), help="sequences per step (default 1)")
    g.add_argument("--context", type=int_arg(1, MAX_CONTEXT), help="tokens in the KV cache after the step (default 2048)")
    g.add_argument("--prompt", type=int_arg(1, MAX_CONTEXT), help="prefill: tokens processed (default: the whole context)")
    g.add_argument("--dtype", choices=_DTYPES, help="weights and activations (int4: weights only)")
    g.add_argument("--weight-dtype", choices=_DTYPES, help="override the weights' dtype")
    g.add_argument("--kv-dtype", choices=("bf16", "fp16", "fp32", "fp8", "int8"), help="the KV cache's dtype")
    g.add_argument("--weight-group", type=int_arg(0, 2 ** 20), metavar="G",
                   help="quantized weights: scales per G input channels (default 128 for int4, 0 = per channel)")
    g.add_argument("--logits", choices=("last", "all"), help="prefill: logits of the last position (default) or all")
    p.add_argument("--tp", type=parse_degree, default=tp_default,
                   help=f"tensor-parallel degree or 'auto' (default: {tp_default or 1})")
    p.add_argument("--pp", type=parse_degree, default=tp_default,
                   help=f"pipeline-parallel degree or 'auto' (default: {tp_default or 1})")
    p.add_argument("--microbatches", type=int_arg(1, MAX_BATCH), default=None,
                   help="with --pp: micro-batches the batch is cut into (default: fill the pipeline)")


def add_estimate_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cuda-graphs", action="store_true", help="gpu_simt: replay the step as one CUDA graph")
    p.add_argument("-O", "--option", action="append", default=[], metavar="KEY=VALUE",
                   help="a cost-model option (e.g. -O launch_overhead=15us, -O tf32=false); repeatable")
    p.add_argument("-p", "--pipeline", default=None,
                   help="passes to run before estimating (default: none for presets, the backend's for files)")


def _option_value(text: str) -> Any:
    low = text.strip().lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    if re.fullmatch(r"[-+]?[0-9]{1,20}", text.strip()):
        return int(text)
    if re.fullmatch(r"[-+]?([0-9]{1,20}\.?[0-9]{0,20}|\.[0-9]{1,20})([eE][-+]?[0-9]{1,3})?", text.strip()):
        v = float(text)
        if math.isfinite(v):
            return v
        raise UsageError(f"--option value {text.strip()[:40]!r} is not a finite number")
    return text


def estimate_options(args: argparse.Namespace, family: str) -> dict[str, Any]:
    """Cost-model options from the flags (tp/pp, --cuda-graphs, -O KEY=VALUE)."""
    opts: dict[str, Any] = {}
    for item in getattr(args, "option", []) or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--option expects KEY=VALUE, got {item!r}")
        opts[key.strip().replace("-", "_")] = _option_value(value)
    if getattr(args, "cuda_graphs", False):
        if family != "gpu_simt":
            raise UsageError(f"--cuda-graphs applies to GPU targets, not to the {family} family")
        opts["cuda_graphs"] = True
    for key in ("tp", "pp", "microbatches"):
        v = getattr(args, key, None)
        if v is not None:
            opts[key] = v
    return opts


def target_from_args(args: argparse.Namespace):
    """The target named by ``--target`` or given by ``--target-file``."""
    from ...cost_models import get_target, load_target_file
    if getattr(args, "target_file", None):
        return load_target_file(args.target_file)
    if not getattr(args, "target", None):
        raise UsageError("give a target with --target NAME (see `ridgeline targets`) or --target-file my.toml")
    return get_target(args.target)


def load_estimable(args: argparse.Namespace) -> Graph:
    """Load MODEL; preset flags with a file are an error rather than silently ignored."""
    is_file = is_file_model(args.model)
    if is_file:
        given = [f"--{k.replace('_', '-')}" for k in PRESET_FLAGS
                 if k not in ("tp", "pp") and getattr(args, k, None) is not None]
        if given:
            raise UsageError(f"{', '.join(given)} appl{'ies' if len(given) == 1 else 'y'} to presets; for a model "
                             f"file bind its dims with --dim NAME=SIZE")
    graph = load_model(args, bind=is_file)   # a preset's sizes are its flags; --dim binds a file's
    pipeline = getattr(args, "pipeline", None)
    if pipeline is None and is_file:
        # an imported model is fused first, as a compiler would (presets are built fused)
        from ...backends.estimate import EstimateBackend
        pipeline = EstimateBackend.default_pipeline
    if pipeline:
        graph = optimize(graph, pipeline)
    return graph


def companion_for(graph: Graph, pipeline: str | None) -> Graph | None:
    """The other phase of a preset graph, through the same pipeline."""
    from ...models import companion
    other = companion(graph)
    if other is not None and pipeline:
        other = optimize(other, pipeline)
    return other


@contextlib.contextmanager
def progress(message: str, *, enabled: bool = True) -> Iterator[Any]:
    """A rich spinner on stderr for long steps (only on a terminal, so logs and tests stay clean)."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    with Console(stderr=True).status(message) as status:
        yield status


def known_target_or_backend(name: str) -> str:
    """'target' or 'backend' for a name given to compare; unknown names list what exists."""
    from ...backends.registry import list_backends
    from ...cost_models import target_names
    if name in target_names():
        return "target"
    names = {b.name: b for b in list_backends()}
    if name in names:
        return "backend" if names[name].kind != "estimate" else "target"
    raise TargetError(f"unknown target or backend {name!r}; targets: {', '.join(target_names())}; "
                      f"executing backends: {', '.join(n for n, b in names.items() if b.kind == 'execute')}")
