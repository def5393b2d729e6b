"""pytest plugin: hypothesis profiles and fixtures for testing passes with ``ridgeline.testing``.

Installed ridgeline registers it through the ``pytest11`` entry point; in a checkout list it in
a ``conftest.py``: ``pytest_plugins = ["ridgeline.testing.pytest_plugin"]``. Then a plugin
author's test is::

    def test_fuse_relu6(check_pass):
        check_pass("fuse-relu6", graphs=strategies.pattern(lambda b, x: b.Min(b.Relu(x), 6.0)))

It provides

* hypothesis profiles ``ridgeline-ci`` (a bounded number of examples, derandomized: every run
  draws the same graphs) and ``ridgeline-soak`` (many examples, fresh randomness every run),
  also registered as ``ci`` and ``soak`` unless a project defines those names itself — select one
  with ``pytest --hypothesis-profile=ci``;
* the fixtures ``check_pass``, ``check_backend`` and ``check_onnxruntime``: the functions of
  ``ridgeline.testing`` with failing graphs saved under the test's temporary directory (or
  ``--ridgeline-repro-dir``), and passes verified after every pass of a pipeline;
* the ``--ridgeline-repro-dir DIR`` option.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import pytest

__all__ = ["CI_EXAMPLES", "SOAK_EXAMPLES", "register_profiles", "import_all_of_ridgeline"]

#: examples per check under the CI profile (a few seconds per pass on two cores)
CI_EXAMPLES = 40
#: examples per check under the soak profile
SOAK_EXAMPLES = 100_000


def register_profiles() -> None:
    """Register ``ridgeline-ci`` and ``ridgeline-soak`` (and ``ci``/``soak`` if still free)."""
    try:
        from hypothesis import HealthCheck, settings
        from hypothesis.errors import InvalidArgument
    except ImportError:  # pragma: no cover - hypothesis is in the test extra
        return
    slow = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example]
    profiles = {
        "ridgeline-ci": dict(max_examples=CI_EXAMPLES, derandomize=True, deadline=None, database=None,
                             print_blob=True, suppress_health_check=slow),
        "ridgeline-soak": dict(max_examples=SOAK_EXAMPLES, deadline=None, suppress_health_check=slow),
    }
    for name, kw in profiles.items():
        settings.register_profile(name, **kw)
        short = name.split("-", 1)[1]
        try:
            settings.get_profile(short)
        except InvalidArgument:
            settings.register_profile(short, **kw)


register_profiles()


def import_all_of_ridgeline() -> None:
    """Import every module of ridgeline (optional backends too, when their extras are installed).

    Hypothesis biases some draws toward constants it finds in the local modules loaded so far, so
    the graphs a derandomized run draws would depend on what earlier tests happened to import
    (and, under pytest-xdist, on which worker ran them). Loading everything before the first test
    makes the CI profile's examples the same on every run."""
    import importlib
    import pkgutil
    from pathlib import Path
    package = str(Path(__file__).resolve().parents[1])  # ridgeline/, found without importing its faces
    for mod in pkgutil.walk_packages([package], "ridgeline."):
        if mod.name.endswith("__main__"):
            continue  # running the CLI is not importing it
        try:
            importlib.import_module(mod.name)
        except Exception:  # an optional extra that is not installed
            continue


def pytest_collection_finish(session: pytest.Session) -> None:
    try:
        from hypothesis import settings
    except ImportError:  # pragma: no cover
        return
    if settings.default.derandomize:
        import_all_of_ridgeline()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ridgeline")
    group.addoption("--ridgeline-repro-dir", metavar="DIR", default=None,
                    help="where check_pass saves failing graphs (.rir, .onnx, inputs); default: the test's tmp dir")


def _repro_dir(request: pytest.FixtureRequest) -> str:
    given = request.config.getoption("--ridgeline-repro-dir")
    if given:
        return given
    return str(request.getfixturevalue("tmp_path") / "ridgeline-repro")


@pytest.fixture
def check_pass(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    """``ridgeline.testing.check_pass`` saving failures under the test's tmp dir, with every pass
    of a pipeline verified as it runs."""
    from . import check
    monkeypatch.setenv("RIDGELINE_VERIFY_EACH", os.environ.get("RIDGELINE_VERIFY_EACH", "1"))
    return _bound(check.check_pass, request)


@pytest.fixture
def check_backend(request: pytest.FixtureRequest):
    """``ridgeline.testing.check_backend``, skipping when the backend's extra is not installed."""
    from ..backends.registry import list_backends
    from . import differential

    def run(backend: str, *args: Any, **kw: Any):
        info = {b.name: b for b in list_backends()}.get(backend)
        if info is not None and not info.available:
            pytest.skip(f"backend {backend!r} needs {', '.join(info.requires)} (pip install 'ridgeline[{info.extra}]')")
        return _bound(differential.check_backend, request)(backend, *args, **kw)
    return run


@pytest.fixture
def check_onnxruntime(request: pytest.FixtureRequest):
    """``ridgeline.testing.check_onnxruntime``, skipping when onnxruntime is not installed."""
    pytest.importorskip("onnxruntime")
    from . import differential
    return _bound(differential.check_onnxruntime, request)


def _bound(fn, request: pytest.FixtureRequest):
    @functools.wraps(fn)
    def call(*args: Any, **kw: Any):
        kw.setdefault("repro_dir", _repro_dir(request))
        return fn(*args, **kw)
    return call
