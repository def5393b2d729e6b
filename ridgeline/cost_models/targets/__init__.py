"""Hardware targets: the built-in ``*.toml`` files here, plugin targets, and user files.

- ``list_targets()``: every target (built-in files, the ``ridgeline.targets`` entry point group,
  in-process registrations), validated; a broken plugin is logged and skipped here, and reported
  when asked for by name.
- ``get_target(name)``: one target; an unknown name lists the known ones.
- ``load_target_file(path)``: a user's own file (``--target-file my.toml``).
- ``register_target(target_or_path)``: add one in-process.

An entry point in ``ridgeline.targets`` may name a ``Target``, a path to a TOML file, a dict in
the TOML schema, or a zero-argument callable returning one of these; its entry-point name is the
target's name.
"""

from __future__ import annotations

import logging
import os
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any

from ...ir.errors import PluginError, TargetError
from ...plugins import discover, load
from ..target import Target, parse_target

__all__ = ["list_targets", "get_target", "target_names", "load_target_file", "load_target_dict",
           "register_target", "BUILTIN_DIR"]

log = logging.getLogger(__name__)

BUILTIN_DIR = Path(__file__).resolve().parent
_LOCAL: dict[str, Target] = {}


def load_target_dict(data: dict[str, Any], *, source: str = "<dict>", default_name: str | None = None) -> Target:
    """Validate a target from its TOML data: the generic schema, then its family's keys."""
    from ..families import find_family
    family = data.get("family") if isinstance(data, dict) else None
    schema = None
    if isinstance(family, str):
        try:
            cls = find_family(family)
        except TargetError as e:
            raise TargetError(f"{source}: family: {e}") from None
        schema = cls.full_schema() if cls is not None else None
    return parse_target(data, source=source, default_name=default_name, schema=schema)


def load_target_file(path: str | os.PathLike) -> Target:
    """Read and validate a target TOML file; errors name the file and the field."""
    p = Path(path)
    if not p.is_file():
        raise TargetError(f"{p}: no such target file" if not p.exists() else f"{p}: not a regular file")
    try:
        with open(p, "rb") as f:
            raw = f.read(MAX_TARGET_BYTES + 1)
        if len(raw) > MAX_TARGET_BYTES:
            raise TargetError(f"{p}: more than {MAX_TARGET_BYTES} bytes; a target file is a page of numbers")
        data = tomllib.loads(raw.decode("utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise TargetError(f"{p.name}: not valid TOML: {e}") from None
    except (ValueError, RecursionError) as e:  # integers of 4,300+ digits; nesting past Python's stack
        raise TargetError(f"{p.name}: not a usable TOML file ({type(e).__name__}: {str(e)[:120]})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise TargetError(f"{p}: cannot read target file: {e}") from None
    _check_depth(data, p.name)
    return load_target_dict(data, source=p.name, default_name=p.stem)


#: a target file is a page of numbers; these bound what a hostile one can make the loader do
MAX_TARGET_BYTES, MAX_TARGET_DEPTH = 2 ** 20, 16


def _check_depth(data: Any, source: str) -> None:
    """Refuse tables/arrays nested deeper than ``MAX_TARGET_DEPTH`` (checked without recursion)."""
    stack = [(data, 1)]
    while stack:
        x, d = stack.pop()
        if d > MAX_TARGET_DEPTH:
            raise TargetError(f"{source}: tables or arrays nested more than {MAX_TARGET_DEPTH} deep")
        if isinstance(x, dict):
            stack.extend((v, d + 1) for v in x.values())
        elif isinstance(x, list):
            stack.extend((v, d + 1) for v in x)


@lru_cache(maxsize=None)
def _builtin() -> dict[str, Target]:
    out: dict[str, Target] = {}
    for p in sorted(BUILTIN_DIR.glob("*.toml")):
        t = load_target_file(p)
        out[t.name] = t
    return out


def _from_plugin(obj: Any, name: str) -> Target:
    if callable(obj) and not isinstance(obj, Target):
        obj = obj()
    if isinstance(obj, Target):
        return obj
    if isinstance(obj, (str, os.PathLike)):
        return load_target_file(obj)
    if isinstance(obj, dict):
        return load_target_dict(obj, source=f"plugin target {name}", default_name=name)
    raise TargetError(f"plugin target {name!r} is a {type(obj).__name__}; expected a Target, a TOML path or a dict")


@lru_cache(maxsize=None)
def _plugin(name: str) -> Target:
    for ref in discover("ridgeline.targets"):
        if ref.name == name:
            if name in _builtin():
                raise PluginError(f"ridgeline.targets plugin {name!r} from package {ref.distribution} clashes with "
                                  f"the built-in target of that name; rename it")
            try:
                return _from_plugin(load(ref), name)
            except TargetError as e:
                raise TargetError(f"ridgeline.targets plugin {name!r} from package {ref.distribution}: {e}") from None
    raise KeyError(name)


def register_target(target: Target | str | os.PathLike) -> Target:
    """Add a target in-process (a ``Target`` or a TOML path); returns it."""
    t = target if isinstance(target, Target) else load_target_file(target)
    if t.name in _builtin() or t.name in _LOCAL:
        raise TargetError(f"target {t.name!r} is already defined")
    _LOCAL[t.name] = t
    return t


def target_names() -> list[str]:
    names = list(_builtin()) + [n for n in _LOCAL]
    names += [r.name for r in discover("ridgeline.targets") if r.name not in names]
    return names


def list_targets() -> list[Target]:
    """Every target; plugins that fail to load are logged and left out."""
    out = list(_builtin().values()) + list(_LOCAL.values())
    for ref in discover("ridgeline.targets"):
        if ref.name in _builtin() or ref.name in _LOCAL:
            continue
        try:
            out.append(_plugin(ref.name))
        except (PluginError, TargetError) as e:
            log.warning("%s", e)
    return out


def get_target(name: str) -> Target:
    """The target called ``name``; unknown names list the known ones."""
    if isinstance(name, Target):
        return name
    b = _builtin()
    if name in b:
        return b[name]
    if name in _LOCAL:
        return _LOCAL[name]
    try:
        return _plugin(name)
    except KeyError:
        pass
    raise TargetError(f"unknown target {name!r}; known: {', '.join(target_names())} "
                      f"(or give your own with --target-file my.toml)")
