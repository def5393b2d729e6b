"""Targets as data: units, the schema's errors (naming the field), discovery, plugins."""

from __future__ import annotations

import math
import tomllib

import pytest

from ridgeline.cost_models import get_target, list_targets, load_target_file, register_target
from ridgeline.cost_models import targets as targets_mod
from ridgeline.cost_models.families import BUILTIN_FAMILIES, get_family, is_implemented
from ridgeline.cost_models.quantities import parse_quantity
from ridgeline.cost_models.targets import BUILTIN_DIR, load_target_dict
from ridgeline.ir.errors import TargetError

TWELVE = {"a100", "h100", "h200", "b200", "tpu-v5e", "tpu-v5p", "tpu-v6e", "tpu-v7", "trainium2", "wse-3",
          "groq-lpu", "host-cpu"}


@pytest.mark.parametrize("text, kind, value", [
    ("80 GiB", "size", 80 * 2 ** 30), ("80 GB", "size", 80e9), ("228 KiB", "size", 228 * 1024), (4096, "size", 4096),
    ("3.35 TB/s", "bandwidth", 3.35e12), ("214 Pb/s", "bandwidth", 214e15 / 8), ("819 GB/s", "bandwidth", 819e9),
    ("989.4 TFLOP/s", "rate", 989.4e12), ("750 TOP/s", "rate", 750e12), ("1.83 GHz", "frequency", 1.83e9),
    ("5 us", "time", 5e-6), ("600 ns", "time", 6e-7), ("1.5 ms", "time", 1.5e-3), ("700 W", "power", 700.0),
])
def test_quantities(text, kind, value):
    assert parse_quantity(text, kind) == pytest.approx(value)


@pytest.mark.parametrize("text, kind", [("fast", "bandwidth"), ("3 TB", "bandwidth"), ("-1 GB", "size"),
                                        ("5 parsecs", "time"), (True, "size"), ("1 XB/s", "bandwidth")])
def test_bad_quantities(text, kind):
    with pytest.raises(ValueError):
        parse_quantity(text, kind)


_NOT_FIGURES = {"name", "title", "vendor", "family", "notes", "kind", "per", "topology", "dataflow"}


def test_all_twelve_targets_load_with_sources():
    names = {t.name for t in list_targets()}
    assert TWELVE <= names
    for t in list_targets():
        assert t.family in BUILTIN_FAMILIES
        assert t.units and t.memory and t.device_memory.bandwidth > 0
        assert t.calibrated_on, f"{t.name} does not say which calibration rows it used"
        # every figure carries its source (or "assumption") in a comment on its line or just above
        lines = (BUILTIN_DIR / f"{t.name}.toml").read_text().splitlines()
        for i, line in enumerate(lines):
            body = line.split("#")[0]
            key, sep, value = body.partition("=")
            if not sep or key.strip() in _NOT_FIGURES or not any(ch.isdigit() for ch in value):
                continue
            above = lines[i - 1] if i else ""
            assert "#" in line or above.lstrip().startswith("#"), f"{t.name}.toml: figure without a source: {line!r}"


def test_ridge_points_come_from_the_files():
    h100 = get_target("h100")
    raw = tomllib.loads((BUILTIN_DIR / "h100.toml").read_text())
    peak = parse_quantity(raw["units"]["tensor_core"]["peak"]["bf16"], "rate")
    bw = parse_quantity(raw["memory"][0]["bandwidth"], "bandwidth")
    assert h100.ridge("bf16") == pytest.approx(peak / bw)
    assert h100.ridge("bf16") == pytest.approx(295, rel=0.01)          # REFERENCE: ~295 FLOP/byte
    assert h100.ridge("f8e4m3") == pytest.approx(2 * h100.ridge("bf16"), rel=0.01)
    # f32 GEMMs run as TF32 on the tensor cores
    assert h100.best_unit("f32", ("matrix",))[1] == "tf32"


def test_unknown_target_lists_known():
    with pytest.raises(TargetError, match=r"unknown target 'h900'.*h100"):
        get_target("h900")


GOOD = """
name = "mychip"
family = "gpu_simt"
clock = "1 GHz"
calibrated_on = ["none"]
[units.tc]
kind = "matrix"
peak = { bf16 = "100 TFLOP/s" }
[units.cc]
kind = "vector"
peak = { f32 = "10 TFLOP/s" }
[[memory]]
name = "hbm"
capacity = "16 GiB"
bandwidth = "1 TB/s"
[[memory]]
name = "smem"
per = "sm"
count = 10
capacity = "100 KiB"
bandwidth = "10 TB/s"
[array]
sms = 10
"""


def _write(tmp_path, text):
    p = tmp_path / "mychip.toml"
    p.write_text(text)
    return p


def test_user_target_file_defaults_and_estimate(tmp_path):
    t = load_target_file(_write(tmp_path, GOOD))
    assert t.name == "mychip" and t.max_devices == 1
    assert t.overheads["kernel_launch"] == pytest.approx(4e-6)        # the family's default
    assert t.efficiency["capacity_usable"] == pytest.approx(0.9)      # the base schema's default
    assert t.ridge("bf16") == pytest.approx(100)


@pytest.mark.parametrize("edit, fragments", [
    (lambda s: s.replace('bandwidth = "1 TB/s"', 'bandwidth = "fast"'), ["memory[0].bandwidth", "fast"]),
    (lambda s: s.replace('family = "gpu_simt"\n', ""), ["family", "missing"]),
    (lambda s: s.replace('family = "gpu_simt"', 'family = "quantum"'), ["family", "quantum"]),
    (lambda s: s.replace('sms = 10', 'smz = 10'), ["array", "smz"]),
    (lambda s: s.replace("sms = 10", 'sms = "many"'), ["array.sms"]),
    (lambda s: s.replace("[array]\nsms = 10\n", ""), ["array.sms", "missing"]),
    (lambda s: s.replace('bf16 = "100 TFLOP/s"', 'bf17 = "100 TFLOP/s"'), ["units.tc.peak.bf17", "dtype"]),
    (lambda s: s.replace('kind = "matrix"', 'kind = "magic"'), ["units.tc.kind"]),
    (lambda s: s.replace('name = "smem"', 'name = "hbm"'), ["memory[1].name", "twice"]),
    (lambda s: s + "\n[efficiency]\nmatrix = 1.5\n", ["efficiency.matrix", "fraction"]),
    (lambda s: s + '\nvoltage = "1 V"\n', ["unknown key", "voltage"]),
    (lambda s: s + '\n[[interconnect]]\nname = "x"\nbandwidth = "1 GB/s"\nlatency = "1 us"\nmax_devices = 4\n'
     'topology = "hypercube"\n', ["interconnect[0].topology", "hypercube"]),
    (lambda s: s.replace("[[memory]]", "[[memory]]\nfoo =", 1), ["not valid TOML"]),
])
def test_malformed_target_names_the_field(tmp_path, edit, fragments):
    p = _write(tmp_path, edit(GOOD))
    before = p.read_bytes()
    with pytest.raises(TargetError) as e:
        load_target_file(p)
    msg = str(e.value)
    assert "mychip.toml" in msg
    for f in fragments:
        assert f in msg, (f, msg)
    assert p.read_bytes() == before


def test_register_target_in_process(tmp_path):
    text = GOOD.replace('name = "mychip"', 'name = "mychip-registered"')
    t = register_target(_write(tmp_path, text))
    try:
        assert get_target("mychip-registered") is t
        with pytest.raises(TargetError, match="already defined"):
            register_target(t)
    finally:
        targets_mod.TARGETS.remove("mychip-registered")


def _fake_plugins(monkeypatch, refs, path):
    from ridgeline.ir import plugins
    from ridgeline.ir.errors import PluginError
    monkeypatch.setattr(plugins, "discover_lenient",
                        lambda group: (refs, {}) if group == "ridgeline.targets" else ((), {}))

    def fake_load(ref):
        if ref.name == "broken-chip":
            raise PluginError("ridgeline.targets plugin 'broken-chip' from package broken-pkg failed to load")
        return lambda: str(path)
    monkeypatch.setattr(plugins, "load", fake_load)


def test_plugin_targets_from_entry_points(tmp_path, monkeypatch):
    from ridgeline.plugins import PluginRef
    path = _write(tmp_path, GOOD.replace('name = "mychip"', ""))
    _fake_plugins(monkeypatch, (PluginRef("ridgeline.targets", "vendor-chip", "vendor_pkg:chip", "vendor-pkg"),
                                PluginRef("ridgeline.targets", "broken-chip", "broken_pkg:chip", "broken-pkg")), path)
    try:
        assert get_target("vendor-chip").family == "gpu_simt"
        names = [t.name for t in list_targets()]          # the broken plugin is skipped, not fatal
        assert "mychip" in names and "h100" in names
        with pytest.raises(Exception, match="broken-chip"):
            get_target("broken-chip")
    finally:
        targets_mod.TARGETS.remove("vendor-chip")


def test_a_plugin_target_clashing_with_a_registered_one_names_both(tmp_path, monkeypatch):
    from ridgeline.ir.errors import PluginError
    from ridgeline.plugins import PluginRef
    text = GOOD.replace('name = "mychip"', 'name = "clash-chip"')
    register_target(_write(tmp_path, text))
    _fake_plugins(monkeypatch, (PluginRef("ridgeline.targets", "clash-chip", "rogue_pkg:chip", "rogue-pkg"),),
                  tmp_path / "x.toml")
    try:
        with pytest.raises(PluginError, match="clash-chip.*local.*rogue-pkg"):
            get_target("clash-chip")
    finally:
        targets_mod.TARGETS.remove("clash-chip")


def test_unimplemented_family_is_a_clear_error():
    import ridgeline.cost_models.families as fam
    fam.add_family("neuromorphic", "ridgeline.cost_models.families.neuromorphic:Model")
    try:
        assert not is_implemented("neuromorphic")
        t = load_target_dict(tomllib.loads(GOOD.replace('family = "gpu_simt"', 'family = "neuromorphic"')),
                             source="x")
        assert t.family == "neuromorphic"                     # it loads and lists ...
        with pytest.raises(TargetError, match="neuromorphic cost model is not implemented yet"):
            get_family("neuromorphic")                        # ... but cannot be estimated
    finally:
        fam.FAMILIES.remove("neuromorphic")


def test_max_devices_and_links():
    h100 = get_target("h100")
    assert h100.link_for(8).name == "nvlink4"
    assert h100.link_for(16).name.startswith("infiniband")
    assert h100.link_for(1) is None
    assert get_target("host-cpu").max_devices == 1
    assert math.isfinite(get_target("groq-lpu").device_memory.capacity)


@pytest.mark.parametrize("name", sorted(t.name for t in list_targets()))
def test_upcast_unit_holds_the_product_exactly(name):
    """A product a chip's matrix units do not list runs on the nearest wider precision that holds
    its operands: an integer never on a float format with fewer significant bits than it has
    (int8 on an fp8-only chip runs as bf16). Every target, every narrow dtype."""
    from ridgeline.cost_models.target import _SIGNIFICAND
    from ridgeline.ir.dtypes import bits
    t = get_target(name)
    for dt in ("i4", "i8", "u8", "f8e4m3", "f8e5m2", "f16", "bf16"):
        hit = t.upcast_unit(dt)
        if hit is None:
            continue
        key = hit[1]
        assert (32 if key == "tf32" else bits(key)) >= bits(dt)
        if dt.startswith(("i", "u")) and not key.startswith(("i", "u")):
            assert _SIGNIFICAND[key] >= bits(dt), (dt, key)
