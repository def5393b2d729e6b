"""The discrete-event loop: requests arrive, engines run steps, sequences move between pools.

Plain Python with ``heapq`` (no SimPy): the only events are arrivals, step ends and KV hand-offs,
a step is one heap push, and the loop stays a few hundred lines we can read and profile —
SimPy's processes would add a generator switch per event and a dependency for no new modelling
power. Ties are broken by insertion order, so a run is deterministic for a seed.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .schedulers.base import Scheduler, Seq, Step
from .workload import Request, Workload

__all__ = ["Engine", "Trace", "run"]


@dataclass
class Engine:
    """One engine (a replica, a pool member or a pipeline micro-batch group) and its bookkeeping."""

    sched: Scheduler
    devices: float                  # devices this engine accounts for (energy, cost)
    role: str = "mixed"             # mixed | prefill | decode
    busy: float = 0.0               # device seconds in steps (utilization)
    stepping: float = 0.0           # seconds in steps with the engine's CPU time (energy)
    running: bool = False
    steps: int = 0
    ended: list = field(default_factory=list)     # finished in its last step, not yet found so (output_lag)


@dataclass
class Trace:
    """What a run leaves for the metrics: every sequence, occupancy samples, the clock."""

    seqs: list[Seq]
    rejected: list[Request]
    samples: list[tuple[float, int, float, int, int]]   # (time, engine, KV share used, running, waiting)
    preemptions: list[float]
    engines: list[Engine]
    end: float
    transfers: int = 0
    transfer_time: float = 0.0
    extra: dict = field(default_factory=dict)


def run(engines: Sequence[Engine], requests: Sequence[Request] | None = None, *,
        workload: Workload | None = None, closed_requests: int = 0, seed: int = 0,
        transfer: Callable[[Seq], float] | None = None, sample_every: int = 1) -> Trace:
    """Simulate until every request is served; open loop from ``requests``, closed loop from a
    ``workload`` with ``users`` (``closed_requests`` in all)."""
    heap: list = []
    counter = 0

    def push(t: float, kind: str, data) -> None:
        nonlocal counter
        heapq.heappush(heap, (t, counter, kind, data))
        counter += 1

    entry = [i for i, e in enumerate(engines) if e.role != "decode"]
    decode_pool = [i for i, e in enumerate(engines) if e.role == "decode"]
    seqs: list[Seq] = []
    rejected: list[Request] = []
    samples: list = []
    n_transfers = 0
    t_transfers = 0.0

    closed = workload is not None and workload.arrival == "closed"
    pending: list[tuple[int, int, int]] = []
    issued = 0
    if closed:
        pending = workload.closed_lengths(closed_requests, seed)
        pending.reverse()

        def issue(user: int, t: float, kind: str = "reply") -> None:
            nonlocal issued
            if not pending:
                return
            p, o, g = pending.pop()
            pre = workload.shared_prefix if g >= 0 else 0
            push(t, kind, Request(issued, t, p, o, pre, g, user))
            issued += 1

        for u in range(min(workload.users, len(pending))):   # users past the requests never ask
            issue(u, 0.0, "arrive")
    else:
        for r in requests or ():
            push(r.arrival, "arrive", r)

    def least_loaded(pool: list[int]) -> Engine:
        return engines[min(pool, key=lambda i: (engines[i].sched.load(), i))]

    def kick(idx: int, t: float) -> None:
        e = engines[idx]
        if e.running:
            return
        step: Step | None = e.sched.plan(t)
        ended, e.ended = e.ended, []
        if ended and (not step or step.decode or e.sched.name == "chunked"):
            # vLLM V0 finds them finished only in this step's output callback, so it decodes them once
            # more (core/scheduler.py _schedule_running), not in a prefill its default scheduler runs alone
            step = step or Step([], [], 0.0)
            step = e.sched.price(step.decode + ended, step.chunks, step.extra)
        if step is None:
            return
        e.running = True
        e.busy += step.duration - e.sched.cfg.host     # the devices idle while the engine's CPU schedules
        e.stepping += step.duration
        e.steps += 1
        if e.steps % sample_every == 0:
            s = e.sched
            samples.append((t, idx, s.pool.used / s.pool.total if s.pool.total < (1 << 30) else 0.0,
                            len(s.running), len(s.waiting)))
        push(t + step.duration, "step", (idx, step))

    pools: dict[int, list[int]] = {}
    for i, e in enumerate(engines):
        pools.setdefault(id(e.sched.pool), []).append(i)
    shared = {i: group for group in pools.values() if len(group) > 1 for i in group}
    now = 0.0
    due: list[int] = []        # engines to offer work once every event at ``now`` is in

    def kick_later(idx: int, t: float) -> None:
        due.append(idx)

    while heap:
        now, _, kind, data = heapq.heappop(heap)
        if kind in ("arrive", "reply"):
            seq = Seq(data)
            e = least_loaded(entry)
            if e.sched.add(seq, now):
                seqs.append(seq)
                kick_later(engines.index(e), now)
            else:
                rejected.append(data)
                if closed:
                    issue(data.user, now + workload.think)
        elif kind == "step":
            idx, step = data
            engines[idx].running = False
            cfg = engines[idx].sched.cfg   # V0's tokens go out as the next step (starting now) ends its host work
            done, handed = engines[idx].sched.commit(step, now + cfg.host * cfg.output_lag)
            engines[idx].ended = done if cfg.output_lag else []
            for seq in handed:
                dt = transfer(seq) if transfer else 0.0
                n_transfers += 1
                t_transfers += dt
                push(now + dt, "handoff", seq)
            if closed:
                for seq in done:
                    issue(seq.req.user, seq.finish + workload.think)
            kick_later(idx, now)
            if shared:
                # blocks freed here may admit another micro-batch group's queue (one KV pool)
                due.extend(i for i in shared.get(idx, ()) if not engines[i].running and engines[i].sched.waiting)
        elif kind == "handoff":
            e = least_loaded(decode_pool)
            if e.sched.add(data, now):
                kick_later(engines.index(e), now)
            else:                        # the decode pool's KV cache can never hold it
                e.sched.stop(data, now)
        if not heap or heap[0][0] > now or (heap[0][2] == "reply") > (kind == "reply"):
            # simultaneous arrivals and step ends all land before any engine plans its next step; a
            # closed-loop user's next request lands after: the reply leaves (detokenizer, HTTP) as the
            # engine launches its next step, and the new prompt arrives later still (tokenized, queued),
            # so at think 0 it joins the step after (TensorRT-LLM's executor fetches new requests once
            # per iteration; vLLM V0 processes a step's outputs during the next)
            for idx in sorted(set(due)):
                kick(idx, now)
            due.clear()
        while not heap:
            # nothing left to happen: an idle engine still holding requests would wait forever
            # (a policy corner: its queue's head cannot be placed); stop that head, retry
            stalled = [i for i, e in enumerate(engines) if not e.running and e.sched.waiting]
            if not stalled:
                break
            for i in stalled:
                kick(i, now)
                if not engines[i].running and engines[i].sched.waiting:
                    engines[i].sched.stop(engines[i].sched.waiting.popleft(), now)
    preempt = sorted(t for e in engines for t in e.sched.preempted_at)
    unfinished = [s for s in seqs if s.finish is None]
    if unfinished:
        raise RuntimeError(f"{len(unfinished)} requests never finished (scheduler stalled)")
    return Trace(seqs, rejected, samples, preempt, list(engines), now, n_transfers, t_transfers)
