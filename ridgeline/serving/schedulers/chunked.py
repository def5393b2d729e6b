"""Chunked prefill with a token budget per iteration (Sarathi-Serve; vLLM's V1 scheduler).

Every iteration carries all running decodes (one token each, k+1 with speculative decoding) and
fills the rest of ``token_budget`` with prefill chunks: first of prompts already started, then of
waiting requests admitted FCFS while the KV pool has blocks for their chunk. Decodes never stall
behind a long prompt; a prompt's prefill spreads over several iterations.

Two admission rules of TensorRT-LLM's in-flight batching (``EngineConfig``; ``stacks.py`` says
where each default comes from): ``chunk_prefill=False`` admits a prompt only whole, when it fits
what the decodes leave of the budget (a prompt longer than the whole budget runs as the step's only
prefill, since an engine built for it would have a larger budget); ``reserve_output=True`` admits a
request only when the pool holds its prompt and its whole output, so decodes never preempt.
"""

from __future__ import annotations

from .base import Scheduler, Step

__all__ = ["ChunkedScheduler"]


class ChunkedScheduler(Scheduler):
    name = "chunked"

    def plan(self, now: float, retry: bool = True) -> Step | None:
        cfg = self.cfg
        per_seq = cfg.spec.k + 1 if cfg.spec else 1
        before = len(self.preempted_at) + len(self.truncated)
        extra = self.ensure_decode_room(now, per_seq)
        dec = [s for s in self.running if s.decoding]
        budget = cfg.token_budget - len(dec) * per_seq
        chunks = []
        for seq in self.running:
            if budget <= 0:
                break
            if not seq.decoding:
                n = min(seq.need - seq.prefilled, budget)
                if n > 0 and self.grow(seq, seq.prefilled + n):
                    chunks.append((seq, n))
                    budget -= n
        while budget > 0:
            seq, t = self.next_fresh()
            extra += t
            if seq is None:
                break
            n = min(seq.need - seq.prefilled, budget)
            if not cfg.chunk_prefill and n < seq.need - seq.prefilled:
                if chunks or seq.need - seq.prefilled <= cfg.token_budget:
                    break                       # whole prompts only: wait for a step with room
                n = seq.need - seq.prefilled    # longer than any step: alone, over budget
            reserve = seq.prefilled + n
            if cfg.reserve_output:      # its whole sequence, or as much as the pool can ever hold
                reserve = min(seq.need + seq.req.output - seq.generated, self.pool.total * cfg.block_size)
            if not self.grow(seq, reserve):
                break
            self.waiting.popleft()
            self.enter(seq)
            chunks.append((seq, n))
            budget -= n
        if not dec and not chunks:
            dec = [s for s in self.running if s.decoding]    # swapped back in just now
        if not dec and not chunks:
            stuck = [s for s in self.running if not s.decoding]
            if not stuck:
                # preemption emptied the batch: the freed blocks may admit the queue's head now
                changed = len(self.preempted_at) + len(self.truncated) != before
                return self.plan(now, False) if retry and changed and self.waiting else None
            # partial prefills filled the pool: drop the newest, let the oldest finish (recompute)
            extra += self.preempt(max(stuck, key=lambda s: (s.req.arrival, s.req.id)), now)
            return self.plan(now, False) if retry and (self.running or self.waiting) else None
        return self.price(dec, chunks, extra)
