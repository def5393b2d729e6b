"""Soak the cost models' physical invariants over generated deployments.

    python tools/soak_cost_models.py                 # soak profile: 2000 cases
    python tools/soak_cost_models.py --profile ci    # 200 cases (about the CI tests' size)
    python tools/soak_cost_models.py --seed 3 --json out.json

Cases are drawn at random (seeded) from preset × target × phase × batch × context × dtypes ×
tp/pp; each is checked by ``ridgeline.testing.cost_invariants.check``. Prints the number of cases,
how many could be estimated, and every violation with its configuration; exit 1 on any.
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PRESETS = ("gpt2", "llama-2-7b", "llama-3-8b", "llama-2-13b", "llama-2-70b", "llama-3-70b", "llama-3.1-405b")
BATCHES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
CONTEXTS = (128, 512, 1024, 2048, 4096, 8192, 32768, 131072)
DTYPES = ("bf16", "fp16", "fp8", "int8")
WEIGHT_DTYPES = (None, None, "int8", "int4")
TPS = (1, 1, 2, 4, 8)
PPS = (1, 1, 1, 2, 4)


def draw(rng: random.Random, targets: list[str]):
    from ridgeline.testing.cost_invariants import Case
    preset = rng.choice(PRESETS)
    phase = "prefill" if rng.random() < 0.2 else "decode"
    ctx = rng.choice(CONTEXTS[:6] if phase == "prefill" else CONTEXTS)
    batch = rng.choice(BATCHES[:7] if phase == "prefill" else BATCHES)
    wd = rng.choice(WEIGHT_DTYPES)
    return Case(preset, rng.choice(targets), phase, batch, ctx, rng.choice(DTYPES) if wd is None else "bf16", wd,
                rng.choice(TPS), rng.choice(PPS))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", choices=("ci", "soak"), default="soak", help="ci: 200 cases; soak: 2000")
    ap.add_argument("--cases", type=int, default=None, help="override the profile's case count")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--targets", default="all", help="comma-separated target names or 'all'")
    ap.add_argument("--json", metavar="OUT", help="write cases and violations here")
    ap.add_argument("--every", type=int, default=100, help="print a progress line every N cases (a soak stopped "
                    "early then still says how many cases ran clean)")
    a = ap.parse_args(argv)
    if a.cases is None:
        a.cases = 200 if a.profile == "ci" else 2000
    from ridgeline.cost_models.targets import target_names
    from ridgeline.testing.cost_invariants import check, estimate_case
    targets = target_names() if a.targets == "all" else a.targets.split(",")
    rng = random.Random(a.seed)
    t0 = time.perf_counter()
    violations: list[str] = []
    estimated = 0
    by_inv: collections.Counter = collections.Counter()
    for i in range(a.cases):
        case = draw(rng, targets)
        if estimate_case(case) is not None:
            estimated += 1
        for v in check(case):
            violations.append(v)
            by_inv[v.split(":", 1)[0]] += 1
            print(v, flush=True)
        if (i + 1) % max(1, a.every) == 0:
            print(f"... {i + 1} cases, {estimated} estimable, {len(violations)} violations "
                  f"({time.perf_counter() - t0:.0f} s)", flush=True)
    dt = time.perf_counter() - t0
    print(f"{a.cases} cases ({estimated} estimable) in {dt:.0f} s: {len(violations)} violations "
          f"{dict(by_inv) if by_inv else ''}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"cases": a.cases, "estimable": estimated, "violations": violations}, f, indent=1)
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
