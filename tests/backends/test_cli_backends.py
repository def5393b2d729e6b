"""The executing backends through the CLI: options, strict mode, missing extras (exit 2)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from cases import CASES
from helpers import assert_user_error
from ridgeline.frontends.rir import save_rir

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def model(tmp_path):
    return str(save_rir(CASES["fused-gelu-chain"].graph, tmp_path / "chain.rir"))


@pytest.fixture
def tile_model(tmp_path):
    return str(save_rir(CASES["tile"].graph, tmp_path / "tile.rir"))


def _run_without(module: str, *args: str):
    """The CLI in a process where ``module`` cannot be imported (as if its extra were missing)."""
    code = (f"import sys; sys.modules[{module!r}] = None\n"
            f"from ridgeline.cli import main\nsys.exit(main({list(args)!r}))")
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.parametrize("backend,module", [("torch", "torch"), ("llvm", "llvmlite")])
def test_missing_extra_names_the_install(model, backend, module):
    proc = _run_without(module, "run", model, "--backend", backend)
    assert_user_error(proc, f"pip install 'ridgeline[{backend}]'", module)


@pytest.mark.parametrize("backend,module", [("torch", "torch"), ("llvm", "llvmlite")])
def test_backends_lists_the_missing_extra(backend, module):
    proc = _run_without(module, "backends", "--json")
    assert proc.returncode == 0, proc.stderr
    import json
    row = next(b for b in json.loads(proc.stdout) if b["name"] == backend)
    assert row["available"] is False and row["install"] == f"pip install 'ridgeline[{backend}]'"


@pytest.mark.parametrize("backend", ["torch", "llvm"])
def test_run_matches_numpy(run_cli, model, tmp_path, backend):
    outs = {}
    for be in ("numpy", backend):
        out = tmp_path / f"{be}.npz"
        proc = run_cli("run", model, "--backend", be, "-o", out, "--json")
        assert proc.returncode == 0, proc.stderr
        with np.load(out) as z:
            outs[be] = {k: z[k] for k in z.files}
    for k, ref in outs["numpy"].items():
        np.testing.assert_allclose(outs[backend][k], ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())


def test_strict_fallback_is_exit_2(run_cli, tile_model):
    assert_user_error(run_cli("run", tile_model, "--backend", "llvm", "--strict"), "strict", "Tile", "drop --strict")
    assert run_cli("run", tile_model, "--backend", "llvm").returncode == 0


def test_device_cuda_without_cuda(run_cli, model):
    import torch
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert_user_error(run_cli("run", model, "--backend", "torch", "--device", "cuda"), "CUDA is not available",
                      "--device cpu")


@pytest.mark.parametrize("args,fragment", [(["--backend", "numpy", "--strict"], "takes no options"),
                                           (["--backend", "torch", "--threads", "2"], "unknown option"),
                                           (["--backend", "llvm", "--threads", "0"], "threads must be")])
def test_options_a_backend_does_not_take(run_cli, model, args, fragment):
    assert_user_error(run_cli("run", model, *args), fragment)
