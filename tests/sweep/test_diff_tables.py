"""``diff_tables`` (what ``tools/bench_sweep.py --compare`` checks engines' tables with): equal
content in any row or column order is no difference; any changed value, type, column or point is."""

from __future__ import annotations

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from ridgeline.sweep.results import diff_tables

_values = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=False, width=64))


@settings(max_examples=20, deadline=None)
@given(col=st.lists(_values, min_size=1, max_size=12), order=st.randoms(use_true_random=False),
       edit=st.integers(min_value=0))
def test_order_free_and_every_edit_found(col, order, edit):
    n = len(col)
    a = pa.table({"point": list(range(n)), "time_s": pa.array(col, pa.float64()), "target": ["h100"] * n})
    perm = list(range(n))
    order.shuffle(perm)
    b = a.take(perm).select(["target", "time_s", "point"])           # rows and columns reordered
    assert diff_tables(a, b) == []
    i = edit % n
    changed = list(col)
    changed[i] = 1.5 if changed[i] != 1.5 else 2.5
    c = a.set_column(1, "time_s", pa.array(changed, pa.float64()))
    assert diff_tables(a, c) == [f"column time_s: 1 row(s) differ, first at point {i}"]
    assert diff_tables(a, a.drop_columns(["target"]))                 # a lost column
    assert diff_tables(a, a.slice(0, n - 1))                          # a lost row
    assert diff_tables(a, a.set_column(2, "target", pa.array([None] * n, pa.string())))
