"""Run every llvm kernel on buffers that touch a PROT_NONE page; a stray access kills the process.

``python guard_pages.py`` places each input and output of each kernel (built from the case
catalogue and from extra odd-size graphs) so that it ends exactly where an inaccessible page
starts, then again so that it starts right after one. A read or write out of bounds in either
direction is a segmentation fault; the test runs this script in a subprocess and expects it to
exit cleanly, with every kernel's results equal to the numpy reference's.
"""

from __future__ import annotations

import ctypes
import math
import mmap
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cases import CASES, assert_close, fused  # noqa: E402
from ridgeline.backends.llvm import LLVMBackend  # noqa: E402
from ridgeline.backends.numpy import Interpreter  # noqa: E402
from ridgeline.ir import Builder, Graph, tensor  # noqa: E402

PAGE = mmap.PAGESIZE
PROT_NONE = 0
_libc = ctypes.CDLL(None, use_errno=True)
_libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
_keep: list = []


def guarded(a: np.ndarray, at_end: bool) -> np.ndarray:
    """A copy of ``a`` whose last byte precedes (or first byte follows) an inaccessible page."""
    nbytes = a.nbytes
    pages = max(1, math.ceil(nbytes / PAGE))
    mm = mmap.mmap(-1, (pages + 2) * PAGE)
    base = ctypes.addressof(ctypes.c_char.from_buffer(mm))
    for page in (base, base + (pages + 1) * PAGE):
        if _libc.mprotect(page, PAGE, PROT_NONE) != 0:
            raise OSError(ctypes.get_errno(), "mprotect failed")
    offset = PAGE + (pages * PAGE - nbytes if at_end else 0)
    out = np.frombuffer(mm, dtype=a.dtype, count=a.size, offset=offset).reshape(a.shape)
    out[...] = a
    _keep.append(mm)
    return out


def _extra_graphs():
    rng = np.random.default_rng(3)
    out = []
    for n in (1, 7, 17, 33, 129):
        g = Graph(f"chain{n}")
        x = g.add_input("x", tensor("f32", 3, n))
        a = g.add_input("a", tensor("f32", n))
        g.outputs = [fused(g, [x, a], lambda b, p: b.Gelu(b.Mul(p[0], p[1])))]
        out.append((g, {"x": rng.standard_normal((3, n)).astype(np.float32), "a": rng.standard_normal(n).astype(np.float32)}))
        g = Graph(f"rows{n}")
        x = g.add_input("x", tensor("f32", 5, n))
        s = g.add_input("s", tensor("f32", n))
        b = Builder(g)
        g.outputs = [b.Softmax(x), b.LayerNormalization(x, s, _outputs=1), b.RMSNormalization(x, s)]
        out.append((g, {"x": rng.standard_normal((5, n)).astype(np.float32), "s": rng.standard_normal(n).astype(np.float32)}))
    for m, k, n in ((1, 5, 33), (3, 17, 1), (9, 300, 47), (17, 33, 65)):
        g = Graph(f"mm{m}x{k}x{n}")
        a = g.add_input("a", tensor("f32", m, k))
        w = g.add_input("w", tensor("f32", k, n))
        g.outputs = [Builder(g).MatMul(a, w)]
        out.append((g, {"a": rng.standard_normal((m, k)).astype(np.float32), "w": rng.standard_normal((k, n)).astype(np.float32)}))
    return out


def check(graph: Graph, inputs: dict[str, np.ndarray], gemm: str) -> int:
    exe = LLVMBackend().compile(graph, gemm=gemm)
    exe.run(inputs)
    plan = exe.plan
    ref = Interpreter(graph)
    env = {v.name: inputs[v.name] for v in graph.inputs}
    env.update({c.name: c.data for c in graph.constants.values()})
    checked = 0
    for node in graph:
        kernel = plan.kernels.get(node)
        args = [env.get(v.name) if v is not None else None for v in node.inputs]
        if kernel is None or any(v is not None and v.name not in env for v in node.inputs):
            continue
        want = ref.run_node(node, args)
        for at_end in (True, False):
            gargs = [guarded(np.ascontiguousarray(a), at_end) if a is not None and a.size else a for a in args]
            outs = [guarded(np.zeros(v.type.shape, v.type.dtype.np_dtype), at_end) if math.prod(v.type.shape) else None
                    for v in node.outputs]
            got = kernel(gargs, outs)
            for w, g_ in zip(want, got):
                assert_close(w, np.asarray(g_), what=f"{graph.name} {node.op}")
        checked += 1
    return checked


def self_test(at_end: bool) -> int:
    """Read one element past the end (or before the start): must die, proving the guard works."""
    a = guarded(np.arange(10, dtype=np.float32), at_end)
    step = 10 if at_end else -1
    print(ctypes.c_float.from_address(a.ctypes.data + 4 * step).value)
    return 0


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] in ("--self-test-end", "--self-test-start"):
        return self_test(sys.argv[1].endswith("end"))
    total = 0
    for case in CASES.values():
        total += check(case.graph, case.inputs, "jit")
    for g, inputs in _extra_graphs():
        for gemm in ("jit", "blas"):
            total += check(g, inputs, gemm)
    print(f"checked {total} kernels against guard pages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
