"""An independent checker of exported static schedules (``ridgeline.schedule/1`` JSON).

Written against the JSON format only (not the scheduler's code), so a scheduler bug cannot hide
behind a shared helper. ``check_schedule(data)`` raises ``AssertionError`` naming the first
violation of:

- ids are 0..n-1, every op starts at a cycle >= 0 and lasts >= 1 cycle;
- dependencies: an op starts no earlier than every op it depends on ends;
- capacity: at no cycle does a (chip, unit) run more ops than the chip has instances of the unit;
- chips: every op runs on a chip of the deployment; data crosses chips only through transfers —
  an op's dependency on another chip must be a transfer addressed to the op's chip, and a
  transfer's inputs are on the chip it sends from;
- placement: every op of a node whose weights are placed runs on a chip that holds them;
- the makespan is the end of the last op.
"""

from __future__ import annotations

from collections import defaultdict

__all__ = ["check_schedule"]


def check_schedule(data: dict) -> None:
    ops = data["ops"]
    chips = data["chips"]
    units = data["units"]
    assert [o["id"] for o in ops] == list(range(len(ops))), "op ids are not 0..n-1 in order"
    by_id = {o["id"]: o for o in ops}
    for o in ops:
        assert o["start"] >= 0, f"op {o['id']} was never placed"
        assert o["cycles"] >= 1, f"op {o['id']} lasts {o['cycles']} cycles"
        assert 0 <= o["chip"] < chips, f"op {o['id']} on chip {o['chip']} of {chips}"
        assert o["unit"] in units, f"op {o['id']} on unknown unit {o['unit']}"
        for d in o["deps"]:
            dep = by_id[d]
            assert dep["start"] + dep["cycles"] <= o["start"], \
                f"op {o['id']} ({o['node']}) starts at {o['start']} before its dependency {d} ends"
            if o["kind"] == "transfer":
                assert dep["kind"] == "transfer" and dep.get("dst") == o["chip"] or dep["chip"] == o["chip"], \
                    f"transfer {o['id']} sends from chip {o['chip']} data made on chip {dep['chip']}"
            elif dep["kind"] == "transfer":
                assert dep.get("dst") == o["chip"], \
                    f"op {o['id']} on chip {o['chip']} reads transfer {d} addressed to chip {dep.get('dst')}"
            else:
                assert dep["chip"] == o["chip"], \
                    f"op {o['id']} on chip {o['chip']} reads op {d} of chip {dep['chip']} without a transfer"
        if o["kind"] == "transfer":
            assert "dst" in o and 0 <= o["dst"] < chips and o["dst"] != o["chip"], f"transfer {o['id']} has no valid dst"
    # capacity: sweep start/end events per (chip, unit); ends before starts at the same cycle
    events: dict[tuple[int, str], list[tuple[int, int]]] = defaultdict(list)
    for o in ops:
        events[(o["chip"], o["unit"])].append((o["start"], 1))
        events[(o["chip"], o["unit"])].append((o["start"] + o["cycles"], -1))
    for (chip, unit), ev in events.items():
        running = 0
        for cycle, delta in sorted(ev, key=lambda e: (e[0], e[1])):
            running += delta
            assert running <= units[unit], f"chip {chip} {unit}: {running} ops at cycle {cycle} > {units[unit]}"
    for node, placed in data.get("placement", {}).items():
        for o in ops:
            if o["node"] == node:
                assert o["chip"] in placed, f"{node} runs on chip {o['chip']}, its weights are on {placed}"
    assert data["makespan_cycles"] == max((o["start"] + o["cycles"] for o in ops), default=0), "makespan != last end"
