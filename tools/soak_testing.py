"""Soak run: many random graphs through a pipeline, numpy before vs after, counting every failure.

    python tools/soak_testing.py --examples 100000 --pipeline default --jobs 2 --out soak-out

Unlike ``check_pass`` (which stops at the first failure and shrinks it), this keeps going and
reports how many graphs failed and how, saving each distinct failure's graph (``.rir``, ``.onnx``,
inputs) under ``--out``; replay one with ``check_pass`` or the printed ``ridgeline run`` command.
``pytest tests/testing/test_soak.py --hypothesis-profile=soak`` is the shrinking variant.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _worker(args: tuple) -> dict:
    index, examples, pipeline, out, seed = args
    from hypothesis import Phase, given, settings
    from hypothesis import seed as hseed
    from hypothesis import strategies as st

    from ridgeline.testing import PassCheckError, check_graph, random_inputs
    from ridgeline.testing.check import _find_culprit, as_target, save_repro
    from ridgeline.testing.strategies import default_graphs

    target = as_target(pipeline)
    kinds: Counter = Counter()
    saved: dict[str, str] = {}
    done = 0
    t0 = time.perf_counter()

    @hseed(seed + index)
    @settings(max_examples=examples, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(__import__("hypothesis").HealthCheck))
    @given(g=default_graphs(), s=st.integers(0, 2 ** 31 - 1))
    def soak(g, s):
        nonlocal done
        done += 1
        if done % 5000 == 0:
            print(f"[worker {index}] {done} graphs, {sum(kinds.values())} failures, "
                  f"{done / (time.perf_counter() - t0):.0f} graphs/s", flush=True)
        try:
            check_graph(target, g, random_inputs(g, seed=s))
        except PassCheckError as e:
            f = e.failure
            culprit = _find_culprit(f, None, None)  # which pass of the pipeline, for grouping
            where = culprit.split(":")[0] if culprit else pipeline
            key = f"{f.kind} after {where}: {f.message.splitlines()[0][:120]}"
            kinds[key] += 1
            if key not in saved and len(saved) < 50:
                saved[key] = str(save_repro(f, out).rir)
        except Exception as e:  # the reference could not run the generated graph: a generator bug
            key = f"generator: {type(e).__name__}: {str(e).splitlines()[0][:160]}"
            kinds[key] += 1
    soak()
    return {"done": done, "failures": dict(kinds), "saved": saved, "seconds": time.perf_counter() - t0}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--examples", type=int, default=100_000)
    p.add_argument("--pipeline", default="default")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--seed", type=int, default=20251122)
    p.add_argument("--out", default="soak-out")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    share = [args.examples // args.jobs + (1 if i < args.examples % args.jobs else 0) for i in range(args.jobs)]
    t0 = time.perf_counter()
    with mp.get_context("spawn").Pool(args.jobs) as pool:
        results = pool.map(_worker, [(i, n, args.pipeline, str(out), args.seed) for i, n in enumerate(share)])
    total = sum(r["done"] for r in results)
    failures: Counter = Counter()
    saved: dict[str, str] = {}
    for r in results:
        failures.update(r["failures"])
        saved.update(r["saved"])
    summary = {"pipeline": args.pipeline, "graphs": total, "failures": sum(failures.values()),
               "kinds": dict(failures.most_common()), "saved": saved,
               "seconds": round(time.perf_counter() - t0, 1), "jobs": args.jobs}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    return 1 if failures else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
