"""The layering rules of DESIGN.md, checked on every import in ``ridgeline/``.

Every ``import`` and ``from … import`` is read with ``ast`` — top-level, function-local, under
``TYPE_CHECKING``, relative or absolute — and the importing part of ridgeline must be allowed to
import the imported part. There is no exceptions list: a slip is fixed where it is, not recorded.

The parts, lowest first (a part may import the parts named beside it, nothing else of ridgeline):
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "ridgeline"

_CORE = {"ir"}
#: part -> the parts it may import (besides itself). ``plugins`` is the entry-point loader, a leaf
#: over ``ir.errors``; ``data`` holds bundled files. ``serving`` and ``sweep`` are applications
#: built on the layers below; ``api`` and ``cli`` are the two faces over everything.
ALLOWED: dict[str, set[str]] = {
    "ir": set(),
    "data": set(),
    "plugins": _CORE,
    "frontends": _CORE,
    "models": _CORE,
    "cost_models": _CORE | {"plugins"},
    "passes": _CORE | {"cost_models", "plugins"},
    "backends": _CORE | {"passes", "cost_models", "plugins"},
    "testing": _CORE | {"frontends", "models", "passes", "cost_models", "backends", "plugins", "data"},
    "serving": _CORE | {"frontends", "models", "passes", "cost_models", "backends", "plugins"},
    "sweep": _CORE | {"frontends", "models", "passes", "cost_models", "backends", "plugins", "serving"},
    "api": _CORE | {"frontends", "models", "passes", "cost_models", "backends", "plugins", "serving", "sweep"},
}
#: ``runtime`` (the decode loop) drives load and compile: an application over ``api``
ALLOWED["runtime"] = ALLOWED["api"] | {"api"}
ALLOWED["cli"] = ALLOWED["api"] | {"api", "runtime", "testing", "data", "__version__"}
ALLOWED["__main__"] = {"cli"}
#: the package's ``__init__``: the public names of the Python API
ALLOWED[""] = _CORE | {"api", "runtime", "__version__"}
ALLOWED["py.typed"] = set()


def _module_name(path: Path) -> list[str]:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return parts[:-1] if parts[-1] == "__init__" else parts


def _part(module: list[str]) -> str:
    """``ridgeline.passes.transforms.dce`` -> ``passes``; the package itself -> ``""``."""
    return module[1] if len(module) > 1 else ""


def imports(path: Path, text: str | None = None):
    """Yield ``(line, imported module as a list of names)`` for each import in ``path`` (or in
    ``text`` read as if it lived at ``path``)."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8") if text is None else text, str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name.split(".")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                target = base + (node.module.split(".") if node.module else [])
            else:
                target = (node.module or "").split(".")
            if node.level and not node.module:  # `from .. import models`: each name is a module
                for alias in node.names:
                    yield node.lineno, target + [alias.name]
            else:
                yield node.lineno, target


def _sources() -> list[Path]:
    return sorted(ROOT.rglob("*.py"))


def violations() -> list[str]:
    found = []
    for path in _sources():
        src = _part(_module_name(path))
        for line, target in imports(path):
            if target[0] != "ridgeline":
                continue
            dst = _part(target)
            if dst != src and dst not in ALLOWED[src]:
                where = path.relative_to(ROOT.parent)
                found.append(f"{where}:{line}: {src or 'ridgeline'} imports {'.'.join(target)} ({dst})")
    return found


def test_every_part_has_a_rule():
    parts = {p.name.removesuffix(".py") for p in ROOT.iterdir() if not p.name.startswith("_")
             and (p.suffix == ".py" or (p.is_dir() and (p / "__init__.py").exists()))}
    assert parts <= set(ALLOWED), f"parts with no layering rule: {sorted(parts - set(ALLOWED))}"


def test_no_cycles_between_parts():
    # the rules themselves must form a DAG, or "imports point down" means nothing
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(part: str, trail: tuple[str, ...]):
        if state.get(part) == 1:
            pytest.fail(f"the rules have a cycle: {' -> '.join(trail + (part,))}")
        if state.get(part) == 2:
            return
        state[part] = 1
        for dep in ALLOWED.get(part, ()):
            visit(dep, trail + (part,))
        state[part] = 2
        order.append(part)

    for part in ALLOWED:
        visit(part, ())


def test_imports_point_down():
    bad = violations()
    assert not bad, "layering slips (see tests/test_layering.py for the rules):\n" + "\n".join(bad)


def test_the_reader_sees_function_local_and_relative_imports(tmp_path):
    # the checker must see what it claims to: a function-local relative import of a higher layer
    probe = ROOT / "ir" / "_layering_probe.py"
    assert not probe.exists()
    text = "def f():\n    from ..testing import inputs\n    from .. import api\n"
    found = list(imports(probe, text))
    assert found == [(2, ["ridgeline", "testing"]), (3, ["ridgeline", "api"])]

