"""Errors a user can cause. Each carries one line that names the problem and what to do.

The CLI turns any ``RidgelineError`` into that line and exit status 2; anything else escaping is a
bug in ridgeline and keeps its traceback.
"""

from __future__ import annotations

from typing import Any

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
    """A pass failed or left the graph invalid; the message names the pass.

    The pass manager fills the fields: ``pass_name`` (as written in the pipeline), ``node`` (the
    offending node when one is known), ``reason`` (the underlying error's text), and for a pass
    that broke the graph ``ir_before`` (the graph before it) and ``ir_before_path`` (its saved .rir).
    """

    def __init__(self, message: str, *, pass_name: str | None = None, node: Any = None,
                 reason: str | None = None, ir_before: Any = None, ir_before_path: Any = None):
        super().__init__(message)
        self.pass_name, self.node, self.reason = pass_name, node, reason
        self.ir_before, self.ir_before_path = ir_before, ir_before_path


class BackendError(RidgelineError):
    """An unknown or unavailable backend, or a graph a backend cannot run."""


class TargetError(RidgelineError):
    """An unknown target or a malformed target spec."""


class PluginError(RidgelineError):
    """A third-party plugin that fails to load or clashes with another."""
