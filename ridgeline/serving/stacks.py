"""What serving stacks do by default: how a step admits prefill, its token budget, its KV policy.

A ``Stack`` is a named set of engine defaults (``--stack vllm``), each read from the stack's own
code or docs (cited beside it). It decides the scheduler and its knobs; a flag the user gives
(``--token-budget``, ``--max-batch``, ``--scheduler``, ``--preemption``) still wins.

Prefill admission is where the stacks differ most:

- **vLLM V1** (0.8+; ``vllm/v1/core/sched/scheduler.py``): every step first schedules the running
  requests (one decode token each, or the next chunk of a prompt in progress), then admits
  waiting requests FCFS, chunking the last prompt to the ``max_num_batched_tokens`` left. KV
  blocks are allocated as tokens arrive; when a decode needs a block the pool does not have, the
  newest request is preempted and recomputed later.
- **TensorRT-LLM in-flight batching** (the executor API's defaults, which NIM's TRT-LLM backend
  runs): the capacity scheduler's ``GUARANTEED_NO_EVICT`` admits a request only when the KV blocks
  for its whole prompt *and* its maximum output are free, so nothing is ever evicted; the
  micro-batch scheduler then fills a step up to ``max_num_tokens`` with generation tokens and
  whole context requests (``enable_chunked_context`` is off by default: a prompt runs in one step
  beside the decodes, never split).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

__all__ = ["STACKS", "Stack", "get_stack"]

GIB = 1 << 30


@dataclass(frozen=True)
class Stack:
    """A serving stack's engine defaults (see the module docstring)."""

    name: str
    scheduler: str
    token_budget: int                 # tokens per step (max_num_batched_tokens / max_num_tokens)
    max_batch: int                    # sequences per step (max_num_seqs / max_batch_size)
    chunk_prefill: bool = True        # split a prompt across steps to fill the token budget
    reserve_output: bool = False      # admit only when prompt + output KV is free (never preempt)
    source: str = ""
    host: float = 0.0                 # engine CPU time each step waits for (s)
    graph_pad: int = 0                # largest CUDA-graph batch (decode-only steps padded to a captured size)
    graph_ctx: int = 0                # longest sequence a captured graph serves (0: any)
    output_lag: bool = False          # a step's tokens go out in the next step, after its host time


def _vllm(target: Any) -> Stack:
    # vllm/engine/arg_utils.py, EngineArgs.get_batch_defaults (V1, OpenAI API server context):
    # devices with >= 70 GiB that are not A100s get max_num_batched_tokens 8192 and max_num_seqs
    # 1024; every other GPU 2048 and 256 ("Setting large max_num_batched_tokens for A100 reduces
    # throughput", vLLM PR #17885). V1 always chunks prefills. CUDA graphs: CompilationConfig's
    # capture sizes 1, 2, 4, then multiples of 8 up to max_capture_size 512; the model runner pads a
    # step's tokens up to the next one (padding of mixed steps is not modelled).
    cap = _capacity(target)
    big = cap >= 70 * GIB and "a100" not in _name(target)
    return Stack("vllm", "chunked", 8192 if big else 2048, 1024 if big else 256, graph_pad=512, source=(
        "vLLM V1 defaults for the OpenAI API server (vllm/engine/arg_utils.py get_batch_defaults)"))


def _trtllm(target: Any) -> Stack:
    # TensorRT-LLM executor defaults: SchedulerConfig capacity policy GUARANTEED_NO_EVICT,
    # enable_chunked_context False, max_num_tokens 8192 (trtllm-build's default). max_batch_size is
    # fixed when an engine is built; 256 is an assumption (the build default of the 0.x releases
    # NIM 1.x shipped; NVIDIA's published engines may differ).
    return Stack("trtllm", "chunked", 8192, 256, chunk_prefill=False, reserve_output=True, source=(
        "TensorRT-LLM in-flight batching defaults (GUARANTEED_NO_EVICT, no chunked context, "
        "max_num_tokens 8192)"))


def _vllm_v0(target: Any) -> Stack:
    # V0 (0.6-0.7) with chunked prefill (on for models of > 32k context, arg_utils.py
    # create_engine_config): SchedulerConfig's 2048 tokens, 256 sequences, decodes first.
    # Host time: LLMEngine.step schedules and prepares inputs on the CPU before each GPU step; async
    # output processing (PR #7049) overlaps only _process_model_outputs, and is off under pp
    # (config.py). 4 ms per step at every pp and batch (an assumption): the GPU bubble of vLLM RFC
    # #6854 (July 2024), output processing inside it, so RFC #6913's per-sequence cost is not added.
    # CUDA graphs: a decode-only step pads to a captured batch (worker/model_runner.py
    # _get_graph_batch_size); 0.7 captures up to the first size >= max_num_seqs (config.py
    # _set_cudagraph_sizes, at most 8192), so any step within the max batch pads. _use_captured_graph
    # runs eager a step with a prefill or a sequence past max_seq_len_to_capture (8192 by default).
    # Output lag (async output processing; off under pp): the next step's model runner calls the callback
    # that processes and sends a step's outputs (MQLLMEngine._async_socket_engine_callback) after its
    # forward is launched, before the sampler syncs (worker/model_runner.py execute_model): a token goes
    # out the next step's host time after it starts (launches not modelled), and a finished sequence is
    # found only then, so that step decodes it once more (core/scheduler.py _schedule_running).
    return replace(_vllm(target), name="vllm-v0", token_budget=2048, max_batch=256, host=4e-3,
                   graph_pad=8192, graph_ctx=8192, output_lag=True, source=(
        "vLLM V0 (0.6-0.7) chunked-prefill defaults (vllm/config.py SchedulerConfig); host time per step "
        "~4 ms with output processing inside it (vLLM RFC #6854, an assumption)"))


def _capacity(target: Any) -> float:
    # the device's main memory: its first (outermost) level
    levels = getattr(target, "memory", None) or ()
    return float(levels[0].capacity) if levels else 0.0


def _name(target: Any) -> str:
    return str(getattr(target, "name", target)).lower()


STACKS = {"vllm": _vllm, "vllm-v0": _vllm_v0, "trtllm": _trtllm, "nim": _trtllm}


def get_stack(name: str, target: Any, family: str | None = None) -> Stack:
    """The stack ``name``'s defaults on ``target`` (a ``Target`` or its name) for a deployment of
    ``family`` (default: the target's); host terms follow the family (docs/serving.md)."""
    from .simulator import SPATIAL, SimulationError
    key = str(name).lower()
    if key not in STACKS:
        raise SimulationError(f"unknown serving stack {name!r} (choose from {', '.join(STACKS)})")
    if isinstance(target, str):
        from ..cost_models import get_target
        from ..ir.errors import TargetError
        try:
            target = get_target(target)
        except TargetError:     # a stub target (your own step times): no memory figures, the smaller defaults
            pass
    stack = STACKS[key](target)
    family = getattr(target, "family", "gpu_simt") if family in (None, "stub") else family   # stub: your step times
    if family in SPATIAL:   # no host-side Python engine steps them (V0's LLMEngine did drive TPUs and Neuron)
        stack = replace(stack, host=0.0, output_lag=False)
    if family != "gpu_simt":    # CUDA graphs exist on GPUs only
        stack = replace(stack, graph_pad=0, graph_ctx=0)
    return stack
