"""Import time of adversarially long graphs, against onnxruntime on the same files, in one run.

Two shapes a hostile model uses to make a tool quadratic: a chain of N Relu nodes and one Concat
of N inputs. For each size this prints ridgeline's import+verify time, onnxruntime's session
creation time on the same file (the peer), their ratio, and how each grows from N to 4N (linear
is ~4x). Profiles: ``--profile ci`` (small) and ``--profile soak`` (the 60,000-node chain and the
50,000-input Concat of issue 11).

    python tools/bench_hostile_scale.py --profile soak
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PROFILES = {"ci": (2_000, 8_000), "soak": (15_000, 60_000)}


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


def _time(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", choices=sorted(PROFILES), default="ci")
    args = ap.parse_args(argv)
    import onnxruntime as ort

    from ridgeline.frontends.onnx import load_onnx
    small, big = PROFILES[args.profile]
    print(f"{'graph':<10}{'N':>8}{'ridgeline s':>13}{'onnxruntime s':>15}{'ratio':>8}")
    with tempfile.TemporaryDirectory() as d:
        for name, make in (("chain", _chain), ("concat", _concat)):
            times = {}
            for n in (small, big):
                p = Path(d) / f"{name}{n}.onnx"
                p.write_bytes(make(n).SerializeToString())
                ours = _time(lambda p=p: load_onnx(p))
                peer = _time(lambda p=p: ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]))
                times[n] = (ours, peer)
                print(f"{name:<10}{n:>8}{ours:>13.2f}{peer:>15.2f}{ours / peer:>8.1f}")
            growth = [times[big][i] / times[small][i] for i in (0, 1)]
            print(f"{name:<10}{'x' + str(big // small):>8}{growth[0]:>12.1f}x{growth[1]:>14.1f}x   (growth from N to {big})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
