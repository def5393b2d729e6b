"""Passes: the pass manager, the registry (built-ins, plugins, in-process), the pattern rewriter,
and the cleanup and fusion passes themselves (``ridgeline.passes.transforms``).

    from ridgeline.passes import run_pipeline
    report = run_pipeline(graph, "canonicalize,fuse-attention,fuse-elementwise{max-nodes=16},dce")
    print(report)            # per pass: nodes before/after and time

``default`` names the recommended order; ``ridgeline passes`` lists everything with options.
"""

from .base import OptionSpec, Pass, PassContext, PassResult
from .evaluate import Evaluator
from .instrument import DumpOnFailure, Instrument, PrintIR, Timing, VerifyEach
from .manager import PassOptions, PassRecord, PipelineReport, run_pass, run_passes, run_pipeline, verify_each_default
from .pipeline import PassInvocation, Pipeline, parse_pipeline
from .registry import PassInfo, get_pass, get_pipeline, list_passes, register_pass, register_pipeline, unregister_pass

__all__ = [
    "run_pipeline", "run_pass", "PipelineReport", "PassRecord", "register_pass", "register_pipeline",
    "unregister_pass", "get_pass", "get_pipeline", "list_passes", "PassInfo", "parse_pipeline", "Pipeline",
    "PassInvocation", "Pass", "PassContext", "PassResult", "OptionSpec", "Evaluator", "verify_each_default",
    "run_passes", "PassOptions", "Instrument", "VerifyEach", "DumpOnFailure", "PrintIR", "Timing",
]
