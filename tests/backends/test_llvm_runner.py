"""The runner that splits kernel launches across cores (native pool and pure-Python fallback):
every element of ``[0, extent)`` is run exactly once over drawn extents, grains, chunk counts and
thread counts, with the launch slot reused many times in a row; launches from several Python
threads at once; a bounds-checked kernel's error; a forked child; exit with workers spinning."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("llvmlite")

from ridgeline.backends.llvm import native_pool
from ridgeline.backends.llvm.checked import CheckedKernel
from ridgeline.backends.llvm.parallel import Runner
from ridgeline.ir.errors import BackendError

IMPLS = [pytest.param(False, id="python"),
         pytest.param(True, id="native", marks=pytest.mark.skipif(not native_pool.available(),
                                                                  reason="no native pool on this platform"))]


def _count_kernel(checked: bool = False):
    """``count[i] += 1`` for i in [lo, hi): a chunk run twice or skipped shows in the counts."""
    import llvmlite.ir as lir

    from ridgeline.backends.llvm.irutil import I32, const, kernel_function, load, loop, store
    from ridgeline.backends.llvm.jit import compile_ir, finalize_text
    from ridgeline.backends.llvm.lowering import cfunc
    m = lir.Module(name="count")
    _, b, lo, hi, (c,) = kernel_function(m, "count", 1, checked=checked)
    with loop(b, lo, hi, name="i") as i:
        store(b, b.add(load(b, c, i, I32), const(I32, 1)), c, i)
    b.ret_void()
    mod = compile_ir(finalize_text(str(m)))
    kern = cfunc(mod.address("count"), 3 if checked else 1)
    kern.module = mod    # keep the code alive with the function
    return CheckedKernel(kern, "count", 1) if checked else kern


_KERNEL: list = []


def _kernel():
    if not _KERNEL:
        _KERNEL.append(_count_kernel())
    return _KERNEL[0]


@pytest.mark.parametrize("native", IMPLS)
@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(extent=st.integers(0, 3000), grain=st.integers(1, 70), threads=st.integers(2, 4),
       launches=st.integers(1, 6))
def test_every_element_once(native, extent, grain, threads, launches):
    runner = _runner(threads, native)
    counts = np.zeros(extent + 16, np.int32)       # the tail must stay 0: nothing past extent
    for _ in range(launches):
        runner.launch(_kernel(), extent, [counts.ctypes.data], cost=1.0, grain=grain)
    assert (counts[:extent] == launches).all()
    assert not counts[extent:].any()


@pytest.mark.skipif(not native_pool.available(), reason="no native pool on this platform")
@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(extent=st.integers(0, 5000), grain=st.integers(0, 64), chunks=st.integers(0, 300))
def test_native_chunks_partition_the_range(extent, grain, chunks):
    """Any chunk count (not only the runner's few per thread; 0 and a grain of 0 taken as 1): chunks
    tile [0, extent) exactly."""
    pool = _runner(2, True)._pool
    counts = np.zeros(extent + 16, np.int32)
    with pool.lock:
        for _ in range(3):
            pool.launch(_kernel(), extent, grain, chunks, [counts.ctypes.data])
    assert (counts[:extent] == 3).all() and not counts[extent:].any()


_RUNNERS: dict = {}


def _runner(threads: int, native: bool) -> Runner:
    key = (threads, native)
    if key not in _RUNNERS:
        _RUNNERS[key] = Runner(threads, threshold=0, native=native, spin_us=50)
        assert _RUNNERS[key].native == (native and native_pool.available())
    return _RUNNERS[key]


@pytest.mark.parametrize("native", IMPLS)
def test_concurrent_launches_from_python_threads(native):
    """Four Python threads launch on one runner at once; each sees its own counts exactly."""
    runner = _runner(2, native)
    arrays = [np.zeros(4096 + k * 37, np.int32) for k in range(4)]
    errors = []

    def work(a):
        try:
            for _ in range(150):
                runner.launch(_kernel(), a.size, [a.ctypes.data], cost=1.0, grain=8)
        except BaseException as e:   # noqa: BLE001 - reported below
            errors.append(e)
    ts = [threading.Thread(target=work, args=(a,)) for a in arrays]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors
    for a in arrays:
        assert (a == 150).all()


@pytest.mark.parametrize("native", IMPLS)
def test_checked_kernel_error_through_split_launch(native):
    """A bounds-checked kernel launched over more elements than its buffer holds: the split
    launch reports the out-of-bounds store as a BackendError and writes nothing outside."""
    kern = _count_kernel(checked=True)
    from ridgeline.backends.llvm.lowering import Ptr
    buf = np.zeros(100 + 8, np.int32)
    p = Ptr(buf.ctypes.data)
    p.nbytes = 100 * 4          # the kernel is told 100 elements; the guard 8 must stay untouched
    with pytest.raises(BackendError, match="(load from|store to) buffer 0 at element"):
        _runner(2, native).launch(kern, 1000, [p], cost=1.0, grain=1)
    assert (buf[:100] == 1).all() and not buf[100:].any()


_CHILD = """
import os, sys, numpy as np
sys.path.insert(0, {root!r}); sys.path.insert(0, {tests!r})
from test_llvm_runner import _kernel, Runner
runners = [Runner(2, threshold=0, native=True, spin_us=0), Runner(2, threshold=0, native=True, spin_us=100000)]
a = np.zeros(10000, np.int32)
for r in runners:
    r.launch(_kernel(), a.size, [a.ctypes.data], 1.0, 4)
pid = os.fork()
if pid == 0:      # the child: the parent's workers are not here; launches must still finish
    b = np.zeros(5000, np.int32)
    for _ in range(20):
        for r in runners:
            r.launch(_kernel(), b.size, [b.ctypes.data], 1.0, 4)
    os._exit(0 if (b == 40).all() else 3)
_, status = os.waitpid(pid, 0)
for _ in range(20):
    for r in runners:
        r.launch(_kernel(), a.size, [a.ctypes.data], 1.0, 4)
assert (a == 42).all()
print("ok", os.waitstatus_to_exitcode(status))
"""


@pytest.mark.skipif(not native_pool.available() or not hasattr(os, "fork"), reason="needs the native pool and fork")
def test_fork_and_exit_with_workers_sleeping_and_spinning():
    """In a forked child the workers are restarted; the process exits cleanly (status 0, no hang)
    with one pool's worker asleep (spin 0) and another's spinning (100 ms) at exit."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    code = _CHILD.format(root=root, tests=os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["ok", "0"]


@pytest.mark.parametrize("var,value,msg", [("RIDGELINE_LLVM_RUNNER", "fast", "must be native or python"),
                                           ("RIDGELINE_LLVM_SPIN_US", "soon", "number of microseconds"),
                                           ("RIDGELINE_LLVM_SPIN_US", "-1", ">= 0")])
def test_bad_knobs_are_one_line_errors(monkeypatch, var, value, msg):
    monkeypatch.setenv(var, value)
    with pytest.raises(BackendError, match=msg) as e:
        Runner(2, native=None if var == "RIDGELINE_LLVM_RUNNER" else True)
    assert "\n" not in str(e.value)


def test_threshold_follows_the_runner():
    """The default split threshold is the native pool's where it runs, the Python runner's else."""
    from ridgeline.backends.llvm.parallel import DEFAULT_THRESHOLD, NATIVE_THRESHOLD
    assert Runner(2, native=False).threshold == DEFAULT_THRESHOLD
    assert Runner(2, native=True).threshold == (NATIVE_THRESHOLD if native_pool.available() else DEFAULT_THRESHOLD)
    assert Runner(2, 123.0, native=True).threshold == 123.0
