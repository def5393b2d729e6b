"""The ``rpi5`` target: a path to its TOML file, which is all ridgeline needs (a target is data)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["rpi5"]


def rpi5() -> str:
    """The target file of a Raspberry Pi 5, installed with this package."""
    return str(Path(__file__).resolve().parent / "rpi5.toml")
