"""Engines run chunks of points: ``local`` (a process pool, the default), ``ray`` and ``dask``
(optional extras, each through its own task API, imported only when chosen).

An engine is a context manager with ``map(fn, payload, chunks)``, yielding ``(index, rows)`` as
tasks finish (in any order: the results store sorts rows by point id, so every engine writes the
same table).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

from ...ir.errors import RidgelineError

__all__ = ["ENGINES", "Engine", "EngineError", "get_engine"]

ENGINES = ("local", "ray", "dask")


class EngineError(RidgelineError):
    """An engine that cannot start: its extra is not installed, or its cluster is unreachable."""


class Engine(Protocol):
    name: str

    def __enter__(self) -> Engine: ...  # noqa: PYI034 - Self needs Python 3.11

    def __exit__(self, *exc: object) -> None: ...

    def map(self, fn: Callable, payload: Any, chunks: Sequence[Any]) -> Iterator[tuple[int, Any]]: ...


def get_engine(name: str | Engine, *, workers: int | None = None, address: str | None = None) -> Engine:
    """The engine called ``name`` (``address``: an existing Ray or Dask cluster to join); an
    engine object (e.g. ``DaskEngine(processes=False)``) is returned as it is."""
    if not isinstance(name, str) and hasattr(name, "map"):
        return name
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise EngineError(f"workers must be a positive integer, got {workers!r}")
    if name == "local":
        if address:
            raise EngineError("--address applies to the ray and dask engines, not to local")
        from .local import LocalEngine
        return LocalEngine(workers)
    if name == "ray":
        from .ray import RayEngine
        return RayEngine(workers, address)
    if name == "dask":
        from .dask import DaskEngine
        return DaskEngine(workers, address)
    raise EngineError(f"unknown engine {name!r} (engines: {', '.join(ENGINES)})")


def require(module: str, extra: str):
    """Import an engine's library or say which extra installs it."""
    import importlib
    try:
        return importlib.import_module(module)
    except ImportError:
        raise EngineError(f"the {extra} engine needs {module}: pip install 'ridgeline[{extra}]'") from None


def check_reachable(address: str, default_port: int, what: str, timeout: float = 5.0) -> None:
    """Fail in one line, within ``timeout``, when nothing listens at ``address`` (host:port,
    optionally with a scheme), instead of a client retrying for a minute."""
    import socket
    from urllib.parse import urlsplit
    text = address if "://" in address else f"tcp://{address}"
    try:
        parts = urlsplit(text)
        host, port = parts.hostname, parts.port or default_port
    except ValueError as e:
        raise EngineError(f"{what} address {address!r}: {e}") from None
    if not host:
        raise EngineError(f"{what} address {address!r}: expected HOST:PORT")
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as e:
        raise EngineError(f"cannot reach the {what} cluster at {address} ({e.strerror or e}); is it running?") from None
