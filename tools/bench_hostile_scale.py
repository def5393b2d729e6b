"""What ``show``, ``opt -p default -o`` and ``run`` cost on adversarially long graphs, per node, against
onnx and onnxruntime on the same files in the same run.

Two shapes a hostile model uses to make a tool quadratic: a chain of N Relu nodes and one Concat
of N inputs. For each size this prints ridgeline's CPU seconds for the work of each command
(import+verify+summarize; import+default pipeline+export+write; import+run on the numpy
reference), the peers' (``onnx.load`` + ``onnx.checker.check_model``; onnxruntime session
creation, one thread), microseconds per node and the ratio to each peer. Linear means µs/node
stays flat as N grows. CPU seconds (``time.process_time``), not wall: on a machine shared with
other jobs wall time measures the load. Profiles: ``--profile ci`` (small) and ``--profile soak``
(20k/40k/60k chains and the 50,000-input Concat of issue 11).

    python tools/bench_hostile_scale.py --profile soak
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PROFILES = {"ci": {"chain": (1_000, 2_000, 4_000), "concat": (2_000, 4_000)},
            "soak": {"chain": (20_000, 40_000, 60_000), "concat": (25_000, 50_000)}}


def _chain(n: int):
    from onnx import helper
    nodes = [helper.make_node("Relu", [f"v{i}" if i else "x"], [f"v{i + 1}" if i < n - 1 else "y"]) for i in range(n)]
    g = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", 1, [4])],
                          [helper.make_tensor_value_info("y", 1, [4])])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])


def _concat(n: int):
    from onnx import helper
    g = helper.make_graph([helper.make_node("Concat", ["x"] * n, ["y"], axis=0)], "cat",
                          [helper.make_tensor_value_info("x", 1, [1])], [helper.make_tensor_value_info("y", 1, [n])])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])


def _cpu(fn) -> float:
    t0 = time.process_time()
    fn()
    return time.process_time() - t0


def _commands(path: Path, out: Path) -> dict:
    """The work of each CLI command, in process (the interpreter's start-up is the same for all)."""
    import numpy as np

    import ridgeline as rl
    from ridgeline.backends.numpy import Interpreter
    from ridgeline.frontends.onnx import load_onnx, save_onnx
    from ridgeline.ir.stats import summarize
    from ridgeline.passes import run_pipeline

    def opt():
        g = load_onnx(path)
        run_pipeline(g, "default")
        save_onnx(g, out)

    def run():
        g = load_onnx(path)
        Interpreter(g).run({v.name: np.ones(v.type.shape, v.type.dtype.np_dtype) for v in g.inputs})
    assert rl  # the public package imports first, as the CLI does
    return {"show": _cpu(lambda: summarize(load_onnx(path))), "opt -o": _cpu(opt), "run": _cpu(run)}


def _peers(path: Path) -> dict:
    import onnx
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    return {"onnx load+check": _cpu(lambda: onnx.checker.check_model(onnx.load(str(path)))),
            "ort session": _cpu(lambda: ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"]))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", choices=sorted(PROFILES), default="ci")
    args = ap.parse_args(argv)
    print(f"load average {os.getloadavg()[0]:.1f}; CPU seconds; µs/node = CPU s / N")
    head = f"{'graph':<8}{'N':>7}{'what':>17}{'CPU s':>8}{'µs/node':>9}{'/onnx':>7}{'/ort':>7}"
    print(head)
    with tempfile.TemporaryDirectory() as d:
        for name, make in (("chain", _chain), ("concat", _concat)):
            for n in PROFILES[args.profile][name]:
                p = Path(d) / f"{name}{n}.onnx"
                p.write_bytes(make(n).SerializeToString())
                peers = _peers(p)
                ours = _commands(p, Path(d) / "out.onnx")
                for what, s in {**peers, **ours}.items():
                    ratio = (f"{s / peers['onnx load+check']:>7.1f}{s / peers['ort session']:>7.1f}"
                             if what in ours else "")
                    print(f"{name:<8}{n:>7}{what:>17}{s:>8.2f}{1e6 * s / n:>9.1f}{ratio}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
