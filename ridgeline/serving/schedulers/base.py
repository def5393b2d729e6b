"""What every scheduler shares: a sequence's state, the KV block pool, the step record, commit.

A scheduler is one serving engine's policy (one replica, one pool member or one pipeline
micro-batch group). The simulator calls ``add`` when a request reaches it, ``plan`` when the
engine is free (a ``Step`` or None to idle) and ``commit`` when that step ends.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..step_table import StepTime
from ..workload import Request

__all__ = ["BlockPool", "EngineConfig", "Scheduler", "Seq", "SpecDecode", "Step"]


class Seq:
    """A request inside an engine: how much of its prompt is in the KV cache, what it generated."""

    __slots__ = (
        "active",
        "blocks",
        "cached",
        "ctx",
        "decoding",
        "finish",
        "first",
        "generated",
        "itl",
        "last",
        "need",
        "preemptions",
        "prefilled",
        "req",
        "swapped",
    )

    def __init__(self, req: Request):
        self.req = req
        self.need = req.prompt          # tokens to prefill (prompt + generated after a recompute)
        self.prefilled = 0              # of ``need``, in the KV cache
        self.generated = 0
        self.first: float | None = None
        self.last = 0.0
        self.finish: float | None = None
        self.cached = 0                 # prompt tokens served by the prefix cache
        self.preemptions = 0
        self.swapped = False
        self.blocks = 0                 # KV blocks held on the device
        self.itl: list[float] = []
        self.active = False             # in its engine's running list
        self.ctx = 0                    # tokens in the KV cache
        self.decoding = False           # prefill done, generating

    @property
    def context(self) -> int:
        """Tokens in the KV cache (the prompt's, then one more per generated token but the last)."""
        return self.ctx


@dataclass
class Step:
    """One iteration: sequences decoding, prefill chunks ``(seq, tokens)``, and its duration."""

    decode: list[Seq]
    chunks: list[tuple[Seq, int]]
    duration: float
    tokens: list[int] | None = None     # decode tokens per sequence (speculative decoding), else 1 each
    extra: float = 0.0                  # swap traffic, draft model steps (already in duration)


@dataclass(frozen=True)
class SpecDecode:
    """Speculative decoding: ``k`` drafted tokens per step, each accepted with ``acceptance``.

    ``draft`` prices the draft model's steps (a ``StepTime``); None is an n-gram/lookahead draft
    whose cost is negligible next to the target's step.
    """

    k: int
    acceptance: float
    draft: StepTime | None = None

    def expected_tokens(self) -> float:
        """Tokens per verification step, (1 − α^(k+1)) / (1 − α) (Leviathan et al., ICML 2023)."""
        a = self.acceptance
        return self.k + 1.0 if a >= 1 else (1 - a ** (self.k + 1)) / (1 - a)


@dataclass
class EngineConfig:
    """Knobs of one engine (one replica's devices)."""

    step: StepTime
    kv_blocks: int = 1 << 30              # KV cache capacity in blocks
    block_size: int = 16                  # tokens per KV block (vLLM's default)
    max_batch: int = 256                  # sequences per step (vLLM max_num_seqs default)
    token_budget: int = 8192              # tokens per step (prefill budget; chunked prefill's chunk budget)
    chunk_prefill: bool = True            # chunked: split a prompt over steps (False: whole prompts, TRT-LLM's default)
    reserve_output: bool = False          # admit only with KV for prompt + output (TRT-LLM GUARANTEED_NO_EVICT)
    preemption: str = "recompute"         # recompute | swap
    swap_bandwidth: float = 32e9          # B/s device<->host for swapped KV (assumption: ~half of PCIe 5.0 x16)
    kv_bytes_per_token: float = 0.0
    prefix_hit: float = 0.0               # fraction of each prompt served by a prefix cache (hit-rate mode)
    prefix_cache: bool = True             # cache shared prefixes of requests with a group
    spec: SpecDecode | None = None
    handoff: bool = False                 # disaggregated prefill pool: hand sequences on after prefill
    host: float = 0.0                     # engine CPU time the GPU waits for each step (s)
    graph_pad: int = 0                    # largest CUDA-graph batch: decode-only steps priced at the captured size
    graph_ctx: int = 0                    # longest sequence a captured graph serves (0: any; longer runs eager)
    output_lag: bool = False              # a step's tokens go out a host time later, in the next step (V0)
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class BlockPool:
    """KV blocks in use out of ``total``; pipeline micro-batch groups share one (the KV of every
    sequence in flight lives on the same stages)."""

    __slots__ = ("total", "used")

    def __init__(self, total: int):
        self.used = 0
        self.total = total


class Scheduler:
    """Base policy: FCFS queues, KV blocks, prefix cache, speculative decoding, commit."""

    name = "base"

    def __init__(self, cfg: EngineConfig, pool: BlockPool | None = None):
        self.cfg = cfg
        self.waiting: deque[Seq] = deque()
        self.running: list[Seq] = []
        self.pool = pool or BlockPool(cfg.kv_blocks)
        self.prefixes: set[int] = set()   # groups whose shared prefix is cached
        self.preempted_at: list[float] = []
        self.truncated: list[Seq] = []     # stopped at the KV capacity before their output length
        self.rng = np.random.default_rng(cfg.seed)

    # -- queue and memory -----------------------------------------------------------------------
    def add(self, seq: Seq, now: float) -> bool:
        """Queue ``seq``; False (rejected) when its prompt can never fit the KV cache."""
        if self.blocks_for(seq.req.prompt + 1) > self.pool.total:
            return False
        self.waiting.append(seq)
        return True

    def admit_ready(self, seq: Seq) -> tuple[bool, float]:
        """Put a swapped or already-prefilled (handed-on) head of the queue back on the device.

        Returns (handled, swap-in time); handled is False for a sequence that needs a prefill.
        """
        if not (seq.swapped or seq.decoding):
            return False, 0.0
        if not self.grow(seq, seq.context + 1):
            return True, -1.0
        self.waiting.popleft()
        self.enter(seq)
        return True, (self.resume_swapped(seq) if seq.swapped else 0.0)

    def load(self) -> int:
        return len(self.waiting) + len(self.running)

    def blocks_for(self, tokens: int) -> int:
        return -(-tokens // self.cfg.block_size)

    def grow(self, seq: Seq, tokens: int) -> bool:
        """Give ``seq`` the blocks to hold ``tokens`` tokens; False when the pool cannot."""
        need = self.blocks_for(tokens) - seq.blocks
        if need <= 0:
            return True
        if self.pool.used + need > self.pool.total:
            return False
        self.pool.used += need
        seq.blocks += need
        return True

    def next_fresh(self) -> tuple[Seq | None, float]:
        """The queue's head that needs a prefill (its cached prefix served), after putting swapped
        and handed-on heads back on the device; None when the queue is empty, the batch is full or
        the head must wait for blocks. Also returns the swap-in time spent."""
        extra = 0.0
        while self.waiting and len(self.running) < self.cfg.max_batch:
            seq = self.waiting[0]
            handled, t = self.admit_ready(seq)
            if not handled:
                self.start_prefill(seq)
                return seq, extra
            if t < 0:
                break
            extra += t
        return None, extra

    def release(self, seq: Seq) -> None:
        self.pool.used -= seq.blocks
        seq.blocks = 0

    def start_prefill(self, seq: Seq) -> None:
        """Serve what the prefix cache holds before the first chunk of a fresh sequence."""
        if seq.prefilled or seq.generated:
            return
        r = seq.req
        cached = 0
        if self.cfg.prefix_cache and r.group >= 0 and r.group in self.prefixes:
            cached = r.prefix
        if self.cfg.prefix_hit:
            cached = max(cached, int(self.cfg.prefix_hit * r.prompt))
        seq.cached = min(cached, r.prompt - 1)       # the last prompt token is always computed
        seq.prefilled = seq.ctx = seq.cached

    def preempt(self, seq: Seq, now: float) -> float:
        """Take ``seq`` off the device (``recompute`` or ``swap``); returns the swap-out time."""
        self.running.remove(seq)
        seq.active = False
        seq.preemptions += 1
        self.preempted_at.append(now)
        t = 0.0
        if self.cfg.preemption == "swap":
            seq.swapped = True
            t = seq.context * self.cfg.kv_bytes_per_token / self.cfg.swap_bandwidth
        else:
            # recompute: the prompt and every token generated so far are prefilled again
            seq.need = seq.req.prompt + seq.generated
            seq.prefilled = seq.ctx = 0
            seq.decoding = False
        self.release(seq)
        if self.blocks_for(seq.context + 2 if seq.swapped else seq.need + 1) > self.pool.total:
            self.stop(seq, now)     # could never come back: capped at the KV capacity
        else:
            self.waiting.appendleft(seq)
        return t

    def stop(self, seq: Seq, now: float) -> None:
        """End ``seq`` early at the KV capacity, as engines cap a sequence at their maximum length."""
        if seq.active:
            self.running.remove(seq)
            seq.active = False
        seq.finish = now
        self.release(seq)
        self.truncated.append(seq)

    def resume_swapped(self, seq: Seq) -> float:
        seq.swapped = False
        return seq.context * self.cfg.kv_bytes_per_token / self.cfg.swap_bandwidth

    def ensure_decode_room(self, now: float, tokens: int = 1) -> float:
        """Blocks for one more step of every running decode; preempt the newest until they fit."""
        extra = 0.0
        dec = [s for s in self.running if s.decoding]
        bs = self.cfg.block_size
        need = 0
        for s in dec:
            short = s.ctx + tokens - s.blocks * bs
            if short > 0:
                need += -(-short // bs)
        if self.pool.used + need <= self.pool.total:       # the common case: room for everyone
            if need:
                for s in dec:
                    short = s.ctx + tokens - s.blocks * bs
                    if short > 0:
                        s.blocks += -(-short // bs)
                self.pool.used += need
            return 0.0
        for seq in sorted(dec, key=lambda s: (s.req.arrival, s.req.id)):
            if not seq.active:
                continue
            while not self.grow(seq, seq.context + tokens):
                victims = [s for s in self.running if s is not seq]
                if not victims:
                    break
                extra += self.preempt(max(victims, key=lambda s: (s.req.arrival, s.req.id)), now)
            else:
                continue
            extra += self.preempt(seq, now)   # alone: wait for blocks (stopped if it can never fit)
        return extra

    # -- pricing --------------------------------------------------------------------------------
    def price(self, decode: list[Seq], chunks: list[tuple[Seq, int]], extra: float = 0.0,
              padded_batch: int | None = None, padded_ctx: float | None = None) -> Step:
        st = self.cfg.step
        b = padded_batch if padded_batch is not None else len(decode)
        ctx = padded_ctx if padded_ctx is not None else (
            sum(s.ctx for s in decode) / len(decode) + 1 if decode else 0.0)
        long = self.cfg.graph_ctx and max((s.ctx + 1 for s in decode), default=0) > self.cfg.graph_ctx
        if not chunks and not long and 2 < b <= self.cfg.graph_pad:   # captured sizes 1, 2, 4, then multiples of 8
            # a pad slot is a sequence of length 1 (V0 model_runner.py: seq_lens.extend(repeat(1, pad_size)))
            n, b = b, 4 if b <= 4 else -(-b // 8) * 8
            ctx = (ctx * n + b - n) / b
        pre = [(n, s.prefilled + n) for s, n in chunks]
        tokens = None
        spec = self.cfg.spec
        if spec is not None and decode:
            # draft k tokens (k draft steps), verify them in one target step of k+1 tokens per sequence
            pre.append((b * spec.k, ctx + spec.k))
            if spec.draft is not None:
                extra += spec.k * spec.draft.time(b, ctx)
            a = spec.acceptance
            if a >= 1:
                acc = np.full(len(decode), spec.k)
            elif a <= 0:
                acc = np.zeros(len(decode), dtype=int)
            else:
                acc = np.minimum(self.rng.geometric(1 - a, len(decode)) - 1, spec.k)
            tokens = [int(x) + 1 for x in acc]
        t = st.time(b, ctx, pre) + extra + self.cfg.host
        return Step(decode, chunks, t, tokens, extra)

    # -- effects --------------------------------------------------------------------------------
    def plan(self, now: float) -> Step | None:  # pragma: no cover - each policy defines it
        raise NotImplementedError

    def commit(self, step: Step, now: float) -> tuple[list[Seq], list[Seq]]:
        """Apply a finished step at time ``now``: (finished sequences, sequences handed on)."""
        done: list[Seq] = []
        handed: list[Seq] = []
        tokens = step.tokens
        for i, seq in enumerate(step.decode):
            if seq.finish is not None or not seq.active:
                continue          # padded slot of a static batch, or preempted meanwhile
            n = tokens[i] if tokens else 1
            left = seq.req.output - seq.generated
            if n >= left:
                n = left
                done.append(seq)
            seq.generated += n
            seq.ctx += n
            seq.itl.append(now - seq.last)
            seq.last = now
        for seq, n in step.chunks:
            seq.prefilled += n
            seq.ctx += n
            if seq.prefilled >= seq.need:
                seq.decoding = True
                if seq.req.group >= 0 and self.cfg.prefix_cache:
                    self.prefixes.add(seq.req.group)
                if seq.generated == 0:            # the prefill step emits the first token
                    seq.generated = 1
                    seq.first = now
                else:                               # a recompute's prefill emits the next token
                    seq.generated += 1
                    seq.itl.append(now - seq.last)
                seq.last = now
                if seq.generated >= seq.req.output:
                    done.append(seq)
                elif self.cfg.handoff:
                    handed.append(seq)
        gone = done + handed
        for seq in done:
            seq.finish = now
        for seq in gone:
            seq.active = False
            self.release(seq)
        if gone:
            self.running = [s for s in self.running if s.active]
        return done, handed

    def enter(self, seq: Seq) -> None:
        """Move ``seq`` onto the device's running list."""
        seq.active = True
        self.running.append(seq)
