"""Validate ``serve-sim`` against published serving results (latency under load, throughput).

    python tools/validate_serving.py            # one line per published figure: published, simulated, error
    python tools/validate_serving.py --json
    python tools/validate_serving.py --source nim   # one source only (nim, vllm, vllm-pp2, lmdeploy, trtllm)

Every row is a published measurement of a serving stack under a stated load, re-run through
``ridgeline.serving.simulate`` with the deployment, workload and scheduler the source states.
Nothing is fitted to these rows: the targets, workloads and schedulers are the ones users get;
where a source's hardware differs from a built-in target, the variant below says which public
figures change (and nothing else). The error is |simulated − published| / published; the
summary is the median over every counted figure (the aim is ≤ 20%). The vLLM rows' median
inter-token latency is a diagnostic (it isolates the decode step): printed, marked "diag", and
left out of the headline median; a second median with it is printed beside.

Sources (all read through the project's search tool; none is in REFERENCE.md):

[NIM] NVIDIA NIM for LLMs benchmarking guide, "Performance", Llama-3.3-70b-instruct, NIM 1.8.0,
      2 x H100 80G, fp8, TP2, 5000 input / 500 output tokens, concurrency sweep (AIPerf, closed
      loop): https://docs.nvidia.com/nim/benchmarking/llm/1.0.0/performance
[VLLM] vLLM's serving benchmark (benchmark_serving, 200 ShareGPT prompts, Poisson QPS) run on Azure
      Standard_NC96ads_A100_v4 (4 x A100 80GB PCIe), Llama-3.3-70B-Instruct, TP4, PP1 (rows
      "serving_meta-llama-Llama-3.3-70B-Instruct_tp4_pp1_sharegpt_qps_01/04 | 1xStandard_NC96ads_A100_v4 x 1"):
      https://gist.github.com/surajssd/eef8ebf83cadd690f6fb4ee87b30fe1a (read through its mirror
      gist.521000.best/surajssd/eef8ebf83cadd690f6fb4ee87b30fe1a). An earlier URL here pointed at the
      same author's TP4 x PP2 gist ([VLLM-PP2]); these figures are this one's, digit for digit.
[VLLM-PP2] The same benchmark and model, TP4 x PP2 on two Standard_ND96asr_v4 ("1xStandard_ND96asr_v4
      x 2"): https://gist.github.com/surajssd/c8bbcb244b210a3607ad952a7bdda759 (mirror
      gist.521000.best/surajssd/c8bbcb244b210a3607ad952a7bdda759). The deployment is the author's
      (github.com/surajssd/llm-k8s at 4b4dd8e, 2025-03-05): its benchmark README lists this gist as
      "Infiniband results-serving_..._tp4_pp2_sharegpt" (tp = GPUs per VM, pp = VMs), and the
      InfiniBand config (configs/llama-3-3-70b-instruct/two-nodes-eight-gpus) runs vLLM 0.7.3 with
      --tensor-parallel-size 4 --pipeline-parallel-size 2 on two ND96asr_v4 (A100 40GB SXM4).
[LMD] LMDeploy v0.2.0 benchmark, A100-80G, llama2-70b, TP4, batch 256, 3000 ShareGPT prompts all at
      once: https://github.com/InternLM/lmdeploy/blob/main/docs/en/benchmark/a100_fp16.md
[TRT] TensorRT-LLM release 0.5.0 "Performance", H100 FP8, LLaMA 70B, batch 64, TP4 (static batches
      of fixed lengths): https://raw.githubusercontent.com/NVIDIA/TensorRT-LLM/release/0.5.0/docs/source/performance.md
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ridgeline.cost_models import get_target
from ridgeline.serving import EstimateTable, Lengths, Workload, simulate
from ridgeline.serving.step_table import preset_estimator
from ridgeline.sweep.variants import apply_overrides

SOURCES = {
    "nim": "https://docs.nvidia.com/nim/benchmarking/llm/1.0.0/performance",
    "vllm": "https://gist.github.com/surajssd/eef8ebf83cadd690f6fb4ee87b30fe1a",
    "vllm-pp2": "https://gist.github.com/surajssd/c8bbcb244b210a3607ad952a7bdda759",
    "lmdeploy": "https://github.com/InternLM/lmdeploy/blob/main/docs/en/benchmark/a100_fp16.md",
    "trtllm": "https://raw.githubusercontent.com/NVIDIA/TensorRT-LLM/release/0.5.0/docs/source/performance.md",
}


def _sharegpt_200(qps: float, rps: float, out_tps: float, total_tps: float) -> Workload:
    """vLLM's benchmark_serving workload: 200 ShareGPT prompts at Poisson ``qps``, with the run's
    own mean prompt and output lengths (tokens/s over requests/s)."""
    return Workload("sharegpt-200", arrival="poisson", rate=qps, prompt=_lognormal_with_mean((total_tps - out_tps) / rps),
                    output=_lognormal_with_mean(out_tps / rps))


def a100_pcie():
    """A100 80GB PCIe: 1,935 GB/s HBM2e and 300 W (NVIDIA A100 datasheet, PCIe column); everything
    else as the SXM4 part (assumption: the same 1.41 GHz boost clock and tensor peaks, as the
    datasheet lists). The four GPUs are not all joined by NVLink, so vLLM's own all-reduce is off
    ("Custom allreduce is disabled because it's not supported on more than two PCIe-only GPUs",
    vllm/distributed/device_communicators/custom_all_reduce.py) and every layer's all-reduce is
    NCCL's ring over PCIe Gen4 x16:
    - bandwidth 25 GB/s each way: 16 GT/s x 16 lanes x 128/130 = 31.5 GB/s on the wire (PCI-SIG
      Gen4 rate); TLP headers and flow control at 256-byte payloads leave about 80% of it
      (an assumption from the packet arithmetic, not a measurement);
    - 2.6 us per ring step: NCCL's all-reduce of 8 bytes takes 42 us on 8x GeForce RTX 4090 over
      PCIe with NCCL's default algorithm (NVIDIA/nccl#1530, all_reduce_perf), which over 2 x 7
      ring steps after the 5 us launch is 2.6 us each. That was measured on RTX 4090s, not A100
      PCIe: using it for the 4xA100 PCIe host is an assumption (NVLink's 1 us is the target's own
      assumption)."""
    return apply_overrides(get_target("a100"), {"memory.hbm.bandwidth": "1935 GB/s", "power": "300 W",
                                                "interconnect.nvlink3.bandwidth": "25 GB/s",
                                                "interconnect.nvlink3.latency": "2.6 us"}, name="a100-pcie")


def a100_40gb():
    """A100 SXM4 40GB, as in Azure's Standard_ND96asr_v4 (8 per VM on NVSwitch, one 200 Gb/s HDR
    InfiniBand NIC per GPU): 40 GB of HBM2 at 1,555 GB/s (NVIDIA A100 datasheet, 40GB SXM column);
    everything else as the 80GB SXM4 part (same 400 W, clocks and tensor peaks in the datasheet).
    [VLLM-PP2]'s run used four GPUs of each of two VMs (a pod per VM), so NVLink joins groups of 4 and
    the pipeline's sends between the two VMs go over InfiniBand (the target's scale-out link)."""
    return apply_overrides(get_target("a100"), {"memory.hbm.capacity": "40960 MiB", "memory.hbm.bandwidth": "1555 GB/s",
                                                "interconnect.nvlink3.max_devices": 4}, name="a100-40gb")


@dataclass
class Case:
    """One published run: the deployment, the load, and its figures (metric -> published value)."""

    source: str
    label: str
    model: str
    target: Any
    tp: int
    workload: Workload
    figures: dict[str, float]
    diagnostics: dict[str, float] = field(default_factory=dict)   # printed, not in the headline median
    dtype: str = "bf16"
    pp: int = 1
    kv_dtype: str | None = None          # None: the activations' (the preset's default)
    stack: str | None = None             # the serving stack's engine defaults (ridgeline/serving/stacks.py)
    scheduler: str | None = None
    max_batch: int | None = None
    token_budget: int | None = None
    requests: int = 200
    rate: float | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _fixed(n: int) -> Lengths:
    return Lengths("fixed", n)


def _lognormal_with_mean(mean: float, sigma: float = 1.0, hi: int = 1024) -> Lengths:
    # ShareGPT lengths are heavy-tailed; sigma 1.0 as in serving.workload's named "sharegpt"
    # (an assumption); the median is set so the mean is the run's own measured mean. The cap: both
    # benchmarks' ShareGPT samplers drop conversations with prompts over 1024 tokens or prompt +
    # output over 2048 (vLLM's sample_sharegpt_requests); 1024 on each side stands in for the sum
    # rule. LMDeploy's sampler is not known here: its rows pass hi=4096 (no cap)
    return Lengths("lognormal", mean / math.exp(sigma ** 2 / 2), sigma, 1, hi)


def cases() -> list[Case]:
    out: list[Case] = []
    # [NIM] closed loop: C users, each sends its next request when the last one finishes.
    # (concurrency, TTFT ms, ITL ms, output tokens/s)
    for c, ttft, itl, tps in ((1, 406.77, 18.58, 51.67), (5, 546.7, 21.83, 218.48), (25, 688.69, 38.75, 623.4),
                              (50, 834.51, 59.73, 814.37), (100, 7996.25, 92.91, 917.26)):
        w = Workload("nim-5000-500", arrival="closed", users=c, prompt=_fixed(5000), output=_fixed(500))
        # NIM's TRT-LLM backend runs TensorRT-LLM's in-flight batching with its defaults (stack
        # "trtllm": whole prompts beside the decodes up to max_num_tokens, admission only when the
        # prompt + output KV is free). Its FP8 engines come from ModelOpt FP8 checkpoints, whose
        # hf_quant_config.json sets kv_cache_quant_algo FP8: the KV cache is FP8 too (an assumption
        # for this NIM build). genai-perf reports the steady state, so each user's first request
        # (all sent at once) is warm-up (simulate's closed-loop default), and the run is long enough
        # to settle: 12 requests per user (at 3, the 50-user ITL was 52.8 ms; at 6, 57.7; at 12, 59.4).
        # The TTFT rows at 5-50 users are a lockstep of identical users at think 0: every TTFT is the
        # same (p50 = p99 ~ 2 prefills, 0.72-0.74 s) whatever the load; a 30 ms client round trip makes
        # it ~3 prefills (1.06 s, 1.3-1.6x the published). Their match, and the median's gain from
        # them, rests on that (docs/serving.md).
        out.append(Case("nim", f"2xH100 fp8 TP2, 5000/500, {c} users", "llama-3-70b", "h100", 2, w,
                        {"ttft_mean_s": ttft / 1e3, "itl_mean_s": itl / 1e3, "output_tokens_per_s": tps},
                        dtype="fp8", kv_dtype="fp8", requests=max(12 * c, 8), stack="trtllm"))
    # [VLLM] Poisson arrivals of 200 ShareGPT requests; the run's own means (tokens per request =
    # throughput in tokens/s over requests/s): qps 1 -> 213 in / 214 out, qps 4 -> 213 in / 214 out.
    # The median inter-token latency (43.878 / 55.5315 ms) is printed as a diagnostic.
    for qps, rps, out_tps, total_tps, ttft_med, tpot_med, itl_med in (
            (1, 0.927978, 198.508, 396.441, 128.388, 44.6347, 43.878),
            (4, 2.4957, 532.931, 1065.25, 219.599, 73.8304, 55.5315)):
        w = _sharegpt_200(qps, rps, out_tps, total_tps)
        # vLLM 0.7.3 (V0): the author's llm-k8s pinned vllm/vllm-openai:v0.7.3 for this one-VM
        # deployment on 2025-02-26 (commit 0285ba5; --tensor-parallel-size 4, mp executor, V1 not
        # asked for) and added these results the next day (643c866); V0's chunked-prefill defaults
        # (Llama-3.3's 131k context), host time per step and output lag (stack "vllm-v0"). The published
        # TTFT is benchmark_serving's, client-side: from before the HTTP request to the first streamed
        # chunk with text, so it holds the lag: vllm serve's MQLLMEngine sends a step's outputs from the
        # async callback (_async_socket_engine_callback) the model runner calls in the next step, once
        # that step's host work is done and its forward launched (worker/model_runner.py execute_model)
        out.append(Case("vllm", f"4xA100-80GB-PCIe TP4, ShareGPT, {qps} req/s", "llama-3-70b", a100_pcie(), 4, w,
                        {"ttft_p50_s": ttft_med / 1e3, "tpot_p50_s": tpot_med / 1e3, "throughput_rps": rps},
                        diagnostics={"itl_p50_s": itl_med / 1e3}, requests=200, rate=qps, stack="vllm-v0"))
    # [VLLM-PP2] the same benchmark on two VMs: qps 1 -> 213 in / 214 out, qps 4 -> 213 in / 214 out.
    # The median inter-token latency (42.2756 / 57.8237 ms) is printed as a diagnostic.
    for qps, rps, out_tps, total_tps, ttft_med, tpot_med, itl_med in (
            (1, 0.928406, 198.242, 396.267, 96.9817, 43.5453, 42.2756),
            (4, 2.52147, 539.053, 1076.87, 125.156, 63.497, 57.8237)):
        w = _sharegpt_200(qps, rps, out_tps, total_tps)
        # vLLM 0.7.3 (the V0 engine; ghcr.io/surajssd/llm-k8s/lws-vllm:0.7.3, multi-node over Ray):
        # Llama-3.3's 131k context turns chunked prefill on by default, and V0's SchedulerConfig then
        # takes 2048 tokens and 256 sequences per step, the decodes first; with PP its output
        # processing is synchronous, so no output lag (stack "vllm-v0"). TP 4 within each VM, PP 2 across.
        out.append(Case("vllm-pp2", f"2 VMs x 4xA100-40GB TP4 PP2 (IB), ShareGPT, {qps} req/s", "llama-3-70b",
                        a100_40gb(), 4, w, {"ttft_p50_s": ttft_med / 1e3, "tpot_p50_s": tpot_med / 1e3,
                                            "throughput_rps": rps}, diagnostics={"itl_p50_s": itl_med / 1e3},
                        pp=2, requests=200, rate=qps, stack="vllm-v0"))
    # [LMD] 3000 ShareGPT prompts at once, batch 256, TP4: 7.231 req/s, 1682.738 output tokens/s;
    # means from the row: 232.7 output, 246.9 input tokens per request
    w = Workload("sharegpt-3000", arrival="poisson", rate=1e9,
                 prompt=_lognormal_with_mean(3467.969 / 7.231 - 232.71, hi=4096),
                 output=_lognormal_with_mean(232.71, hi=4096))
    out.append(Case("lmdeploy", "4xA100-80GB-SXM TP4, batch 256, 3000 ShareGPT at once", "llama-2-70b", "a100", 4, w,
                    {"throughput_rps": 7.231, "output_tokens_per_s": 1682.738}, max_batch=256, requests=3000,
                    rate=1e9))
    # [TRT] static batches of 64 fixed-length requests, FP8, TP4: output tokens/s
    for isl, osl, tps in ((128, 128, 3317), (128, 2048, 2616), (2048, 128, 843), (2048, 2048, 1583)):
        w = Workload(f"fixed-{isl}-{osl}", arrival="poisson", rate=1e9, prompt=_fixed(isl), output=_fixed(osl))
        out.append(Case("trtllm", f"4xH100 FP8 TP4, batch 64 static, {isl}/{osl}", "llama-2-70b", "h100", 4, w,
                        {"output_tokens_per_s": tps}, dtype="fp8", scheduler="static", max_batch=64, requests=128,
                        rate=1e9))
    return out


def _options(case: Case) -> dict[str, str]:
    return {"dtype": case.dtype} | ({"kv_dtype": case.kv_dtype} if case.kv_dtype else {})


def simulated(case: Case, table: EstimateTable) -> dict[str, float]:
    r = simulate(case.model, case.target, workload=case.workload, requests=case.requests, tp=case.tp, pp=case.pp,
                 scheduler=case.scheduler, max_batch=case.max_batch, token_budget=case.token_budget, table=table,
                 seed=0, stack=case.stack, preset_options=_options(case))
    m = r.metrics
    return {"ttft_mean_s": m.ttft["mean"], "ttft_p50_s": m.ttft["p50"], "itl_mean_s": m.itl["mean"], "itl_p50_s": m.itl["p50"],
            "tpot_p50_s": m.tpot["p50"], "output_tokens_per_s": m.output_tokens_per_s,
            "throughput_rps": m.throughput_rps}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--source", choices=sorted(SOURCES), help="only this source's rows")
    args = ap.parse_args()
    t0 = time.perf_counter()
    tables: dict[Any, EstimateTable] = {}
    rows = []
    for case in cases():
        if args.source and case.source != args.source:
            continue
        target = get_target(case.target)
        key = (case.model, target.name, case.tp, case.pp, case.dtype, case.kv_dtype)
        if key not in tables:
            tables[key] = EstimateTable(preset_estimator(case.model, target, {"tp": case.tp, "pp": case.pp}, _options(case)))
        sim = simulated(case, tables[key])
        for counted, figs in ((True, case.figures), (False, case.diagnostics)):
            for metric, pub in figs.items():
                got = sim[metric]
                rows.append({"source": case.source, "url": SOURCES[case.source], "case": case.label, "metric": metric,
                             "published": pub, "simulated": got, "error": abs(got - pub) / pub, "counted": counted})
    diag = [r for r in rows if not r["counted"]]
    every = rows
    rows = [r for r in rows if r["counted"]]
    errs = [r["error"] for r in rows]
    worst = max(rows, key=lambda r: max(r["simulated"] / r["published"], r["published"] / r["simulated"]), default=None)
    summary = {"figures": len(rows), "median_error": statistics.median(errs) if errs else None,
               "diagnostics": len(diag),
               "median_error_with_diagnostics": statistics.median([r["error"] for r in every]) if every else None,
               "worst": worst and {"case": worst["case"], "metric": worst["metric"],
                                   "factor": max(worst["simulated"] / worst["published"],
                                                 worst["published"] / worst["simulated"])},
               "by_source": {s: statistics.median([r["error"] for r in rows if r["source"] == s])
                             for s in sorted({r["source"] for r in rows})},
               "wall_s": time.perf_counter() - t0, "load_average": os.getloadavg()[0]}
    if args.json:
        json.dump({"rows": every, "summary": summary}, sys.stdout, indent=2)
        print()
        return 0
    print(f"{'source':9} {'case':52} {'metric':20} {'published':>11} {'simulated':>11} {'error':>7}")
    for r in every:
        print(f"{r['source']:9} {r['case'][:52]:52} {r['metric']:20} {r['published']:11.4g} {r['simulated']:11.4g} "
              f"{r['error']:7.1%}" + ("" if r["counted"] else "  diag"))
    print(f"median error over {summary['figures']} figures: {summary['median_error']:.1%}; by source: "
          + ", ".join(f"{k} {v:.1%}" for k, v in summary["by_source"].items())
          + f"  ({summary['wall_s']:.0f} s, load {summary['load_average']:.1f})")
    if diag:
        print(f"  ({len(diag)} diagnostic figures marked diag -- the vLLM rows' median ITL -- are not counted; "
              f"the median with them: {summary['median_error_with_diagnostics']:.1%} over {len(every)})")
    if worst:
        w = summary["worst"]
        print(f"farthest off: {w['case']} {w['metric']}, {w['factor']:.2f}x (the aim: none off by more than 2x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
