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
from pathlib import Path
from typing import Any

from ...ir.errors import PluginError, TargetError
from ...plugins import PluginRef, Registry
from ..target import Target, parse_target

__all__ = ["BUILTIN_DIR", "TARGETS", "get_target", "list_targets", "load_target_dict", "load_target_file",
           "register_target", "target_names"]

log = logging.getLogger(__name__)

BUILTIN_DIR = Path(__file__).resolve().parent


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


def _from_plugin(obj: Any, ref: PluginRef) -> Target:
    """An entry point's object as a ``Target`` (errors name the plugin and its package)."""
    try:
        if callable(obj) and not isinstance(obj, Target):
            obj = obj()
        if isinstance(obj, (str, os.PathLike)):
            obj = load_target_file(obj)
        elif isinstance(obj, dict):
            obj = load_target_dict(obj, source=f"plugin target {ref.name}", default_name=ref.name)
        if not isinstance(obj, Target):
            raise TargetError(f"it is a {type(obj).__name__}; expected a Target, a TOML path or a dict")
    except TargetError as e:
        raise TargetError(f"ridgeline.targets plugin {ref.name!r} from package {ref.distribution}: {e}") from None
    return obj


#: target name -> its ``Target``: the built-in files (read on first use), in-process
#: registrations and the ``ridgeline.targets`` entry points
TARGETS: Registry[Target] = Registry("target", group="ridgeline.targets", error=TargetError, convert=_from_plugin)
for _p in sorted(BUILTIN_DIR.glob("*.toml")):  # a built-in file's name is its stem (tests check)
    TARGETS.add(_p.stem, lambda p=_p: load_target_file(p))


def register_target(target: Target | str | os.PathLike) -> Target:
    """Add a target in-process (a ``Target`` or a TOML path); returns it."""
    t = target if isinstance(target, Target) else load_target_file(target)
    if TARGETS.registered(t.name):
        raise TargetError(f"target {t.name!r} is already defined ({TARGETS.origin(t.name)})")
    TARGETS.add(t.name, lambda: t, origin="local")
    return t


def target_names() -> list[str]:
    return TARGETS.names()


def list_targets() -> list[Target]:
    """Every target; plugins that fail to load are logged and left out."""
    out = []
    for name in TARGETS.names():
        try:
            out.append(TARGETS.get(name))
        except (PluginError, TargetError) as e:
            if TARGETS.registered(name):
                raise
            log.warning("%s", e)
    return out


def get_target(name: str) -> Target:
    """The target called ``name``; unknown names list the known ones."""
    if isinstance(name, Target):
        return name
    if name not in TARGETS:
        raise TargetError(f"{TARGETS.unknown(name)} (or give your own with --target-file my.toml)")
    return TARGETS.get(name)
