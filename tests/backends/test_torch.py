"""The torch backend against the numpy reference, on every op family, plus its options."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from cases import CASES, compare, fused  # noqa: E402
from ridgeline.ir import Builder, Graph, tensor  # noqa: E402
from ridgeline.ir.errors import BackendError  # noqa: E402
from ridgeline.backends.registry import get_backend  # noqa: E402


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_numpy(name):
    case = CASES[name]
    compare(case, get_backend("torch").compile(case.graph))


def test_profile_times_every_node():
    case = CASES["fused-gelu-chain"]
    exe = get_backend("torch").compile(case.graph)
    exe.run(case.inputs, profile=True)
    assert set(exe.timings) == set(case.graph.nodes)
    assert all(t >= 0 for t in exe.timings.values())


def test_cuda_without_cuda_is_one_clear_error():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(BackendError, match="CUDA is not available") as e:
        get_backend("torch").compile(CASES["unary-Exp"].graph, device="cuda")
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("device", ["tpu", "cuda:x", "gpu0"])
def test_bad_device(device):
    with pytest.raises(BackendError, match="device"):
        get_backend("torch").compile(CASES["unary-Exp"].graph, device=device)


def test_unknown_option():
    with pytest.raises(BackendError, match="unknown option.*strict"):
        get_backend("torch").compile(CASES["unary-Exp"].graph, strict=True)
    # said before any other complaint (a bad device here), so the typo is never hidden
    with pytest.raises(BackendError, match="unknown option.*strict"):
        get_backend("torch").compile(CASES["unary-Exp"].graph, device="tpu", strict=True)


def test_int4_is_refused_with_a_reason():
    g = Graph("q")
    x = g.add_input("x", tensor("f32", 4))
    g.outputs = [Builder(g).Cast(x, to="i4")]
    with pytest.raises(BackendError, match="torch backend cannot run Cast"):
        get_backend("torch").compile(g)


@pytest.mark.slow
def test_torch_compile_runs_fused_bodies():
    """compile=True hands fused bodies to torch.compile (inductor needs a C++ compiler)."""
    import shutil
    if shutil.which("g++") is None and shutil.which("clang++") is None:
        pytest.skip("inductor needs a C++ compiler")
    g = Graph("f")
    x = g.add_input("x", tensor("f32", 64, 37))
    a = g.add_constant("a", np.linspace(-1, 1, 37).astype(np.float32))
    g.outputs = [fused(g, [x, a], lambda b, p: b.Gelu(b.Mul(b.Add(p[0], p[1]), p[0]), approximate="tanh"))]
    case = type(CASES["fused-gelu-chain"])("compiled", g, {"x": np.random.default_rng(0).standard_normal((64, 37)).astype(np.float32)})
    exe = get_backend("torch").compile(g, compile=True)
    compare(case, exe)
    compare(case, exe)  # the second call reuses the compiled body


def test_threads_option_is_scoped_to_the_run():
    before = torch.get_num_threads()
    case = CASES["matmul-2d"]
    exe = get_backend("torch").compile(case.graph, threads=1)
    compare(case, exe)
    assert torch.get_num_threads() == before
    with pytest.raises(BackendError, match="threads must be"):
        get_backend("torch").compile(case.graph, threads=0)


def test_default_threads_are_measured_once_per_size_class(monkeypatch):
    """Without ``threads=``, the first run times one thread against torch's default and every
    run of that size class (the first included) uses the faster: runs never mix thread counts."""
    before = torch.get_num_threads()
    state = {"n": 2}
    monkeypatch.setattr(torch, "get_num_threads", lambda: state["n"])   # a 2-core host, whatever this one is
    seen: list[int] = []
    monkeypatch.setattr(torch, "set_num_threads", lambda n: (seen.append(n), state.update(n=n)))
    case = CASES["matmul-2d"]
    exe = get_backend("torch").compile(case.graph)
    compare(case, exe)
    assert state["n"] == 2   # restored after the run
    assert len(exe.thread_choice) == 1
    (threads, best), = exe.thread_choice.values()
    assert set(best) == {1, 2} and threads == min(best, key=best.get)
    n = len(seen)
    exe.run(case.inputs)
    assert seen[n:] == ([] if threads == 2 else [1, 2])   # the choice, then the default restored
    monkeypatch.undo()
    assert torch.get_num_threads() == before


def test_explicit_threads_are_not_measured():
    case = CASES["matmul-2d"]
    exe = get_backend("torch").compile(case.graph, threads=1)
    compare(case, exe)
    assert exe.thread_choice == {}
