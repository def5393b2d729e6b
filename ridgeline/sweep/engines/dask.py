"""The Dask engine: chunks as ``Client.submit`` futures, on a scheduler you already run
(``address="tcp://host:8786"``) or on a ``LocalCluster`` started for the sweep."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from . import EngineError, check_reachable, require

__all__ = ["DaskEngine"]


class DaskEngine:
    name = "dask"

    def __init__(self, workers: int | None = None, address: str | None = None, *, processes: bool = True):
        self.distributed = require("dask.distributed", "dask")
        self.workers, self.address, self.processes = workers, address, processes
        self._client = self._cluster = None

    def __enter__(self) -> DaskEngine:  # noqa: PYI034 - Self needs Python 3.11
        d = self.distributed
        try:
            if self.address:
                check_reachable(self.address, 8786, "Dask")
                self._client = d.Client(self.address, timeout="10s")
            else:
                import os
                n = self.workers or max(1, len(os.sched_getaffinity(0)))
                self._cluster = d.LocalCluster(n_workers=n, threads_per_worker=1, processes=self.processes,
                                               dashboard_address=None, silence_logs=50)
                self._client = d.Client(self._cluster)
        except (OSError, TimeoutError) as e:
            self.__exit__(None, None, None)
            raise EngineError(f"cannot start or join Dask at {self.address or 'a LocalCluster'}: {e}") from None
        return self

    def __exit__(self, *exc: object) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None

    def map(self, fn: Callable, payload: Any, chunks: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        d = self.distributed
        [ref] = self._client.scatter([payload], broadcast=True)
        futures = {self._client.submit(fn, ref, c, pure=False, retries=2): i for i, c in enumerate(chunks)}
        for fut, rows in d.as_completed(futures, with_results=True):
            yield futures[fut], rows
