"""Serving simulation: requests, schedulers and SLOs on top of the cost models' step times.

``simulate(model, target, workload=, scheduler=, …)`` runs a discrete-event simulation of a
serving deployment whose iteration times come from the cost models (``step_table``) and returns
TTFT/TPOT/ITL/E2E percentiles, throughput, goodput, KV occupancy, energy and cost per token;
``max_rate`` finds the highest arrival rate meeting an SLO. See docs/serving.md.

Layout: ``workload`` (arrivals, lengths, traces, named mixes) · ``step_table`` (step times) ·
``schedulers/`` (one policy per module) · ``engine_loop`` (the event loop) · ``metrics`` ·
``energy`` · ``simulator`` (set-up, ``simulate``, ``max_rate``) · ``plot``.
"""

from .metrics import SLO, Metrics, parse_slo
from .simulator import Deployment, ServeResult, SimulationError, deployment_for, max_rate, simulate
from .step_table import EstimateTable, LinearStepTime, StepTime
from .workload import NAMED, Lengths, Request, Workload, WorkloadError, get_workload, read_trace

__all__ = [
           "NAMED",
           "SLO",
           "Deployment",
           "EstimateTable",
           "Lengths",
           "LinearStepTime",
           "Metrics",
           "Request",
           "ServeResult",
           "SimulationError",
           "StepTime",
           "Workload",
           "WorkloadError",
           "deployment_for",
           "get_workload",
           "max_rate",
           "parse_slo",
           "read_trace",
           "simulate",
]
