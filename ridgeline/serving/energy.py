"""Energy and cost of a simulated run from the target's power figure.

Model (an assumption, stated in docs/serving.md): a device draws its rated power (the target
file's ``power``, board/system TDP) in steps, with the engine's CPU time in them (clocks do not fall
in a few-ms host gap), and ``idle_fraction`` of it while idle — 0.2 by default, roughly what an
H100 SXM reports idle (~70-100 W of 700 W under nvidia-smi;
assumption for other chips). Energy per output token = run energy / output tokens.
Cost per million output tokens = devices × price per device-hour × run hours / tokens × 1e6,
when a price is given (targets carry no prices: they change monthly).
"""

from __future__ import annotations

from typing import Any

from .engine_loop import Trace

__all__ = ["IDLE_FRACTION", "energy_report"]

IDLE_FRACTION = 0.2


def energy_report(trace: Trace, span: float, output_tokens: int, total_tokens: int, *,
                  power_w: float | None, idle_fraction: float = IDLE_FRACTION,
                  price_per_device_hour: float | None = None) -> dict[str, Any]:
    devices = sum(e.devices for e in trace.engines)
    out: dict[str, Any] = {"devices": devices, "power_w": power_w, "idle_fraction": idle_fraction}
    if power_w:
        busy = sum(e.devices * min(e.stepping, span) for e in trace.engines)
        joules = power_w * (busy + idle_fraction * (devices * span - busy))
        out.update(joules=joules, average_w=joules / span if span else 0.0,
                   j_per_output_token=joules / output_tokens if output_tokens else None,
                   j_per_token=joules / total_tokens if total_tokens else None)
    else:
        out["note"] = "the target file gives no power figure (pass --power W)"
    if price_per_device_hour:
        dollars = devices * price_per_device_hour * span / 3600
        out.update(price_per_device_hour=price_per_device_hour, dollars=dollars,
                   usd_per_million_output_tokens=dollars / output_tokens * 1e6 if output_tokens else None)
    return out
