"""``ridgeline run MODEL``: execute on a backend with given or seeded random inputs."""

from __future__ import annotations

import argparse
import io
import os
import sys

import numpy as np

from ...ir.errors import BackendError
from ...ir.safe_files import check_output_path, read_npz, write_atomic
from ..common import MAX_SEED, UsageError, add_model_argument, emit, int_arg, load_model, parse_dims, table


def register(sub) -> None:
    p = sub.add_parser("run", help="execute a model on an executing backend")
    add_model_argument(p)
    p.add_argument("-b", "--backend", default="numpy", help="executing backend (default: numpy)")
    p.add_argument("-p", "--pipeline", default=None, help="passes to run first (default: the backend's own)")
    p.add_argument("--inputs", metavar="IN.npz", help="inputs by name (default: seeded random inputs)")
    p.add_argument("--seed", type=int_arg(0, MAX_SEED), default=0, help="seed for random inputs (default 0)")
    p.add_argument("-o", "--output", metavar="OUT.npz", help="save the outputs")
    # the executing backends' options: each is passed only when given (a backend that does not take it says so)
    p.add_argument("--device", help="torch: cpu or cuda[:N] (default cpu)")
    p.add_argument("--strict", action="store_true", default=None,
                   help="llvm: fail instead of running ops without a kernel on numpy")
    p.add_argument("--threads", type=int_arg(1, 2 ** 31), help="llvm, torch: cores to use (default: all available)")
    p.add_argument("--json", action="store_true", help="machine-readable summary")


def _load_npz(path: str) -> dict[str, np.ndarray]:
    if not os.path.isfile(path):
        raise UsageError(f"--inputs {path}: no such file")
    with read_npz(path, f"--inputs {path}") as z:  # headers checked before any array is allocated
        return {k: z[k] for k in z}


def run(args: argparse.Namespace) -> int:
    from ...api import compile
    from ...backends.registry import get_backend
    from ...ir.inputs import random_inputs
    if args.output:
        check_output_path(args.output, "--output")  # before the work, not after
    # a target estimates: say so before compiling it, which would first ask for bound dims
    if getattr(get_backend(args.backend), "kind", "execute") != "execute":
        raise BackendError(f"{args.backend!r} is a target: it estimates rather than executes; "
                           f"use `ridgeline estimate {args.model} --target {args.backend}`")
    g = load_model(args, bind=False)
    dims = parse_dims(args.dim)
    if args.inputs:
        from ...ir.inputs import restore_dtypes
        inputs = restore_dtypes(g, _load_npz(args.inputs))  # bf16/fp8/int4 come back from .npz as bytes
    else:
        inputs = random_inputs(g, seed=args.seed, dims=dims)
    options = {k: getattr(args, k) for k in ("device", "strict", "threads") if getattr(args, k) is not None}
    exe = compile(g, backend=args.backend, pipeline=args.pipeline, **options)
    outs = exe.run(inputs)
    if args.output:
        buf = io.BytesIO()
        np.savez(buf, **outs)
        write_atomic(args.output, buf.getvalue(), "--output")
    summary = [{"name": k, "dtype": str(v.dtype), "shape": list(v.shape),
                **(_stats(v) if v.size and v.dtype.kind in "fiu" else {})} for k, v in outs.items()]

    def render() -> None:
        table(f"{args.model} on {args.backend}", ["output", "dtype", "shape", "mean", "std", "min", "max"],
              [(s["name"], s["dtype"], s["shape"], *(f"{s[k]:.6g}" if k in s else "-" for k in ("mean", "std", "min", "max")))
               for s in summary])
        if args.output:
            sys.stderr.write(f"wrote {args.output}\n")
    emit(args, {"backend": args.backend, "outputs": summary}, render)
    return 0


def _stats(a: np.ndarray) -> dict:
    f = a.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):  # inf in an output: its std is nan, not a warning
        return {"mean": float(f.mean()), "std": float(f.std()), "min": float(f.min()), "max": float(f.max())}
