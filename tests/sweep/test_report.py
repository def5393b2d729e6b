"""Pareto fronts on generated point clouds: nothing on the front is dominated, everything off it is."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ridgeline.sweep.report import MINIMIZE, pareto_front

coords = st.lists(st.tuples(st.integers(1, 30), st.integers(1, 30)), min_size=1, max_size=40)


def _dominates(a, b, x, y):
    sx = -1 if x in MINIMIZE else 1
    sy = -1 if y in MINIMIZE else 1
    ge = sx * a[x] >= sx * b[x] and sy * a[y] >= sy * b[y]
    gt = sx * a[x] > sx * b[x] or sy * a[y] > sy * b[y]
    return ge and gt


@settings(max_examples=50, deadline=None)
@given(pts=coords, y=st.sampled_from(["tokens_per_s_per_device", "joules_per_token"]))
def test_front_is_exactly_the_non_dominated_points(pts, y):
    x = "tokens_per_s_per_user"
    rows = [{"point": i, x: float(a), y: float(b)} for i, (a, b) in enumerate(pts)]
    front = pareto_front(rows, x, y)
    ids = {r["point"] for r in front}
    for r in front:
        assert not any(_dominates(o, r, x, y) for o in rows)
    for r in rows:
        if r["point"] not in ids:       # dominated, or a duplicate of a front point's coordinates
            assert any(_dominates(f, r, x, y) or (f[x], f[y]) == (r[x], r[y]) for f in front)
    assert len({(r[x], r[y]) for r in front}) == len(front)
    assert [r[x] for r in front] == sorted(r[x] for r in front)
