"""Counts of the ONNX conformance node tests, printed at the end of a run (also under xdist)."""

from __future__ import annotations

import collections
import re

_OUTCOMES: collections.Counter = collections.Counter()
_SKIP_KINDS: collections.Counter = collections.Counter()


def pytest_runtest_logreport(report):
    if "OnnxBackendNodeModelTest" not in report.nodeid:
        return
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        _OUTCOMES[report.outcome] += 1
        if report.outcome == "skipped":
            reason = str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else str(report.longrepr)
            m = re.search(r"(op not claimed|unsupported feature)", reason)
            _SKIP_KINDS[m.group(1) if m else "other"] += 1


def pytest_terminal_summary(terminalreporter):
    if not _OUTCOMES:
        return
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(_SKIP_KINDS.items()))
    terminalreporter.write_line(
        f"ONNX backend conformance (node tests, ridgeline numpy backend): {_OUTCOMES['passed']} passed, "
        f"{_OUTCOMES['skipped']} skipped ({kinds or 'none'}), {_OUTCOMES['failed']} failed")
