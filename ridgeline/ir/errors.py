"""Errors a user can cause. Each carries one line that names the problem and what to do.

The CLI turns any ``RidgelineError`` into that line and exit status 2; anything else escaping is a
bug in ridgeline and keeps its traceback.
"""

from __future__ import annotations

__all__ = [
    "RidgelineError", "IRError", "VerifyError", "ParseError", "UnsupportedOpError",
    "ModelError", "PipelineError", "PassError", "BackendError", "TargetError", "PluginError",
]


class RidgelineError(Exception):
    """Base of every error caused by user input (a model, a pipeline, a target, a flag)."""


class IRError(RidgelineError):
    """Misuse of the IR API: a bad dtype, shape, attribute or graph edit."""


class VerifyError(IRError):
    """The graph breaks an invariant; the message names the offending node."""

    def __init__(self, message: str, node=None):
        super().__init__(message)
        self.node = node


class ParseError(IRError):
    """Malformed text IR; ``line`` and ``column`` are 1-based."""

    def __init__(self, message: str, line: int, column: int, source: str = "<text>"):
        super().__init__(f"{source}:{line}:{column}: {message}")
        self.line, self.column, self.source = line, column, source


class UnsupportedOpError(RidgelineError):
    """Ops with no spec: ``counts`` maps each missing op to how often it occurs."""

    def __init__(self, counts: dict[str, int], where: str = "model"):
        listing = ", ".join(f"{op} (x{n})" for op, n in sorted(counts.items()))
        super().__init__(f"{where} uses {len(counts)} unsupported op(s): {listing}")
        self.counts = dict(counts)


class ModelError(RidgelineError):
    """A model file or preset that cannot be read: truncated, malformed, hostile or missing."""


class PipelineError(RidgelineError):
    """A malformed pipeline string, an unknown pass or a bad pass option."""


class PassError(RidgelineError):
    """A pass failed or left the graph invalid; the message names the pass."""


class BackendError(RidgelineError):
    """An unknown or unavailable backend, or a graph a backend cannot run."""


class TargetError(RidgelineError):
    """An unknown target or a malformed target spec."""


class PluginError(RidgelineError):
    """A third-party plugin that fails to load or clashes with another."""
