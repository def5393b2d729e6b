"""The executing backends through the CLI: options, strict mode, missing extras (exit 2).

Most checks call ``ridgeline.cli.main`` in-process (the same code path as the command, minus an
interpreter start-up per check); the missing-extra checks need a process where torch and
llvmlite cannot be imported, so they share one subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from cases import CASES
from ridgeline.cli import main
from ridgeline.ir.rir_file import save_rir

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def cli(capsys, *args) -> tuple[int, str, str]:
    try:
        code = main([str(a) for a in args])
    except SystemExit as e:  # argparse refuses a flag's value itself (one line, exit 2)
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1, (code, err)
    for f in fragments:
        assert f.lower() in lines[0].lower(), (f, lines[0])


@pytest.fixture
def model(tmp_path):
    return str(save_rir(CASES["fused-gelu-chain"].graph, tmp_path / "chain.rir"))


@pytest.fixture
def tile_model(tmp_path):
    return str(save_rir(CASES["tile"].graph, tmp_path / "tile.rir"))


_MISSING = """
import json, sys
sys.modules["torch"] = None
sys.modules["llvmlite"] = None
from contextlib import redirect_stderr, redirect_stdout
import io
from ridgeline.cli import main
results = {}
for name, argv in {"torch": ["run", MODEL, "--backend", "torch"], "llvm": ["run", MODEL, "--backend", "llvm"],
                   "calibrate": ["calibrate", "--quick"], "backends": ["backends", "--json"]}.items():
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(argv)
    results[name] = [code, out.getvalue(), err.getvalue()]
print(json.dumps(results))
"""


def test_missing_extras_name_the_install(model):
    """As if ``pip install ridgeline`` had been run without the torch and llvm extras."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", _MISSING.replace("MODEL", repr(model))], capture_output=True,
                          text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout.splitlines()[-1])
    for backend, module in (("torch", "torch"), ("llvm", "llvmlite"), ("calibrate", "llvmlite")):
        code, _, err = res[backend]
        extra = "llvm" if backend == "calibrate" else backend
        assert_one_line_error(code, err, f"pip install 'ridgeline[{extra}]'", module)
        assert "Traceback" not in err
    code, out, _ = res["backends"]
    rows = {b["name"]: b for b in json.loads(out)}
    for backend in ("torch", "llvm"):
        assert rows[backend]["available"] is False
        assert rows[backend]["install"] == f"pip install 'ridgeline[{backend}]'"


@pytest.mark.parametrize("backend", ["torch", "llvm"])
def test_run_matches_numpy(capsys, model, tmp_path, backend):
    outs = {}
    for be in ("numpy", backend):
        out = tmp_path / f"{be}.npz"
        code, _, err = cli(capsys, "run", model, "--backend", be, "-o", out, "--json")
        assert code == 0, err
        with np.load(out) as z:
            outs[be] = {k: z[k] for k in z.files}
    for k, ref in outs["numpy"].items():
        np.testing.assert_allclose(outs[backend][k], ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())


def test_strict_fallback_is_exit_2(capsys, tile_model):
    assert_one_line_error(*cli(capsys, "run", tile_model, "--backend", "llvm", "--strict")[::2],
                          "strict", "Tile", "drop --strict")
    assert cli(capsys, "run", tile_model, "--backend", "llvm")[0] == 0


def test_device_cuda_without_cuda(capsys, model):
    import torch
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert_one_line_error(*cli(capsys, "run", model, "--backend", "torch", "--device", "cuda")[::2],
                          "CUDA is not available", "--device cpu")


@pytest.mark.parametrize("args,fragment", [(["--backend", "numpy", "--strict"], "numpy backend takes"),
                                           (["--backend", "torch", "--strict"], "unknown option"),
                                           (["--backend", "llvm", "--threads", "0"],
                                            "--threads: the value must be a positive integer")])
def test_options_a_backend_does_not_take(capsys, model, args, fragment):
    assert_one_line_error(*cli(capsys, "run", model, *args)[::2], fragment)


def test_one_subprocess_run(run_cli, model):
    """The installed entry point itself, once: exit 2 and one line through a real process."""
    proc = run_cli("run", model, "--backend", "llvm", "--threads", "0")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "--threads: the value must be a positive integer" in proc.stderr
