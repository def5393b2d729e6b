"""Collectives and transfers on a target's links: the α–β (latency–bandwidth) model.

A ring all-reduce over ``n`` devices takes ``2(n-1)`` steps, each paying a hop latency, and moves
``2(n-1)/n`` of the tensor through each device's link; an all-gather half of that; a send one hop.
On a k-dimensional torus the rings run per dimension (``2·Σ(dᵢ-1)`` steps). Each collective also
pays a fixed software cost (``overheads.collective``: the kernel launch and the handshake that
NCCL-style libraries do), which is what makes per-layer all-reduces expensive at batch 1.
"""

from __future__ import annotations

from .target import Link, Target

__all__ = ["collective_time", "ring_steps"]


def ring_steps(n: int, topology: str) -> int:
    """Latency-bound steps of one reduce-scatter (or all-gather) phase over ``n`` devices."""
    if n <= 1:
        return 0
    if topology.startswith("torus-"):
        k = int(topology.split("-")[1][0])
        side = max(2, round(n ** (1.0 / k)))
        return max(1, k * (side - 1))
    return n - 1


def collective_time(target: Target, kind: str, nbytes: float, devices: int, *,
                    link: Link | None = None, fixed: float | None = None) -> tuple[float, Link | None]:
    """Seconds for one collective of ``nbytes`` (the full tensor) over ``devices`` devices."""
    if devices <= 1 and kind != "send":
        return 0.0, None
    link = link or target.link_for(max(devices, 2))
    if link is None:
        return 0.0, None
    base = target.overheads.get("collective", 0.0) if fixed is None else fixed
    n = max(devices, 2)
    if kind == "send":
        return base + link.latency + nbytes / link.bandwidth, link
    steps = ring_steps(n, link.topology)
    share = (n - 1) / n
    if kind == "all_reduce":
        return base + 2 * steps * link.latency + 2 * share * nbytes / link.bandwidth, link
    if kind in ("all_gather", "reduce_scatter"):
        return base + steps * link.latency + share * nbytes / link.bandwidth, link
    raise ValueError(f"unknown collective {kind!r}")
