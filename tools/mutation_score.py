"""Mutation score of check_pass: how many deliberately broken passes its defaults catch, and how fast.

    python tools/mutation_score.py                       # the ci profile (what CI runs)
    python tools/mutation_score.py --profile soak --examples 2000
    python tools/mutation_score.py --only int-div-floors,gelu-always-tanh

Each mutant of ``tests/testing/mutants`` is registered as the pass ``mutant-<name>`` and checked with
``check_pass("mutant-<name>")`` and nothing else — what a plugin author would write. A mutant is
*caught* when the check fails (``PassCheckError``); a check that finds the pass changed nothing
(``VacuousCheckError``) is reported as vacuous, not caught. Prints per mutant the outcome, the time
to the verdict, the failure kind and the shrunk graph's size, then caught/total.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "testing"))


def score(names: list[str] | None = None, *, profile: str = "ci", examples: int | None = None,
          out=print) -> tuple[int, int, list[tuple[str, str, float]]]:
    """Run the mutants; return (caught, total, [(name, outcome, seconds)])."""
    from hypothesis import settings
    from mutants import MUTANTS, register_all  # type: ignore[import-not-found]

    import ridgeline.testing.pytest_plugin  # noqa: F401  (registers the ci and soak profiles)
    from ridgeline.testing import PassCheckError, VacuousCheckError, check_pass
    register_all()
    base = settings.get_profile(profile)
    chosen = [MUTANTS[n] for n in names] if names else list(MUTANTS.values())
    repro = tempfile.mkdtemp(prefix="mutation-score-")  # the caught mutants' graphs, not the checkout
    rows = []
    for m in chosen:
        t0 = time.perf_counter()
        try:
            report = check_pass(m.pass_name, settings=base, max_examples=examples, repro_dir=repro)
            outcome, detail = "MISSED", f"{report.examples} graphs, {report.modified} changed"
        except PassCheckError as e:
            outcome, detail = "caught", f"{e.failure.kind}, shrunk to {len(e.failure.graph)} nodes"
        except VacuousCheckError as e:
            outcome, detail = "vacuous", str(e).split(";")[0]
        dt = time.perf_counter() - t0
        rows.append((m.name, outcome, dt))
        out(f"  {m.name:<28} {outcome:<8} {dt:6.1f}s  [{m.category}] {detail}")
    caught = sum(1 for _, o, _ in rows if o == "caught")
    return caught, len(rows), rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="ci", choices=["ci", "soak"],
                   help="hypothesis profile: ci (bounded, derandomized) or soak (randomized, many examples)")
    p.add_argument("--examples", type=int, default=None, help="max examples per mutant (default: the profile's)")
    p.add_argument("--only", default="", help="comma-separated mutant names")
    args = p.parse_args(argv)
    logging.getLogger("ridgeline.testing").setLevel(logging.ERROR)  # the first-failure notices
    names = [n for n in args.only.split(",") if n] or None
    print(f"mutation score, profile {args.profile}" + (f", {args.examples} examples" if args.examples else "") + ":")
    t0 = time.perf_counter()
    try:
        caught, total, rows = score(names, profile=args.profile, examples=args.examples)
    except KeyError as e:
        print(f"error: unknown mutant {e}", file=sys.stderr)
        return 2
    times = sorted(t for _, _, t in rows)
    print(f"caught {caught}/{total} in {time.perf_counter() - t0:.0f}s; per mutant median {times[len(times) // 2]:.1f}s, "
          f"max {times[-1]:.1f}s")
    return 0 if caught == total else 1


if __name__ == "__main__":
    sys.exit(main())
