"""The Ray engine: chunks as Ray tasks (``ray.remote``), on a cluster you already run
(``address="auto"`` or ``"ray://host:10001"``) or on a local instance started for the sweep."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from . import EngineError, check_reachable, require

__all__ = ["RayEngine"]


class RayEngine:
    name = "ray"

    def __init__(self, workers: int | None = None, address: str | None = None):
        self.ray = require("ray", "ray")
        self.workers, self.address = workers, address
        self._started = False

    def __enter__(self) -> RayEngine:  # noqa: PYI034 - Self needs Python 3.11
        ray = self.ray
        if not ray.is_initialized():
            if self.address and self.address != "auto":
                check_reachable(self.address, 10001 if self.address.startswith("ray://") else 6379, "Ray")
            try:
                if self.address:
                    ray.init(address=self.address, logging_level="ERROR", log_to_driver=False)
                else:
                    ray.init(num_cpus=self.workers, include_dashboard=False, logging_level="ERROR",
                             log_to_driver=False)
            except (ConnectionError, RuntimeError, ValueError) as e:
                raise EngineError(f"cannot start or join Ray at {self.address or 'a local instance'}: "
                                  f"{' '.join(str(e).split())[:300]}") from None
            self._started = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self._started:
            self.ray.shutdown()
            self._started = False

    def map(self, fn: Callable, payload: Any, chunks: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        ray = self.ray
        task = ray.remote(num_cpus=1, max_retries=2)(fn)
        ref = ray.put(payload)                    # shipped once, not with every chunk
        pending = {task.remote(ref, c): i for i, c in enumerate(chunks)}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for r in done:
                yield pending.pop(r), ray.get(r)
