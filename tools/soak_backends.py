"""Soak run of the executing backends against the numpy reference: drawn transformer configs and
one-kernel shape spaces, counting graphs checked, mismatches and nondeterminism.

    python tools/soak_backends.py --profile ci                    # a minute: a few of each
    nice -n 10 python tools/soak_backends.py --profile soak --configs 10000 --out soak-backends

Each model config (``ridgeline.testing.model_configs``) is built, run on numpy, then on llvm
(after the default pipeline, bounds-checked with ``RIDGELINE_LLVM_CHECKED=1`` unless
``--unchecked``) and torch, each executable twice (outputs must be bitwise equal), compared at
1e-4 relative. The kernel spaces (``ridgeline.testing.kernel_spaces``) run on llvm in strict mode.
Unlike the tests, a failure does not stop the run: it is counted by kind and its graph saved
under ``--out`` (``.rir``, ``.onnx``, inputs) for ``ridgeline run`` / ``check_backend``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PROFILES = {"ci": {"configs": 20, "kernels": 10}, "soak": {"configs": 10000, "kernels": 1000}}


def _each(strategy, n: int, seed: int, fn) -> None:
    """``fn(example)`` on ``n`` examples of ``strategy`` (generated only: no shrinking, no stop —
    ``fn`` records failures itself)."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hseed

    @hseed(seed)
    @settings(max_examples=n, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def go(example):
        fn(example)
    go()


def soak(configs: int, kernels: int, backends: list[str], out: Path | None, seed: int, rtol: float,
         minutes: float | None = None) -> dict:

    from ridgeline.ir.errors import BackendError
    from ridgeline.testing.differential import BackendCheckError, check_backend
    from ridgeline.testing.kernel_spaces import KERNEL_SPACES
    from ridgeline.testing.model_configs import build_model, model_configs

    counts: dict[str, Counter] = {}
    examples: dict[str, Counter] = {}
    t0 = time.perf_counter()

    def one(label: str, backend: str, graph, **kw) -> None:
        c = counts.setdefault(label, Counter())
        try:
            rep = check_backend(backend, graph, rtol=rtol, repro_dir=out, **kw)
            c["checked"] += rep.compared
            c["skipped"] += rep.skipped
            for op, k in rep.ops.items():
                examples.setdefault(label, Counter())[op] += k
        except BackendCheckError as e:
            c[e.failure.kind] += 1
            print(f"{label}: {e.failure.kind}: {e.failure.message[:200]}", flush=True)
        except BackendError as e:   # compile failures that are not skips
            c["error"] += 1
            print(f"{label}: error: {str(e)[:200]}", flush=True)

    done = [0]

    deadline = t0 + minutes * 60 if minutes else None

    def model(cfg) -> None:
        if deadline is not None and time.perf_counter() > deadline:
            return   # out of time: the remaining draws are skipped (and not counted)
        g = build_model(cfg)
        for be in backends:
            one(f"model/{be}", be, g, pipeline="default" if be == "llvm" else None)
        done[0] += 1
        if done[0] % 10 == 0:
            print(f"{done[0]} configs, {time.perf_counter() - t0:.0f}s: "
                  + json.dumps({k: dict(v) for k, v in counts.items()}), flush=True)
    if configs:
        _each(model_configs(), configs, seed, model)
    if "llvm" in backends and kernels:
        for k, (fam, space) in enumerate(KERNEL_SPACES.items()):
            _each(space, kernels, seed + k + 1,
                  lambda g, fam=fam: None if deadline is not None and time.perf_counter() > deadline
                  else one(f"kernel/{fam}", "llvm", g, options={"strict": True}))
    return {"seconds": round(time.perf_counter() - t0, 1), "configs": done[0], "counts": {k: dict(v) for k, v in counts.items()},
            "kernel_ops": {k: dict(v) for k, v in examples.items() if k.startswith("kernel/")}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", choices=sorted(PROFILES), default="ci")
    ap.add_argument("--configs", type=int, help="model configs to draw (default: the profile's)")
    ap.add_argument("--kernels", type=int, help="graphs per kernel family (default: the profile's)")
    ap.add_argument("--backends", default="llvm,torch", help="comma-separated executing backends")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rtol", type=float, default=1e-4)
    ap.add_argument("--unchecked", action="store_true", help="llvm without bounds checks (faster)")
    ap.add_argument("--out", type=Path, help="folder for the repros of failures")
    ap.add_argument("--minutes", type=float, help="stop drawing new graphs after this long")
    a = ap.parse_args(argv)
    prof = PROFILES[a.profile]
    if not a.unchecked:
        os.environ["RIDGELINE_LLVM_CHECKED"] = "1"
    res = soak(a.configs if a.configs is not None else prof["configs"],
               a.kernels if a.kernels is not None else prof["kernels"],
               [b for b in a.backends.split(",") if b], a.out, a.seed, a.rtol, a.minutes)
    print(json.dumps(res, indent=1))
    bad = sum(n for c in res["counts"].values() for k, n in c.items() if k not in ("checked", "skipped"))
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
