"""``ridgeline opt MODEL -p PIPELINE``: run passes and print or save the optimized graph.

Without ``-o`` the optimized IR goes to stdout (constants elided) and a one-line summary to
stderr; ``-o out.onnx`` or ``-o out.rir`` saves it instead (never over the input file).
``--timing`` prints nodes before/after and the time of every pass; ``--print-ir-after-all``
dumps the IR after each pass to stderr; ``--verify-each`` checks the graph after every pass and
names the pass that broke it; ``--explain`` says why fusion rules did not fire.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ...ir import print_graph
from ...ir.safe_files import check_output_path
from ..common import UsageError, add_model_argument, console, emit, fmt_time, int_arg, load_model, table


def register(sub) -> None:
    p = sub.add_parser("opt", help="run a pass pipeline on a model; print or save the result")
    add_model_argument(p)
    p.add_argument("-p", "--pipeline", required=True, metavar="PIPELINE",
                   help="passes to run, e.g. 'default' or "
                        "'canonicalize,fuse-attention,fuse-elementwise{max-nodes=16},dce' (see `ridgeline passes`)")
    p.add_argument("-o", "--output", metavar="OUT.onnx|OUT.rir", help="save the optimized graph")
    p.add_argument("--verify-each", action="store_true", default=None,
                   help="verify the graph after every pass (default: $RIDGELINE_VERIFY_EACH)")
    p.add_argument("--print-ir-after-all", action="store_true", help="print the IR after every pass to stderr")
    p.add_argument("--print-ir-before-all", action="store_true", help="print the IR before every pass to stderr")
    p.add_argument("--timing", action="store_true", help="report nodes before/after and time per pass")
    p.add_argument("--fixed-point", action="store_true", help="repeat the pipeline until nothing changes")
    p.add_argument("--explain", action="store_true", help="say why rewrite rules did not fire")
    p.add_argument("--dump-dir", metavar="DIR", help="where --verify-each saves the IR before a failing pass "
                   "(default: the system temp directory)")
    p.add_argument("--json", action="store_true", help="print the pass report as JSON")
    p.add_argument("--opset", type=int_arg(1, 1000), metavar="N",
                   help="ONNX opset of the saved .onnx (default: the model's own; fused ops newer than it are "
                        "written as --emit says. 23 writes Attention/RotaryEmbedding/RMSNormalization as themselves)")
    p.add_argument("--matmul-nbits", action="store_true",
                   help="write int4/int8 GEMMs quantized in groups of 16, 32, 64... as onnxruntime's "
                        "com.microsoft.MatMulNBits (packed, 0.5 byte per int4 weight)")
    # default ort-contrib: onnxruntime inlines the std functions and runs the decomposition, slower
    # than the unoptimized file (docs/passes.md, "Which --emit by default")
    p.add_argument("--emit", choices=("ort-contrib", "std"), default=None,
                   help="how fused ops newer than the opset are written: 'ort-contrib' (the default) as "
                        "onnxruntime's com.microsoft contrib ops (MultiHeadAttention, RotaryEmbedding, "
                        "Gelu/FastGelu, SkipSimplifiedLayerNormalization) where they compute exactly the same, "
                        "model-local functions elsewhere (--explain lists those); 'std' as model-local functions "
                        "of standard ops only (for runtimes other than onnxruntime)")


def _check_output(args: argparse.Namespace) -> str | None:
    out = args.output
    if not out:
        return None
    suffix = Path(out).suffix.lower()
    if suffix not in (".onnx", ".rir"):
        raise UsageError(f"-o {out}: the output must end in .onnx or .rir")
    if os.path.exists(args.model) and os.path.exists(out) and os.path.samefile(args.model, out):
        raise UsageError(f"-o {out} is the input model; write the optimized graph to another file")
    if getattr(args, "matmul_nbits", False) and suffix != ".onnx":
        raise UsageError(f"--matmul-nbits writes ONNX; -o {out} is not an .onnx file")
    if getattr(args, "opset", None) is not None:
        import onnx
        newest = onnx.defs.onnx_opset_version()
        if suffix != ".onnx":
            raise UsageError("--opset applies to an .onnx output only")
        if not 17 <= args.opset <= newest:
            raise UsageError(f"--opset {args.opset}: ridgeline writes opsets 17..{newest}")
    if getattr(args, "emit", None) not in (None, "std") and suffix != ".onnx":
        raise UsageError("--emit applies to an .onnx output only")
    check_output_path(out, "-o")  # before the passes run, not after
    return suffix


def run(args: argparse.Namespace) -> int:
    from ...api import reference_evaluator
    from ...passes import run_pipeline
    suffix = _check_output(args)
    args.emit = args.emit or "ort-contrib"
    export_notes: list[str] = []  # fused nodes --emit ort-contrib kept as functions, and why
    g = load_model(args)
    report = run_pipeline(g, args.pipeline, verify_each=args.verify_each,
                          print_ir_after_all=args.print_ir_after_all, print_ir_before_all=args.print_ir_before_all,
                          fixed_point=args.fixed_point, evaluator=reference_evaluator(), explain=args.explain,
                          ir_stream=sys.stderr, dump_dir=args.dump_dir)
    if suffix == ".onnx" and args.matmul_nbits:
        from ...frontends.onnx.matmul_nbits import save_matmul_nbits
        kept = save_matmul_nbits(g, args.output, opset=args.opset)
        if kept:
            sys.stderr.write(f"{len(kept)} GEMMs kept as DequantizeLinear+MatMul, e.g. {kept[0]}\n")
    elif suffix == ".onnx":
        from ...frontends.onnx import save_onnx
        save_onnx(g, args.output, opset=args.opset, emit=args.emit, notes=export_notes)
    elif suffix == ".rir":
        from ...ir.rir_file import save_rir
        save_rir(g, args.output)

    def render() -> None:
        if args.timing:
            rows = [(r.pass_text, r.nodes_before, r.nodes_after, fmt_time(r.seconds), "yes" if r.modified else "no")
                    for r in report.records]
            rows.append(("total", report.nodes_before, report.nodes_after, fmt_time(report.seconds), ""))
            table(f"{args.model}: {report.pipeline}", ["pass", "nodes before", "after", "time", "changed"], rows,
                  caption=None)
        if args.explain:
            for r in report.records:
                for note in r.notes:
                    console().print(f"[dim]{r.pass_text}:[/dim] {note}", markup=True, highlight=False)
            for note in export_notes:
                console().print(f"[dim]--emit {args.emit}:[/dim] {note}", markup=True, highlight=False)
        if not suffix and not args.timing and not args.explain:
            sys.stdout.write(print_graph(g, constants="elide"))
        sys.stdout.flush()
        where = f"; wrote {args.output}" if suffix else ""
        if export_notes:
            where += f" ({len(export_notes)} fused node(s) kept as functions: see --explain)"
        sys.stderr.write(f"{args.model}: {report.nodes_before} -> {report.nodes_after} nodes "
                         f"in {fmt_time(report.seconds)} ({len(report.records)} passes){where}\n")
    emit(args, {"model": args.model, **report.as_dict(), "output": args.output,
                **({"kept_as_functions": export_notes} if suffix == ".onnx" and args.emit != "std" else {})}, render)
    return 0
