"""``check_pass`` (ridgeline.testing) over random graphs of every op: tiling keeps their meaning.

The testing issue's ``check_pass`` draws random graphs from the op specs, runs the pass and
compares outputs; these tests run once it is on the branch (they skip until then).
"""

from __future__ import annotations

import pytest

import ridgeline.testing

check_pass = getattr(ridgeline.testing, "check_pass", None)
pytestmark = pytest.mark.skipif(check_pass is None, reason="ridgeline.testing.check_pass has not landed yet")


def test_tile_for_a_tiny_gpu_keeps_random_graphs(toy_path):
    report = check_pass(f"tile{{target={toy_path}}}", max_examples=100)
    assert report.modified > 0


def test_fusion_then_tile_keeps_random_graphs(toy_path):
    check_pass(f"default,tile{{target={toy_path}}}", max_examples=60)


def test_tile_for_h100_keeps_random_graphs():
    check_pass("tile{target=h100}", max_examples=60)
