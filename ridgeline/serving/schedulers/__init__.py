"""Scheduling policies, one per module; ``SCHEDULERS`` maps the CLI names to them.

``disaggregated`` (separate prefill and decode pools) and ``pipeline`` (spatial machines:
micro-batch groups in flight through a pipeline of devices) are compositions of these engines
that the simulator builds (see ``ridgeline.serving.simulator``).
"""

from .base import EngineConfig, Scheduler, Seq, SpecDecode, Step
from .chunked import ChunkedScheduler
from .continuous import ContinuousScheduler
from .static import StaticScheduler

__all__ = [
           "ENGINE_POLICIES",
           "SCHEDULERS",
           "ChunkedScheduler",
           "ContinuousScheduler",
           "EngineConfig",
           "Scheduler",
           "Seq",
           "SpecDecode",
           "StaticScheduler",
           "Step",
]

#: one engine's policy by name
ENGINE_POLICIES = {"static": StaticScheduler, "continuous": ContinuousScheduler, "chunked": ChunkedScheduler}
#: every name ``--scheduler`` accepts
SCHEDULERS = ("static", "continuous", "chunked", "disaggregated", "pipeline")
