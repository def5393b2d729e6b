"""Benchmark ridgeline.testing: graphs generated per second, and checks per second.

    python tools/bench_testing.py [--examples 500]

Generation is timed through hypothesis (as tests use it) for random graphs over every op, the
unfused idioms and the default mix; each is put next to a peer measured in the same run — the
numpy reference running the same graphs — so the ratio says what generation costs relative to
executing what it made. Checks are full ``check_pass`` examples (generate, reference run, pass,
verify, run, compare) and the differential checks against torch and onnxruntime. Timings are
noisy on a shared machine: compare ratios, not absolute numbers.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from ridgeline.backends.numpy import NumpyBackend  # noqa: E402
from ridgeline.testing import check_pass, random_inputs  # noqa: E402
from ridgeline.testing import strategies as rs  # noqa: E402
from ridgeline.testing.differential import check_backend, check_onnxruntime  # noqa: E402

SETTINGS = dict(database=None, deadline=None, derandomize=True, phases=[Phase.generate],
                suppress_health_check=list(HealthCheck))


def generation(name: str, strategy, n: int) -> None:
    graphs = []

    @settings(max_examples=n, **SETTINGS)
    @given(strategy, st.integers(0, 2 ** 31 - 1))
    def draw(g, seed):
        graphs.append((g, random_inputs(g, seed=seed)))
    t0 = time.perf_counter()
    draw()
    gen = time.perf_counter() - t0
    t0 = time.perf_counter()
    for g, inputs in graphs:
        NumpyBackend().compile(g).run(inputs)
    ref = time.perf_counter() - t0
    nodes = sum(len(g) for g, _ in graphs) / max(len(graphs), 1)
    print(f"  {name:<34} {len(graphs) / gen:8.0f} graphs/s  ({nodes:4.1f} nodes each; "
          f"reference run {len(graphs) / ref:8.0f} graphs/s; generation/run {gen / ref:5.2f}x)")


def checks(name: str, fn, n: int) -> None:
    t0 = time.perf_counter()
    report = fn(n)
    dt = time.perf_counter() - t0
    count = getattr(report, "examples", None) or getattr(report, "compared", 0) + getattr(report, "skipped", 0)
    print(f"  {name:<34} {count / dt:8.0f} checks/s  ({count} in {dt:.1f}s)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--examples", type=int, default=500)
    args = p.parse_args(argv)
    n = args.examples
    s = settings(database=None, derandomize=True)
    print(f"graph generation ({n} examples each):")
    generation("graphs() (every op)", rs.graphs(), n)
    generation("unfused() (every idiom)", rs.unfused(), n)
    generation("default_graphs() (check_pass's mix)", rs.default_graphs(), n)
    print(f"checks ({n} examples each):")
    checks("check_pass(dce)", lambda k: check_pass("dce", graphs=rs.graphs(), max_examples=k, settings=s), n)
    checks("check_pass(canonicalize)", lambda k: check_pass("canonicalize", max_examples=k, settings=s), n)
    checks("check_pass(default)", lambda k: check_pass("default", max_examples=k, settings=s), n)
    if importlib.util.find_spec("torch"):
        checks("check_backend(torch)", lambda k: check_backend("torch", max_examples=k, settings=s), n)
    if importlib.util.find_spec("onnxruntime"):
        checks("check_onnxruntime()", lambda k: check_onnxruntime(max_examples=k, settings=s), n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
