"""The systolic cycle model against SCALE-Sim 3.0: stall-free cycles equal, cycle for cycle.

The reference table is SCALE-Sim's own output (``tools/scalesim_reference.py`` runs it in a venv
with numpy<2.4 and writes ``scalesim_reference.csv``; its header names the command).
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ridgeline.cost_models.systolic_array import (
    DATAFLOWS,
    canonical_dataflow,
    map_gemm,
    pipelined_cycles,
    scalesim_cycles,
)

TABLE = Path(__file__).with_name("scalesim_reference.csv")


def _rows() -> list[dict]:
    with open(TABLE) as f:
        return list(csv.DictReader(line for line in f if not line.startswith("#")))


ROWS = _rows()


def test_reference_table_is_scalesim_output_with_its_command():
    head = TABLE.read_text().splitlines()[:3]
    assert head[0].startswith("# SCALE-Sim 3.")
    assert "tools/scalesim_reference.py" in head[1]


def test_sweep_covers_shapes_arrays_and_dataflows():
    assert len(ROWS) >= 150
    assert {r["dataflow"] for r in ROWS} == set(DATAFLOWS)
    assert len({(r["rows"], r["cols"]) for r in ROWS}) >= 4
    assert any(r["rows"] != r["cols"] for r in ROWS)                    # rectangular arrays
    shapes = {(int(r["m"]), int(r["n"]), int(r["k"])) for r in ROWS}
    assert len(shapes) >= 10
    assert any(m == 1 for m, _, _ in shapes)                           # GEMVs
    assert all(int(r["stall_cycles"]) == 0 for r in ROWS)              # stall-free runs only


@pytest.mark.parametrize("row", ROWS, ids=lambda r: f"{r['m']}x{r['n']}x{r['k']}-{r['rows']}x{r['cols']}-{r['dataflow']}")
def test_cycles_equal_scalesim(row):
    m, n, k, R, C = (int(row[x]) for x in ("m", "n", "k", "rows", "cols"))
    assert scalesim_cycles(m, n, k, R, C, row["dataflow"]) == int(row["total_cycles"])
    mp = map_gemm(m, n, k, R, C, row["dataflow"])
    assert mp.mapping_efficiency == pytest.approx(float(row["mapping_efficiency"]), abs=1e-6)


def test_dataflow_names():
    assert canonical_dataflow("weight_stationary") == "ws"
    assert canonical_dataflow("OS") == "os"
    with pytest.raises(ValueError, match="unknown dataflow 'rs'"):
        canonical_dataflow("rs")
    with pytest.raises(ValueError, match="positive"):
        map_gemm(0, 4, 4, 8, 8)


@settings(max_examples=200, deadline=None)
@given(m=st.integers(1, 600), n=st.integers(1, 600), k=st.integers(1, 600), r=st.sampled_from([4, 8, 16, 128, 256]),
       c=st.sampled_from([4, 8, 32, 128, 256]), df=st.sampled_from(DATAFLOWS))
def test_pipelined_hardware_never_slower_than_serial_folds(m, n, k, r, c, df):
    mp = map_gemm(m, n, k, r, c, df)
    serial = scalesim_cycles(m, n, k, r, c, df) + 1           # SCALE-Sim counts from 0
    hw = pipelined_cycles(mp, double_buffered=True)
    assert hw <= serial
    assert pipelined_cycles(mp, double_buffered=False) <= serial
    if mp.folds == 1:                                         # one fold: nothing to overlap
        assert hw == serial
    # every MAC needs a PE-cycle: the array can never beat its MAC count
    assert hw * r * c >= mp.macs


def test_padding_waste_and_fold_quantization():
    full = map_gemm(64, 128, 128, 128, 128, "ws")
    over = map_gemm(64, 129, 128, 128, 128, "ws")             # one column too many: a second fold
    assert full.folds == 1 and over.folds == 2
    assert over.mapping_efficiency == pytest.approx(129 / 256)
    assert scalesim_cycles(64, 129, 128, 128, 128, "ws") + 1 == 2 * (scalesim_cycles(64, 128, 128, 128, 128, "ws") + 1)


def test_gemv_waits_on_weight_loads_when_double_buffered():
    mp = map_gemm(1, 4096, 4096, 128, 128, "ws")               # decode: T = 1 row per 128-row tile
    cyc = pipelined_cycles(mp)
    assert cyc == 128 + (mp.folds - 1) * 128 + 1 + 127 + 127
    # output-stationary keeps the outputs: the GEMV streams K through each of its N/C tiles
    mo = map_gemm(1, 4096, 4096, 128, 128, "os")
    assert pipelined_cycles(mo) == mo.folds * 4096 + 127 + 127
