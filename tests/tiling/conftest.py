"""Fixtures of the tiling tests: a tiny GPU target whose tiles never divide the test shapes."""

from __future__ import annotations

from pathlib import Path

import pytest

TOY = Path(__file__).resolve().parent / "toy_gpu.toml"


@pytest.fixture(scope="session")
def toy_target():
    from ridgeline.cost_models import load_target_file
    return load_target_file(TOY)


@pytest.fixture(scope="session")
def toy_path() -> str:
    return str(TOY)
