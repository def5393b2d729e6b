"""A correct pipeline passes a thousand generated graphs (random graphs over every op mixed with
every unfused idiom), and the soak run for the nightly job: ``pytest tests/testing/test_many_graphs.py
--hypothesis-profile=soak`` (100,000 graphs through ``default``; see docs/testing.md)."""

from __future__ import annotations

import pytest
from hypothesis import settings


@pytest.mark.slow
def test_default_pipeline_keeps_a_thousand_graphs(check_pass):
    report = check_pass("default", max_examples=1000)
    assert report.examples == 1000
    assert report.modified > 300  # the fusions and cleanups did work on most of them


def test_soak_default_pipeline(check_pass):
    """Runs only under ``--hypothesis-profile=soak``: as many graphs as the profile says."""
    if settings.get_current_profile_name() not in ("soak", "ridgeline-soak"):
        pytest.skip("the soak run: pytest tests/testing/test_many_graphs.py --hypothesis-profile=soak")
    report = check_pass("default")
    assert report.examples == settings.default.max_examples
