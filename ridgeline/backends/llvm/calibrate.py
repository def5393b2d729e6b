"""Measure the host the llvm backend runs on: GEMM FLOP/s, stream bandwidth, per-kernel overhead.

These are the numbers a host cost model needs to predict this backend's time: what its GEMM
reaches (per dtype, through the path the backend takes: the JIT kernel for f32, numpy's BLAS
for f64), what its streaming kernels move per second (STREAM's copy and triad over arrays far
larger than the last-level cache, on one core and on all), and what one more node costs in a run
(Python dispatch plus the call). Every figure is the best of several repetitions in this process,
so a busy machine lowers them; ``ridgeline calibrate`` prints them and writes a target file.
"""

from __future__ import annotations

import logging
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ...ir import Builder, Graph, tensor
from .jit import host

__all__ = ["Calibration", "calibrate", "cache_sizes", "target_toml"]

log = logging.getLogger(__name__)


@dataclass
class Calibration:
    """What ``calibrate`` measured (SI units: FLOP/s, bytes/s, seconds, bytes)."""

    cpu: str
    llvm_cpu: str
    features: list[str]
    cores: int
    vector_bits: int
    caches: dict[str, int]                          # "L1d", "L2", "L3" -> bytes (per instance)
    gemm_flops: dict[str, float] = field(default_factory=dict)       # dtype -> FLOP/s (all cores)
    gemm_flops_1core: dict[str, float] = field(default_factory=dict)
    gemm_path: dict[str, str] = field(default_factory=dict)           # dtype -> "jit" | "blas" (who ran it)
    stream: dict[str, float] = field(default_factory=dict)            # "copy"/"triad" (+ "_1core") -> B/s
    level_bandwidth: dict[str, float] = field(default_factory=dict)   # "L1d"/"L2"/"L3" -> copy B/s, all cores
    vector_flops: float = 0.0          # f32 element-wise FLOP/s on cache-resident data, all cores
    memory_bytes: int = 0
    kernel_overhead_s: float = 0.0     # one more kernel node in a run
    view_overhead_s: float = 0.0       # one more view node (no kernel) in a run
    run_overhead_s: float = 0.0        # a run, beyond its nodes
    op_overhead_s: dict[str, float] = field(default_factory=dict)   # op -> per kernel, where not kernel_overhead_s
    attention_score_s: float = 0.0     # attention kernel, one core: per score
    attention_channel_s: float = 0.0   # ... and per score and head channel (d + dv)
    parallel_dispatch_s: float = 0.0   # splitting one kernel across the cores
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def cache_sizes() -> dict[str, int]:
    """Per-instance cache sizes from sysfs (empty where the platform does not say)."""
    out: dict[str, int] = {}
    base = Path("/sys/devices/system/cpu/cpu0/cache")
    for idx in sorted(base.glob("index*")):
        try:
            level = (idx / "level").read_text().strip()
            kind = (idx / "type").read_text().strip()
            size = (idx / "size").read_text().strip()
        except OSError:
            continue
        if kind == "Instruction":
            continue
        mult = {"K": 1024, "M": 1024 ** 2, "G": 1024 ** 3}.get(size[-1], 1)
        out[f"L{level}{'d' if kind == 'Data' else ''}"] = int(size.rstrip("KMG")) * mult
    return out


def _proc_field(path: str, key: str) -> str:
    """The value of ``key:`` in a /proc file ("" where the platform has none)."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def _mem_total() -> int:
    kib = _proc_field("/proc/meminfo", "MemTotal:").split()
    return int(kib[0]) * 1024 if kib and kib[0].isdigit() else 0


def _vendor() -> str:
    v = _proc_field("/proc/cpuinfo", "vendor_id")
    return {"AuthenticAMD": "AMD", "GenuineIntel": "Intel"}.get(v, v) or platform.machine()


def _cpu_name() -> str:
    return _proc_field("/proc/cpuinfo", "model name") or platform.processor() or platform.machine()


def _best(fn: Callable[[], object], repeats: int, min_time: float = 0.0) -> float:
    fn()
    best = float("inf")
    t_end = time.perf_counter() + min_time
    k = 0
    while k < repeats or time.perf_counter() < t_end:
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
        k += 1
    return best


def _compile(graph: Graph, **options):
    from . import LLVMBackend
    return LLVMBackend().compile(graph, **options)


def _gemm(n: int, dtype: str, threads: int, repeats: int) -> tuple[float, str]:
    rng = np.random.default_rng(0)
    g = Graph("gemm")
    x = g.add_input("x", tensor(dtype, n, n))
    w = g.add_constant("w", rng.standard_normal((n, n)).astype(np.dtype(dtype.replace("f", "float"))))
    g.outputs = [Builder(g).MatMul(x, w)]
    exe = _compile(g, threads=threads)
    path = {"gemm": "jit"}.get(exe.plan.kinds[g.nodes[0]], exe.plan.kinds[g.nodes[0]])
    inp = {"x": rng.standard_normal((n, n)).astype(w.data.dtype)}
    t = _best(lambda: exe.run(inp), repeats)
    return 2.0 * n ** 3 / t, path


def _fused(name: str, n: int, k: int, body: Callable) -> Graph:
    """A graph of one elementwise ``Fused`` node over ``k`` f32[n] inputs."""
    g = Graph(name)
    ins = [g.add_input(f"x{i}", tensor("f32", n)) for i in range(k)]
    sub = Graph("body")
    params = [sub.add_input(f"p{i}", tensor("f32", n)) for i in range(k)]
    sub.outputs = [body(Builder(sub), params)]
    g.outputs = [g.add_node("Fused", ins, {"kind": "elementwise"}, body=sub).outputs[0]]
    return g


def _stream(n: int, threads: int, repeats: int) -> dict[str, float]:
    """STREAM copy (8 bytes per element moved) and triad (12), as STREAM counts them."""
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal(n).astype(np.float32) for _ in range(2)]
    kernels = {"copy": (1, lambda b, p: p[0], 8), "triad": (2, lambda b, p: b.Add(p[0], b.Mul(p[1], b.constant(np.float32(3.0)))), 12)}
    out = {}
    for name, (k, body, per) in kernels.items():
        exe = _compile(_fused(name, n, k, body), threads=threads)
        inp = {f"x{i}": xs[i] for i in range(k)}
        out[name] = per * n / _best(lambda: exe.run(inp), repeats)
    return out


def _pingpong(n: int, fmas: int, reps: int, threads: int) -> float:
    """Seconds for ``reps`` sweeps of ``b = f(a); a = f(b)`` over n floats, f a chain of ``fmas``
    multiply-adds (0: a scaled copy). Each sweep reads what the last one wrote, so the optimizer
    cannot drop any, and the repetitions run inside the kernel: no per-call overhead is timed.
    Threads split the elements; each sweeps its own part."""
    from .irutil import F32, const, kernel_function, load, loop, store
    from .jit import compile_ir, finalize_text
    from .lowering import cfunc
    from .parallel import Runner
    import llvmlite.ir as lir
    m = lir.Module(name="calibrate")
    fn, b, lo, hi, (pa, pb) = kernel_function(m, "pingpong", 2, checked=False)

    def sweep(src, dst):
        with loop(b, lo, hi, name="i") as i:
            v = load(b, src, i, F32)
            if fmas == 0:
                v = b.fmul(v, const(F32, 0.999))
            for _ in range(fmas):
                v = b.fadd(b.fmul(v, const(F32, 0.999)), const(F32, 0.001), flags=("contract",))
            store(b, v, dst, i)
    with loop(b, 0, reps // 2, name="r"):
        sweep(pa, pb)
        sweep(pb, pa)
    b.ret_void()
    mod = compile_ir(finalize_text(str(m)))
    kern = cfunc(mod.address("pingpong"), 2)
    a = np.ones(n, np.float32)
    c = np.ones(n, np.float32)
    runner = Runner(threads, threshold=0)
    t = _best(lambda: runner.launch(kern, n, [a.ctypes.data, c.ctypes.data], 1.0, grain=1024), 5)
    runner.close()
    del mod
    return t


def _level_bandwidth(size: int, instances: int, threads: int) -> float:
    """Copy bandwidth (read + write) with both arrays filling half of a cache level's capacity."""
    n = max(2048, size * instances // 2 // 4 // 2)
    reps = max(2, int(2e9 / (8 * n))) // 2 * 2
    return 8.0 * n * reps / _pingpong(n, 0, reps, threads)


def _vector_peak(threads: int) -> float:
    """f32 FLOP/s of 32 dependent multiply-adds per element on L1-resident data."""
    n = 2048 * threads
    reps = 2000
    return 64.0 * n * reps / _pingpong(n, 32, reps, threads)


def _chain_times(make: Callable, shape: tuple[int, ...], k: int, repeats: tuple[int, int]) -> list[float]:
    """Best run times of chains of 1 and ``k`` links ``v = make(builder, v, x, c)`` from an f32
    input ``x`` of ``shape`` (``c(name, array)`` adds a constant), compiled for one core."""
    inp = {"x": np.ones(shape, np.float32)}
    times = []
    for n, reps in zip((1, k), repeats):
        g = Graph(f"chain{n}")
        v = x = g.add_input("x", tensor("f32", *shape))
        b = Builder(g)
        for j in range(n):
            v = _first(make(b, v, x, lambda name, a, j=j: g.add_constant(f"{name}{j}", a)))
        g.outputs = [v]
        exe = _compile(g, threads=1)
        times.append(_best(lambda: exe.run(inp), reps))   # noqa: B023 - timed here, at once
    return times


def _overheads(repeats: int) -> tuple[float, float, float]:
    """Per kernel node, per view node, per run: slopes and intercept of chains of 1 and 65 nodes."""
    axis = np.array([0], np.int64)
    reps = (repeats * 20, repeats * 5)
    n1, n65 = _chain_times(lambda b, v, x, c: b.Neg(v), (1,), 65, reps)
    v1, v65 = _chain_times(lambda b, v, x, c: (b.Unsqueeze if v.type.rank == 1 else b.Squeeze)(v, c("a", axis)),
                           (1,), 65, reps)
    per = max((n65 - n1) / 64, 0.0)
    return per, max((v65 - v1) / 64, 0.0), max(n1 - per, 0.0)


def _first(v):
    return v[0] if isinstance(v, (tuple, list)) else v


#: ops whose kernels cost more to dispatch than a unary element-wise one (more operands, more
#: glue): chains of each on tiny tensors; ``x`` is [4, 8] f32, ``c(name, array)`` adds a constant
_OP_CHAINS: dict[str, Callable] = {
    "Add": lambda b, v, x, c: b.Add(v, x),
    "MatMul": lambda b, v, x, c: b.MatMul(v, c("w", np.eye(8, dtype=np.float32))),
    "LayerNormalization": lambda b, v, x, c: _first(b.LayerNormalization(v, c("s", np.ones(8, np.float32)),
                                                                  c("o", np.zeros(8, np.float32)), axis=-1)),
    "RMSNormalization": lambda b, v, x, c: b.RMSNormalization(v, c("s", np.ones(8, np.float32)), axis=-1),
    "Gather": lambda b, v, x, c: b.Gather(v, c("i", np.array([3, 2, 1, 0], np.int64)), axis=0),
    "Softmax": lambda b, v, x, c: b.Softmax(v, axis=-1),
    "Attention": lambda b, v, x, c: b.Reshape(_first(b.Attention(*(b.Reshape(v, c("s3", np.array([1, 4, 8], np.int64))),) * 3,
                                                                 q_num_heads=2, kv_num_heads=2)),
                                              c("s2", np.array([4, 8], np.int64))),
}


def _op_overheads(repeats: int, base: float, view: float) -> dict[str, float]:
    """Dispatch cost per kernel of each op in ``_OP_CHAINS`` (slope of chains of 1 and 17), kept
    where it differs from the unary element-wise ``base`` by more than 10%."""
    out = {}
    for op, make in _OP_CHAINS.items():
        t1, t17 = _chain_times(make, (4, 8), 17, (repeats * 10, repeats * 10))
        t = (t17 - t1) / 16
        if op == "Attention":
            t -= 2 * view   # its chain steps through two reshapes per link
        if abs(t - base) > 0.1 * base:
            out[op] = max(t, 0.0)
    return out


def _attention_per_score(repeats: int) -> tuple[float, float]:
    """Per score, one core: (fixed part, part per head channel) of the attention kernel, fitted to
    two head sizes at 4 heads × 128 queries × 128 keys (dispatch costs cancel in the fit)."""
    pts = []
    for d in (8, 64):
        g = Graph("att")
        q = g.add_input("q", tensor("f32", 1, 4, 128, d))
        g.outputs = [_first(Builder(g).Attention(q, q, q))]
        exe = _compile(g, threads=1)
        inp = {"q": np.random.default_rng(0).standard_normal((1, 4, 128, d)).astype(np.float32) * 0.1}
        pts.append((2 * d, _best(lambda: exe.run(inp), repeats * 4) / (4 * 128 * 128)))
    (c1, t1), (c2, t2) = pts
    chan = max((t2 - t1) / (c2 - c1), 0.0)
    return max(t1 - chan * c1, 0.0), chan


def _dispatch(repeats: int) -> float:
    """What splitting costs: a split launch's time beyond an ideal share of the single-core time."""
    n = 1 << 16
    g = Graph("d")
    x = g.add_input("x", tensor("f32", n))
    g.outputs = [Builder(g).Neg(x)]
    inp = {"x": np.ones(n, np.float32)}
    one = _compile(g, threads=1)
    many = _compile(g, parallel_threshold=0)
    if many.runner.threads == 1:
        return 0.0
    t1 = _best(lambda: one.run(inp), repeats * 10)
    t2 = _best(lambda: many.run(inp), repeats * 10)
    return max(t2 - t1 / many.runner.threads, 0.0)


def calibrate(*, quick: bool = False, threads: int | None = None) -> Calibration:
    """Measure the host (a few seconds; ``quick`` uses small sizes, for tests)."""
    t0 = time.perf_counter()
    info = host()
    cores = threads or info.cores
    cal = Calibration(cpu=_cpu_name(), llvm_cpu=info.cpu, features=sorted(
        f[1:] for f in info.features.split(",") if f.startswith("+") and f[1:4] in ("avx", "fma", "sse", "amx")),
        cores=cores, vector_bits=info.vector_bits, caches=cache_sizes())
    repeats = 2 if quick else 5
    n = 256 if quick else 1536
    for dt in ("f32", "f64"):
        cal.gemm_flops[dt], cal.gemm_path[dt] = _gemm(n, dt, cores, repeats)
        cal.gemm_flops_1core[dt], _ = _gemm(n if quick else 1024, dt, 1, repeats)
    llc = max(cal.caches.values(), default=32 << 20)
    elems = (1 << 16) if quick else max(4 * llc // 4, 1 << 24)   # 4x the last-level cache per array
    for th, suffix in ((cores, ""), (1, "_1core")):
        for k, v in _stream(elems, th, repeats).items():
            cal.stream[k + suffix] = v
    for level, size in cal.caches.items():
        cal.level_bandwidth[level] = _level_bandwidth(size, cores if level != "L3" else 1, cores)
    cal.vector_flops = _vector_peak(cores)
    cal.memory_bytes = _mem_total()
    cal.kernel_overhead_s, cal.view_overhead_s, cal.run_overhead_s = _overheads(repeats)
    cal.op_overhead_s = _op_overheads(repeats, cal.kernel_overhead_s, cal.view_overhead_s)
    cal.attention_score_s, cal.attention_channel_s = _attention_per_score(repeats)
    cal.parallel_dispatch_s = _dispatch(repeats)
    cal.seconds = time.perf_counter() - t0
    log.info("calibrated in %.1f s", cal.seconds)
    return cal


def _path(kind: str | None) -> str:
    return {"jit": "the JIT GEMM", "blas": "numpy's BLAS"}.get(kind or "", str(kind))


def _giga(v: float, unit: str = "GB/s") -> str:
    return f"{v / 1e9:.4g} {unit}"   # 4 digits: a slow host (2.03 GB/s) must not round by 2%


def _size(v: int) -> str:
    for unit, k in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if v >= k:
            return f"{v // k} {unit}" if v % k == 0 else f"{v / k:.1f} {unit}"
    return f"{v} B"


def target_toml(cal: Calibration, *, name: str = "host-calibrated", command: str = "ridgeline calibrate") -> str:
    """The calibration as a ``cpu``-family target file (the schema of ``cost_models/targets``).

    Peaks and bandwidths are what the llvm backend reached here, so the efficiencies are 1: a
    cost model that applies them predicts this backend's time, not the silicon's datasheet.
    """
    from datetime import date

    from . import gemm
    from .parallel import get_runner
    today = date.today().isoformat()
    lines = [
        f"# Measured by `{command}` on {today}: {cal.cpu} ({cal.llvm_cpu} to LLVM), {cal.cores} cores used,",
        f"# {cal.vector_bits}-bit SIMD. Every throughput is what ridgeline's llvm backend reached on this host, the best",
        "# of several runs in one process (other jobs sharing the machine lower them); caches from sysfs.",
        f'name = "{name}"',
        f'title = "this host as measured: {cal.cores} cores, {cal.vector_bits}-bit SIMD ({cal.llvm_cpu})"',
        f'vendor = "{_vendor()}"',
        'family = "cpu"',
        f'calibrated_on = ["{command} {today}: f32 GEMM by {_path(cal.gemm_path.get("f32"))}, f64 by '
        f'{_path(cal.gemm_path.get("f64"))}; STREAM copy/triad; {cal.seconds:.0f} s"]',
        "",
        "[units.fma]",
        'kind = "matrix"',
        f"count = {cal.cores}",
        "# measured: square MatMul through the llvm backend (f32: its JIT GEMM; f64: numpy's BLAS), all cores",
        "peak = { " + ", ".join(f'{dt} = "{_giga(v, "GFLOP/s")}"' for dt, v in cal.gemm_flops.items()) + " }",
        "",
        "[units.simd]",
        'kind = "vector"',
        f"count = {cal.cores}",
        "# measured: a JIT loop of 32 dependent multiply-adds per element on L1-resident data, all cores",
        f'peak = {{ f32 = "{_giga(cal.vector_flops, "GFLOP/s")}" }}',
        "",
        "[[memory]]",
        'name = "dram"',
        f'capacity = "{_size(cal.memory_bytes) if cal.memory_bytes else "16 GiB"}"   # MemTotal',
        f'bandwidth = "{_giga(cal.stream.get("triad", 0.0))}"   # measured: STREAM triad, all cores '
        f'(copy {_giga(cal.stream.get("copy", 0.0))}; one core: triad {_giga(cal.stream.get("triad_1core", 0.0))})',
    ]
    for level, mem_name in (("L3", "l3"), ("L2", "l2"), ("L1d", "l1")):
        if level not in cal.caches:
            continue
        per_core = level != "L3"
        lines += ["", "[[memory]]", f'name = "{mem_name}"']
        if per_core:
            lines += ['per = "core"', f"count = {cal.cores}"]
        lines += [f'capacity = "{_size(cal.caches[level])}"   # sysfs',
                  f'bandwidth = "{_giga(cal.level_bandwidth.get(level, 0.0))}"   # measured: copy within the level, all cores '
                  f'(read + write)']
    lines += [
        "",
        "[array]",
        f"cores = {cal.cores}",
        f"gemm_rows = {gemm.TILE_512[0]}                 # rows of the llvm backend's GEMM micro-kernel (AVX-512)",
        f"gemm_task = [{gemm._blocks()[1] // gemm.TILE_512[0] * gemm.TILE_512[0]}, 256]         "
        "# the llvm backend's GEMM task: MC rows x up to 256 columns",
        f'parallel_min_bytes = "{_size(int(get_runner().threshold))}"   # the llvm backend splits kernels above this cost',
        f'attention_score = "{cal.attention_score_s * 1e9:.4g} ns"   # measured: the attention kernel per score, one core',
        f'attention_channel = "{cal.attention_channel_s * 1e9:.4g} ns"   # measured: per score and head channel (d + dv)',
        "",
        "[overheads]",
        f'kernel = "{cal.kernel_overhead_s * 1e6:.4g} us"   # measured: one more kernel node in an llvm-backend run',
        f'node = "{cal.view_overhead_s * 1e6:.4g} us"   # measured: one more view node (Squeeze/Unsqueeze)',
        f'run = "{cal.run_overhead_s * 1e6:.4g} us"   # measured: a one-node run less its node',
        f'parallel = "{cal.parallel_dispatch_s * 1e6:.4g} us"   # measured: a split launch beyond its share of the one-core time',
        "# measured: chains of each op on [4, 8] tensors, where they differ from `kernel` by over 10%",
        "ops = { " + ", ".join(f'{op} = "{t * 1e6:.4g} us"' for op, t in cal.op_overhead_s.items()) + " }",
        "",
        "[efficiency]",
        "matrix = 1.0                  # the peaks above are achieved figures, not datasheet ones",
        "vector = 1.0",
        "memory = 1.0",
        "",
    ]
    return "\n".join(lines)
