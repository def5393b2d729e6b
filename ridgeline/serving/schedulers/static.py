"""Static batching: a batch is formed, prefilled together and decoded until its longest member ends.

The classic request-level batching (HF ``generate``, FasterTransformer before in-flight
batching): when the engine is free it takes up to ``max_batch`` waiting requests whose prompt
+ output KV fits the pool (reserved up front, so nothing is ever preempted), prefills them in one
step, then decodes the whole batch — finished members stay as padding, priced at the full batch
size and the longest context — until every member is done. Requests arriving meanwhile wait.
"""

from __future__ import annotations

from .base import Scheduler, Seq, Step

__all__ = ["StaticScheduler"]


class StaticScheduler(Scheduler):
    name = "static"

    def __init__(self, cfg, pool=None):
        super().__init__(cfg, pool)
        self.batch: list[Seq] = []

    def add(self, seq: Seq, now: float) -> bool:
        if self.blocks_for(seq.req.prompt + seq.req.output) > self.pool.total:
            return False
        self.waiting.append(seq)
        return True

    def plan(self, now: float) -> Step | None:
        live = [s for s in self.batch if s.finish is None]
        if live:
            return self.price(live, [], padded_batch=len(self.batch),
                              padded_ctx=max(s.context for s in self.batch) + 1)
        self.batch = []
        while self.waiting and len(self.batch) < self.cfg.max_batch:
            seq = self.waiting[0]
            if not self.grow(seq, seq.req.prompt + seq.req.output):
                break
            self.waiting.popleft()
            self.start_prefill(seq)
            self.enter(seq)
            self.batch.append(seq)
        if not self.batch:
            return None
        return self.price([], [(s, s.need - s.prefilled) for s in self.batch])
