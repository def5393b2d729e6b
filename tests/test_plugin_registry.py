"""``Registry[T]``: lazy factories, clashes naming both sides, near matches for unknown names,
and entry-point plugins (faked: ``discover_lenient`` is what the registry reads)."""

from __future__ import annotations

import pytest

from ridgeline.ir import plugins
from ridgeline.ir.errors import BackendError, PluginError
from ridgeline.plugins import PluginRef, Registry


def test_factories_run_once_on_first_get():
    calls = []
    reg: Registry[int] = Registry("widget")
    reg.add("one", lambda: calls.append(1) or 1)
    reg.add("json-dumps", "json:dumps")
    assert calls == [] and "one" in reg and reg.names() == ["one", "json-dumps"]
    assert reg.get("one") == 1 and reg.get("one") == 1 and calls == [1]
    import json
    assert reg.get("json-dumps") is json.dumps and reg.origin("json-dumps") == "built-in"


def test_a_second_registration_names_both_and_replace_or_remove_allow_it():
    reg: Registry[int] = Registry("widget", error=BackendError)
    reg.add("w", lambda: 1)
    with pytest.raises(PluginError, match=r"widget 'w' is already registered \(built-in\); the local one"):
        reg.add("w", lambda: 2, origin="local")
    reg.add("w", lambda: 2, origin="local", replace=True)
    assert reg.get("w") == 2 and reg.origin("w") == "local"
    reg.remove("w")
    assert "w" not in reg


def test_unknown_names_list_near_matches():
    reg: Registry[int] = Registry("widget")
    for n in ("numpy", "torch", "llvm"):
        reg.add(n, lambda: 0)
    with pytest.raises(PluginError, match=r"unknown widget 'nmupy' \(did you mean 'numpy'\?\); known widgets: numpy, torch"):
        reg.get("nmupy")
    with pytest.raises(PluginError, match=r"^unknown widget 'zzz'; known widgets: numpy, torch, llvm$"):
        reg.get("zzz")


def test_plugins_load_lazily_and_clashes_name_both_packages(monkeypatch):
    refs = (PluginRef("g", "dumps", "json:dumps", "pkg-a"), PluginRef("g", "builtin", "json:loads", "pkg-b"),
            PluginRef("g", "odd", "json:nothing_here", "pkg-c"))
    clash = {"twice": PluginError("g plugin name 'twice' is registered twice: by pkg-d and by pkg-e")}
    monkeypatch.setattr(plugins, "discover_lenient", lambda group: (refs, clash))
    reg: Registry[object] = Registry("widget", group="g", convert=lambda obj, ref: (obj, ref.distribution))
    reg.add("builtin", lambda: "mine")
    assert reg.names() == ["builtin", "dumps", "odd", "twice"]
    import json
    assert reg.get("dumps") == (json.dumps, "pkg-a") and reg.origin("dumps") == "plugin pkg-a"
    with pytest.raises(PluginError, match=r"'builtin' is given twice: built-in and plugin pkg-b"):
        reg.get("builtin")
    with pytest.raises(PluginError, match="pkg-d and by pkg-e"):
        reg.get("twice")
    with pytest.raises(PluginError, match="'odd' from package pkg-c failed to load"):
        reg.get("odd")
