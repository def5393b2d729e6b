"""A native thread pool for split kernel launches, written in LLVM IR and JIT-compiled like the kernels.

The pure-Python runner pays a futex wake, a GIL hand-off and a Python lock per chunk on every
launch (tens of µs); a decode step launches several hundred kernels, so at two threads that
overhead ate the gain. Here one ctypes call (GIL released throughout) publishes a launch and the
workers, which spin on it with a pause instruction, claim chunks by compare-and-swap.

Shared state is one cache-line-padded i64 array (``_SLOT``). The *ticket* word packs the launch's
tag (bits 32-63, +1 per launch), its chunk count (16-31) and the next unclaimed chunk (0-15), so
a claim is valid only for the launch it was read from: a worker that read launch s's ticket
cannot claim a chunk of launch s+1, and a successful claim pins the launch's fields (function,
pointers, extent) until the claimed chunk is counted in ``done``, because the caller rewrites them
only after every chunk is done. The caller runs chunks itself and waits only for chunks a worker
has claimed, so a worker the OS has not scheduled never stalls a launch.

Workers are Python daemon threads that enter ``rl_worker`` through ctypes (GIL released). They
spin for ``spin_us`` microseconds after their last chunk, then sleep on a futex the caller wakes
only when someone sleeps. ``RIDGELINE_LLVM_SPIN_US`` (or ``spin_us``) fixes the figure (0 sleeps
at once); by default it is ``DEFAULT_SPIN_US`` while the calling thread waited for a CPU under 10% of the
last second (its run-queue wait, from /proc/thread-self/schedstat; else the load average against
the core count), and 0 above it: on an oversubscribed host a spinning worker takes CPU time from
the calling thread of its own process (Linux shares CPU between sessions first). Linux on x86-64 and AArch64 only (futex numbers below);
elsewhere ``available()`` is False and the Python runner is used. At interpreter exit workers
are stopped and joined; in a forked child the workers do not exist and are started again.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import platform
import sys
import threading
import time
import weakref
from collections.abc import Callable, Sequence

import numpy as np

from ...ir.errors import BackendError
from ..threads import available_cores

__all__ = ["DEFAULT_SPIN_US", "MAX_ARGS", "Pool", "available", "spin_us_from_env"]

#: most pointer arguments a kernel may take and still go through the pool (checked mode adds a
#: size per pointer and a record: attention's 10 pointers become 21); more falls back to Python
MAX_ARGS = 40
#: how long an idle worker spins before sleeping. A decode step runs Python between kernels for
#: 10-100 µs; a sleeping worker costs a futex wake (~5-50 µs) on the next launch. Measured with
#: tools/bench_backends.py --only launch (see docs/backends.md); an assumption elsewhere.
DEFAULT_SPIN_US = 300
#: split launches that took longer than this times the caller's estimate of running every chunk
#: itself (its own chunks' time scaled to all chunks) mean the host is not running the workers
OVERLOAD = 1.1
#: share of the time the calling thread may wait for a CPU (run-queue wait) before the pool stops
#: spinning: above it the host has more runnable threads than cores
BUSY_WAIT = 0.1
#: chunk counts live in 16 bits of the ticket
MAX_CHUNKS = (1 << 16) - 1

# i64 slot indices in the state array; contended words each get their own 64-byte line
_TICKET, _DONE, _SLEEPERS, _FUTEX, _STOP, _WAITING = 8, 16, 24, 32, 40, 41
_FN, _NPTRS, _EXTENT, _GRAIN, _SPIN_NS = 48, 49, 50, 51, 52
# the caller's accounts (written by it alone): time in launches, in its own chunks, chunk counts
_LAUNCH_NS, _OWN_NS, _OWN_CHUNKS, _ALL_CHUNKS = 53, 54, 55, 56
_ARGS = 64
_SLOTS = _ARGS + MAX_ARGS

#: syscall numbers of futex(2) per machine; FUTEX_WAIT_PRIVATE = 128, FUTEX_WAKE_PRIVATE = 129
_SYS_FUTEX = {"x86_64": 202, "amd64": 202, "aarch64": 98, "arm64": 98}
_PAUSE = {"x86_64": ("declare void @llvm.x86.sse2.pause()", "call void @llvm.x86.sse2.pause()"),
          "aarch64": ("declare void @llvm.aarch64.hint(i32)", "call void @llvm.aarch64.hint(i32 1)")}


def _machine() -> str:
    m = platform.machine().lower()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(m, m)


def available() -> bool:
    """True where the native pool can be built (Linux on x86-64 or AArch64)."""
    return sys.platform.startswith("linux") and _machine() in ("x86_64", "aarch64")


def spin_us_from_env() -> float | None:
    """``RIDGELINE_LLVM_SPIN_US`` (µs an idle worker spins before sleeping), else None (adaptive)."""
    raw = os.environ.get("RIDGELINE_LLVM_SPIN_US", "").strip()
    if not raw:
        return None
    try:
        v = float(raw)
    except ValueError:
        raise BackendError(f"RIDGELINE_LLVM_SPIN_US must be a number of microseconds, got {raw!r}") from None
    if v < 0:
        raise BackendError(f"RIDGELINE_LLVM_SPIN_US must be >= 0, got {raw!r}")
    return v


def _ir() -> str:
    """The pool's module: rl_worker, rl_launch_<k> for k pointer arguments, rl_stop."""
    machine = _machine()
    pause_decl, pause = _PAUSE[machine]
    futex = _SYS_FUTEX[machine]

    def slot(name: str, index: int) -> str:
        return f"  %{name} = getelementptr i64, ptr %st, i64 {index}\n"

    cases = "\n".join(f"    i64 {k}, label %call{k}" for k in range(MAX_ARGS + 1))
    calls = []
    for k in range(MAX_ARGS + 1):
        loads = "".join(f"  %a{k}.{i}.p = getelementptr i64, ptr %st, i64 {_ARGS + i}\n"
                        f"  %a{k}.{i} = load ptr, ptr %a{k}.{i}.p\n" for i in range(k))
        args = "".join(f", ptr %a{k}.{i}" for i in range(k))
        calls.append(f"call{k}:\n{loads}  call void %fn(i64 %lo, i64 %hi{args})\n  br label %out\n")
    launches = []
    for k in range(MAX_ARGS + 1):
        params = "".join(f", ptr %p{i}" for i in range(k))
        stores = "".join(f"  %s{i} = getelementptr i64, ptr %st, i64 {_ARGS + i}\n"
                         f"  store ptr %p{i}, ptr %s{i}\n" for i in range(k))
        launches.append(f"define void @rl_launch_{k}(ptr %st, ptr %f, i64 %extent, i64 %grain, i64 %chunks{params}) {{\n"
                        f"{stores}  call void @rl_launch(ptr %st, ptr %f, i64 {k}, i64 %extent, i64 %grain, i64 %chunks)\n"
                        f"  ret void\n}}\n")
    return f"""target triple = "unknown-unknown-unknown"
target datalayout = ""

{pause_decl}
declare i64 @syscall(i64, ...)
declare i32 @clock_gettime(i32, ptr)

; futex wait timeouts (struct timespec: seconds, nanoseconds) of the caller and of a worker
@rl_10ms = internal constant [2 x i64] [i64 0, i64 10000000], align 8
@rl_100ms = internal constant [2 x i64] [i64 0, i64 100000000], align 8

define internal i64 @rl_now() {{
  %ts = alloca [2 x i64], align 8
  call i32 @clock_gettime(i32 1, ptr %ts)
  %s = load i64, ptr %ts
  %np = getelementptr i64, ptr %ts, i64 1
  %ns = load i64, ptr %np
  %sn = mul i64 %s, 1000000000
  %t = add i64 %sn, %ns
  ret i64 %t
}}

; the start of chunk k: extent*k/chunks rounded up to the grain, at most extent
define internal i64 @rl_bound(i64 %extent, i64 %grain, i64 %chunks, i64 %k) {{
  %m = mul i64 %extent, %k
  %q = udiv i64 %m, %chunks
  %g1 = sub i64 %grain, 1
  %r = add i64 %q, %g1
  %rd = udiv i64 %r, %grain
  %ru = mul i64 %rd, %grain
  %lt = icmp ult i64 %ru, %extent
  %b = select i1 %lt, i64 %ru, i64 %extent
  ret i64 %b
}}

; run claimed chunk k of the current launch (its fields are pinned until done counts it), count it
define internal void @rl_chunk(ptr %st, i64 %k) {{
{slot("fnp", _FN)}{slot("np", _NPTRS)}{slot("ep", _EXTENT)}{slot("gp", _GRAIN)}{slot("tp", _TICKET)}{slot("dp", _DONE)}{slot("wp", _WAITING)}  %fn = load ptr, ptr %fnp
  %nptrs = load i64, ptr %np
  %extent = load i64, ptr %ep
  %grain = load i64, ptr %gp
  %t = load atomic i64, ptr %tp monotonic, align 8
  %t16 = lshr i64 %t, 16
  %chunks = and i64 %t16, 65535
  %lo = call i64 @rl_bound(i64 %extent, i64 %grain, i64 %chunks, i64 %k)
  %k1 = add i64 %k, 1
  %hi = call i64 @rl_bound(i64 %extent, i64 %grain, i64 %chunks, i64 %k1)
  %empty = icmp uge i64 %lo, %hi
  br i1 %empty, label %out, label %dispatch
dispatch:
  switch i64 %nptrs, label %out [
{cases}
  ]
{"".join(calls)}
out:
  %old = atomicrmw add ptr %dp, i64 1 seq_cst
  %new = add i64 %old, 1
  %last = icmp eq i64 %new, %chunks
  br i1 %last, label %lastchunk, label %ret
lastchunk:
  ; the caller may be asleep on done (it slept rather than spin while this chunk ran)
  call void @rl_wake_if(ptr %wp, ptr %dp)
  br label %ret
ret:
  ret void
}}

; *p += v, for counters one thread alone writes
define internal void @rl_add(ptr %p, i64 %v) {{
  %old = load i64, ptr %p
  %new = add i64 %old, %v
  store i64 %new, ptr %p
  ret void
}}

; wake every thread asleep on the futex word at addr (FUTEX_WAKE_PRIVATE)
define internal void @rl_wake(ptr %addr) {{
  call i64 (i64, ...) @syscall(i64 {futex}, ptr %addr, i64 129, i64 2147483647, ptr null, ptr null, i64 0)
  ret void
}}

; wake the threads asleep on the futex word at addr if the count at n (sleepers, or the caller's
; waiting flag) is above zero
define internal void @rl_wake_if(ptr %n, ptr %addr) {{
  %c = load atomic i64, ptr %n seq_cst, align 8
  %any = icmp sgt i64 %c, 0
  br i1 %any, label %wake, label %out
wake:
  call void @rl_wake(ptr %addr)
  br label %out
out:
  ret void
}}

; whether ticket t has chunks left to claim (next < chunks)
define internal i1 @rl_left(i64 %t) {{
  %next = and i64 %t, 65535
  %t16 = lshr i64 %t, 16
  %chunks = and i64 %t16, 65535
  %left = icmp ult i64 %next, %chunks
  ret i1 %left
}}

; one idle round: a pause; every 256th round, whether ``spin_ns`` have passed since start
define internal i1 @rl_spun(i64 %iter, i64 %start, ptr %spinp) {{
entry:
  {pause}
  %low = and i64 %iter, 255
  %clock = icmp eq i64 %low, 0
  br i1 %clock, label %timecheck, label %no
timecheck:
  %now = call i64 @rl_now()
  %spent = sub i64 %now, %start
  %budget = load atomic i64, ptr %spinp monotonic, align 8
  %over = icmp sge i64 %spent, %budget
  ret i1 %over
no:
  ret i1 false
}}

; claim the next chunk of the launch in ticket t: returns its index, or -1 if none is left or the
; ticket moved on (then the caller reloads it)
define internal i64 @rl_claim(ptr %tp, i64 %t) {{
  %next = and i64 %t, 65535
  %left = call i1 @rl_left(i64 %t)
  br i1 %left, label %try, label %none
try:
  %t1 = add i64 %t, 1
  %r = cmpxchg ptr %tp, i64 %t, i64 %t1 acq_rel acquire
  %ok = extractvalue {{ i64, i1 }} %r, 1
  br i1 %ok, label %got, label %none
got:
  ret i64 %next
none:
  ret i64 -1
}}

define void @rl_launch(ptr %st, ptr %f, i64 %nptrs, i64 %extent, i64 %grain, i64 %chunks) {{
entry:
{slot("fnp", _FN)}{slot("np", _NPTRS)}{slot("ep", _EXTENT)}{slot("gp", _GRAIN)}{slot("tp", _TICKET)}{slot("dp", _DONE)}{slot("sp", _SLEEPERS)}{slot("xp", _FUTEX)}{slot("wp", _WAITING)}{slot("spinp", _SPIN_NS)}{slot("launchp", _LAUNCH_NS)}{slot("ownp", _OWN_NS)}{slot("ocp", _OWN_CHUNKS)}{slot("acp", _ALL_CHUNKS)}  %own = alloca i64, align 8
  store i64 0, ptr %own
  %ownc = alloca i64, align 8
  store i64 0, ptr %ownc
  %lstart = call i64 @rl_now()
  store ptr %f, ptr %fnp
  store i64 %nptrs, ptr %np
  store i64 %extent, ptr %ep
  store i64 %grain, ptr %gp
  store atomic i64 0, ptr %dp monotonic, align 8
  %old = load atomic i64, ptr %tp monotonic, align 8
  %tag = lshr i64 %old, 32
  %tag1 = add i64 %tag, 1
  %tagh = shl i64 %tag1, 32
  %ch = shl i64 %chunks, 16
  %new = or i64 %tagh, %ch
  store atomic i64 %new, ptr %tp seq_cst, align 8
  %fx = atomicrmw add ptr %xp, i64 1 seq_cst
  call void @rl_wake_if(ptr %sp, ptr %xp)
  br label %work
work:
  %t = load atomic i64, ptr %tp acquire, align 8
  %k = call i64 @rl_claim(ptr %tp, i64 %t)
  %got = icmp sge i64 %k, 0
  br i1 %got, label %run, label %check
run:
  %c0 = call i64 @rl_now()
  call void @rl_chunk(ptr %st, i64 %k)
  %c1 = call i64 @rl_now()
  %cd = sub i64 %c1, %c0
  call void @rl_add(ptr %own, i64 %cd)
  call void @rl_add(ptr %ownc, i64 1)
  br label %work
check:
  ; a failed claim with chunks left means a worker claimed first: try again
  %left = call i1 @rl_left(i64 %t)
  br i1 %left, label %work, label %prewait
prewait:
  %wstart = call i64 @rl_now()
  br label %wait
wait:
  %spins = phi i64 [ 0, %prewait ], [ %spins1, %waitmore ], [ 0, %slept ]
  %d = load atomic i64, ptr %dp acquire, align 8
  %alldone = icmp uge i64 %d, %chunks
  br i1 %alldone, label %done, label %waitmore
waitmore:
  ; a worker still inside its chunk: spin as long as workers do, then sleep until it is done, so
  ; that on a busy host the worker gets this thread's share of the CPU
  %spins1 = add i64 %spins, 1
  %over = call i1 @rl_spun(i64 %spins1, i64 %wstart, ptr %spinp)
  br i1 %over, label %sleepwait, label %wait
sleepwait:
  store atomic i64 1, ptr %wp seq_cst, align 8
  %d2 = load atomic i64, ptr %dp seq_cst, align 8
  %alldone2 = icmp uge i64 %d2, %chunks
  br i1 %alldone2, label %slept, label %dosleep
dosleep:
  %d32 = and i64 %d2, 4294967295
  call i64 (i64, ...) @syscall(i64 {futex}, ptr %dp, i64 128, i64 %d32, ptr @rl_10ms, ptr null, i64 0)
  br label %slept
slept:
  store atomic i64 0, ptr %wp seq_cst, align 8
  br label %wait
done:
  ; the caller's accounts for the pool's check: would it alone have been faster?
  %lend = call i64 @rl_now()
  %took = sub i64 %lend, %lstart
  call void @rl_add(ptr %launchp, i64 %took)
  %ownt = load i64, ptr %own
  call void @rl_add(ptr %ownp, i64 %ownt)
  %ownn = load i64, ptr %ownc
  call void @rl_add(ptr %ocp, i64 %ownn)
  call void @rl_add(ptr %acp, i64 %chunks)
  ret void
}}

define void @rl_worker(ptr %st) {{
entry:
{slot("tp", _TICKET)}{slot("sp", _SLEEPERS)}{slot("xp", _FUTEX)}{slot("stopp", _STOP)}{slot("spinp", _SPIN_NS)}  %start0 = call i64 @rl_now()
  br label %loop
loop:
  %start = phi i64 [ %start0, %entry ], [ %start, %spin ], [ %now2, %run ], [ %start, %nowork ], [ %now3, %awake ]
  %iter = phi i64 [ 0, %entry ], [ %iter1, %spin ], [ 0, %run ], [ %iter, %nowork ], [ 0, %awake ]
  %t = load atomic i64, ptr %tp acquire, align 8
  %k = call i64 @rl_claim(ptr %tp, i64 %t)
  %got = icmp sge i64 %k, 0
  br i1 %got, label %run, label %nowork
run:
  call void @rl_chunk(ptr %st, i64 %k)
  %now2 = call i64 @rl_now()
  br label %loop
nowork:
  %left = call i1 @rl_left(i64 %t)
  br i1 %left, label %loop, label %idlecheck
idlecheck:
  %stop = load atomic i64, ptr %stopp monotonic, align 8
  %stopping = icmp ne i64 %stop, 0
  br i1 %stopping, label %exit, label %spin
spin:
  %iter1 = add i64 %iter, 1
  %over = call i1 @rl_spun(i64 %iter1, i64 %start, ptr %spinp)
  br i1 %over, label %sleep, label %loop
sleep:
  %s1 = atomicrmw add ptr %sp, i64 1 seq_cst
  %e = load atomic i32, ptr %xp seq_cst, align 8
  %t2 = load atomic i64, ptr %tp seq_cst, align 8
  %left2 = call i1 @rl_left(i64 %t2)
  %stop2 = load atomic i64, ptr %stopp seq_cst, align 8
  %stopping2 = icmp ne i64 %stop2, 0
  %skip = or i1 %left2, %stopping2
  br i1 %skip, label %awake, label %dosleep
dosleep:
  %e64 = zext i32 %e to i64
  call i64 (i64, ...) @syscall(i64 {futex}, ptr %xp, i64 128, i64 %e64, ptr @rl_100ms, ptr null, i64 0)
  br label %awake
awake:
  %s2 = atomicrmw sub ptr %sp, i64 1 seq_cst
  %now3 = call i64 @rl_now()
  br label %loop
exit:
  ret void
}}

define void @rl_stop(ptr %st) {{
{slot("stopp", _STOP)}{slot("xp", _FUTEX)}  store atomic i64 1, ptr %stopp seq_cst, align 8
  %fx = atomicrmw add ptr %xp, i64 1 seq_cst
  call void @rl_wake(ptr %xp)
  ret void
}}

{"".join(launches)}"""


def _runqueue_wait_ns() -> int | None:
    """Nanoseconds the calling thread has spent runnable but waiting for a CPU (Linux schedstat)."""
    try:
        with open("/proc/thread-self/schedstat") as f:
            return int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None


_MODULE: list = []          # the compiled pool module, built once per process and never freed
_BUILD_LOCK = threading.Lock()
_POOLS: weakref.WeakSet[Pool] = weakref.WeakSet()


def _module():
    with _BUILD_LOCK:
        if not _MODULE:
            from .jit import compile_ir, finalize_text
            mod = compile_ir(finalize_text(_ir()))
            # workers execute this code until they are joined at exit; a reference the
            # interpreter's teardown cannot drop keeps the machine code mapped until the process ends
            ctypes.pythonapi.Py_IncRef(ctypes.py_object(mod))
            _MODULE.append(mod)
        return _MODULE[0]


_VOIDP = ctypes.c_void_p
_I64 = ctypes.c_int64


class Pool:
    """``threads - 1`` native workers that run chunks of launches beside the calling thread."""

    def __init__(self, threads: int, spin_us: float | None = None):
        mod = _module()
        self.threads = threads
        # over-allocate to put slot 0 on a 64-byte boundary
        raw = np.zeros(_SLOTS + 8, np.int64)
        off = (-raw.ctypes.data % 64) // 8
        self._raw = raw
        self.state = raw[off:off + _SLOTS]
        self._st = self.state.ctypes.data
        fixed = spin_us_from_env() if spin_us is None else float(spin_us)
        self.adaptive = fixed is None
        self.spin_us = DEFAULT_SPIN_US if fixed is None else fixed
        self.state[_SPIN_NS] = int(self.spin_us * 1000)
        self._next_check = 0.0
        self._last_wait: tuple[int, int, float] | None = None   # (thread, run-queue wait ns, when)
        self._serial_until = 0.0     # launches run serially until then (see _check)
        self._backoff = 0.0
        self._cores = available_cores()
        proto = ctypes.CFUNCTYPE(None, _VOIDP)
        self._worker_fn = proto(mod.address("rl_worker"))
        self._stop_fn = proto(mod.address("rl_stop"))
        self._entries = [ctypes.CFUNCTYPE(None, _VOIDP, _VOIDP, _I64, _I64, _I64, *([_VOIDP] * k))(
            mod.address(f"rl_launch_{k}")) for k in range(MAX_ARGS + 1)]
        self.lock = threading.Lock()     # one launch at a time on this pool's state
        self._workers: list[threading.Thread] = []
        self._finalizer: weakref.finalize | None = None
        self._pid = os.getpid()
        _POOLS.add(self)

    def _start(self) -> None:
        if self._pid != os.getpid():   # a forked child: the parent's workers are not here
            self._after_fork()
        if self._workers:
            return
        self.state[_STOP] = 0
        for _ in range(self.threads - 1):
            # the thread holds the state array (not the pool): a pool collected while its workers
            # run must not free the memory they read; the finalizer below stops them
            t = threading.Thread(target=_work, args=(self._worker_fn, self._st, self._raw), daemon=True,
                                 name="ridgeline-llvm-native")
            t.start()
            self._workers.append(t)
        if self._finalizer is None:
            self._finalizer = weakref.finalize(self, self._stop_fn, self._st)

    def _after_fork(self) -> None:
        self._workers = []
        self.state[[_SLEEPERS, _DONE, _STOP]] = 0
        self.state[_TICKET] &= ~((1 << 32) - 1)     # keep the tag, no chunks pending
        self._pid = os.getpid()

    def launch(self, fn: Callable[..., None], extent: int, grain: int, chunks: int, ptrs: Sequence[int]) -> None:
        """``fn(lo, hi, *ptrs)`` over ``[0, extent)`` in ``chunks`` grain-aligned chunks, the
        calling thread and the workers claiming them; the caller must hold ``lock``."""
        if not self._workers:    # not started yet, or a forked child (``_forked`` cleared them)
            self._start()
        now = time.monotonic()
        if now >= self._next_check:
            self._check(now)
        if self._serial_until > now:
            fn(0, extent, *ptrs)
            return
        addr = getattr(fn, "_rl_addr", None)
        if addr is None:
            addr = ctypes.cast(fn, _VOIDP).value
            try:
                fn._rl_addr = addr
            except AttributeError:   # pragma: no cover - a callable that takes no attributes
                pass
        # grain and chunks >= 1: the native code divides by both
        self._entries[len(ptrs)](self._st, addr, extent, max(1, grain), max(1, min(chunks, MAX_CHUNKS)), *ptrs)

    def _check(self, now: float) -> None:
        """Once a second: the spin budget (when adaptive: ``_host_busy``), and whether the split
        launches since the last check took over ``OVERLOAD`` times what the caller alone would
        have (its own chunks' time scaled to all chunks) — then the host is not running the
        workers, and launches run on the calling thread alone for a while (doubling while it
        lasts, up to 16 s) instead of stalling on a descheduled worker."""
        self._next_check = now + 1.0
        if self.adaptive:
            self.state[_SPIN_NS] = 0 if self._host_busy(now) else int(self.spin_us * 1000)
        took, own = int(self.state[_LAUNCH_NS]), int(self.state[_OWN_NS])
        mine, chunks = int(self.state[_OWN_CHUNKS]), int(self.state[_ALL_CHUNKS])
        self.state[[_LAUNCH_NS, _OWN_NS, _OWN_CHUNKS, _ALL_CHUNKS]] = 0
        if mine and took > OVERLOAD * own * chunks / mine:
            self._backoff = min(16.0, self._backoff * 2) if self._backoff else 1.0
            self._serial_until = now + self._backoff
            self._next_check = self._serial_until
        elif mine:
            self._backoff = 0.0

    def _host_busy(self, now: float) -> bool:
        """Whether the calling thread waited for a CPU over ``BUSY_WAIT`` of the time since the
        last check (the kernel's run-queue wait of this thread; a spinning worker would take its
        time), else — no schedstat — whether the load average exceeds the cores + 1/2."""
        wait = _runqueue_wait_ns()
        tid = threading.get_ident()
        last, self._last_wait = self._last_wait, (tid, wait, now) if wait is not None else None
        if wait is not None and last is not None and last[0] == tid and now > last[2]:
            return (wait - last[1]) * 1e-9 > BUSY_WAIT * (now - last[2])
        return os.getloadavg()[0] > self._cores + 0.5

    def close(self, timeout: float = 1.0) -> None:
        """Stop and join the workers (they are started again by the next launch)."""
        if not self._workers or self._pid != os.getpid():
            self._workers = []
            return
        self._stop_fn(self._st)
        for t in self._workers:
            t.join(timeout)
        self._workers = []


def _work(worker_fn, st: int, raw: np.ndarray) -> None:
    """A worker thread's body: the native loop, with ``raw`` (its state) kept alive while it runs."""
    worker_fn(st)
    del raw


def _close_all() -> None:
    for p in list(_POOLS):
        p.close(0.5)


def _forked() -> None:
    """In a forked child: no workers, and a lock another parent thread held is free again."""
    for p in list(_POOLS):
        p.lock = threading.Lock()
        p._after_fork()


atexit.register(_close_all)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)
