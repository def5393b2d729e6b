"""Continuous (iteration-level) batching, as Orca and vLLM schedule.

Every iteration the engine first admits waiting requests — FCFS, while their whole prompt fits
the KV block pool, the batch limit and the step's token budget — and runs their prefills as one
step (prefill first, vLLM's default without chunking; the running decodes wait); otherwise it
decodes one token for every running sequence. When a decode step needs a block the pool does
not have, the newest sequence is preempted (``recompute``: its KV is dropped and prompt + tokens
so far are prefilled again later; ``swap``: its KV goes to host memory and back, priced at
``swap_bandwidth``).
"""

from __future__ import annotations

from .base import Scheduler, Step

__all__ = ["ContinuousScheduler"]


class ContinuousScheduler(Scheduler):
    name = "continuous"

    def plan(self, now: float, retry: bool = True) -> Step | None:
        cfg = self.cfg
        extra = 0.0
        admitted = []
        budget = cfg.token_budget
        while True:
            seq, t = self.next_fresh()
            extra += t
            if seq is None:
                break
            n = seq.need - seq.prefilled
            if admitted and n > budget:
                break
            if not self.grow(seq, seq.need + 1):
                break
            self.waiting.popleft()
            self.enter(seq)
            admitted.append(seq)
            budget -= n
        if admitted:
            return self.price([], [(s, s.need - s.prefilled) for s in admitted], extra)
        per_seq = cfg.spec.k + 1 if cfg.spec else 1
        before = len(self.preempted_at) + len(self.truncated)
        extra += self.ensure_decode_room(now, per_seq)
        dec = [s for s in self.running if s.decoding]
        if not dec:
            # preemption emptied the batch: the freed blocks may admit the queue's head now
            changed = len(self.preempted_at) + len(self.truncated) != before
            return self.plan(now, False) if retry and changed and self.waiting else None
        return self.price(dec, [], extra)
