"""Requests and the workloads that make them: arrivals, prompt/output lengths, traces, named mixes.

A workload is data (``Workload``): an arrival process (Poisson or gamma at a rate, a closed loop
of N users, or the times of a CSV trace) and two length distributions. ``Workload.requests(n,
seed)`` draws the open-loop requests; the simulator asks ``next_closed(...)`` for closed loops.

Named workloads carry the published statistics they follow (``NAMED``); the spread of each
log-normal is an assumption stated beside it, the medians are the sources' figures.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..ir.errors import RidgelineError

__all__ = [
    "NAMED",
    "Lengths",
    "Request",
    "Workload",
    "WorkloadError",
    "get_workload",
    "parse_lengths",
    "read_trace",
]


class WorkloadError(RidgelineError):
    """A workload that cannot be built (unknown name, unreadable trace, bad length spec)."""


@dataclass(frozen=True, slots=True)
class Request:
    """One request: when it arrives and how many tokens it brings and asks for."""

    id: int
    arrival: float          # seconds
    prompt: int             # prompt tokens (>= 1)
    output: int             # output tokens to generate (>= 1)
    prefix: int = 0         # leading prompt tokens shared with other requests of ``group``
    group: int = -1         # shared-prefix group (-1: none)
    user: int = -1          # closed-loop user


@dataclass(frozen=True)
class Lengths:
    """A token-length distribution: ``fixed``, ``lognormal`` (median, sigma) or ``empirical``."""

    kind: str = "fixed"
    value: float = 128              # fixed value, or the log-normal's median
    sigma: float = 0.0              # log-normal shape
    lo: int = 1
    hi: int = 1 << 20
    samples: tuple[int, ...] = ()   # empirical

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        if self.kind == "fixed":
            out = np.full(n, self.value)
        elif self.kind == "lognormal":
            out = rng.lognormal(math.log(self.value), self.sigma, n)
        elif self.kind == "empirical":
            out = rng.choice(np.asarray(self.samples), n)
        else:  # pragma: no cover - parse_lengths rejects other kinds
            raise WorkloadError(f"unknown length distribution {self.kind!r}")
        return np.clip(np.rint(out), self.lo, self.hi).astype(np.int64)

    @property
    def mean(self) -> float:
        if self.kind == "fixed":
            return float(max(self.lo, min(self.hi, self.value)))
        if self.kind == "lognormal":
            return float(self.value * math.exp(self.sigma ** 2 / 2))
        return float(np.mean(self.samples))


def parse_lengths(text: str | int | Lengths, what: str) -> Lengths:
    """``"512"`` (fixed), ``"lognormal:1020,1.0"`` (median, sigma) or a ``Lengths``."""
    if isinstance(text, Lengths):
        return text
    if isinstance(text, int):
        text = str(text)
    kind, _, rest = str(text).partition(":")
    try:
        if not rest:
            v = int(kind)
            if v < 1:
                raise ValueError
            return Lengths("fixed", v)
        if kind == "lognormal":
            median, sigma = (float(x) for x in rest.split(","))
            if median < 1 or sigma < 0:
                raise ValueError
            return Lengths("lognormal", median, sigma)
    except ValueError:
        pass
    raise WorkloadError(f"{what}: expected a token count such as 512 or lognormal:MEDIAN,SIGMA, got {text!r}")


@dataclass(frozen=True)
class Workload:
    """What arrives: an arrival process plus prompt and output lengths (and shared prefixes)."""

    name: str = "custom"
    arrival: str = "poisson"        # poisson | gamma | closed | trace
    rate: float = 1.0               # requests/s (open loop)
    cv: float = 1.0                 # gamma: coefficient of variation of inter-arrival times
    users: int = 0                  # closed loop: concurrent users
    think: float = 0.0              # closed loop: seconds between a reply and the user's next request
    prompt: Lengths = field(default_factory=Lengths)
    output: Lengths = field(default_factory=lambda: Lengths("fixed", 128))
    shared_prefix: int = 0          # leading tokens shared within a group (system prompt, few-shot)
    prefix_groups: int = 0          # number of distinct shared prefixes (0: none)
    trace: tuple[Request, ...] = ()
    source: str = ""                # where the statistics come from

    def with_rate(self, rate: float) -> Workload:
        if self.arrival in ("closed", "trace"):
            raise WorkloadError(f"workload {self.name!r} ({self.arrival}) has no rate to set")
        return replace(self, rate=float(rate))

    def _lengths(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        prompts = self.prompt.draw(rng, n)
        outputs = self.output.draw(rng, n)
        if self.shared_prefix:
            prompts = np.maximum(prompts, self.shared_prefix + 1)
        return prompts, outputs

    def requests(self, n: int, seed: int = 0) -> list[Request]:
        """``n`` open-loop requests (a trace gives its first ``n``); deterministic for a seed."""
        if self.arrival == "trace":
            return list(self.trace[:n])
        if self.arrival == "closed":
            raise WorkloadError("a closed-loop workload makes requests as replies come back (the simulator does)")
        if not self.rate > 0:
            raise WorkloadError(f"arrival rate must be positive, got {self.rate}")
        rng = np.random.default_rng(seed)
        if self.arrival == "poisson":
            gaps = rng.exponential(1.0 / self.rate, n)
        elif self.arrival == "gamma":
            shape = 1.0 / max(self.cv, 1e-9) ** 2
            gaps = rng.gamma(shape, 1.0 / (self.rate * shape), n)
        else:
            raise WorkloadError(f"unknown arrival process {self.arrival!r} (poisson, gamma, closed, trace)")
        times = np.cumsum(gaps) - gaps[0]       # the first request at t = 0
        prompts, outputs = self._lengths(rng, n)
        groups = rng.integers(0, self.prefix_groups, n) if self.prefix_groups else np.full(n, -1)
        pre = self.shared_prefix if self.prefix_groups else 0
        return [Request(i, float(times[i]), int(prompts[i]), int(outputs[i]), pre, int(groups[i]))
                for i in range(n)]

    def closed_lengths(self, n: int, seed: int) -> list[tuple[int, int, int]]:
        """(prompt, output, group) for the ``n`` requests of a closed loop, in issue order."""
        rng = np.random.default_rng(seed)
        prompts, outputs = self._lengths(rng, n)
        groups = rng.integers(0, self.prefix_groups, n) if self.prefix_groups else np.full(n, -1)
        return [(int(p), int(o), int(g)) for p, o, g in zip(prompts, outputs, groups)]


# Named workloads. Medians are the sources' published figures; the log-normal sigma (spread) of
# each is an assumption (heavy-tailed lengths, as all these papers plot them).
NAMED: dict[str, Workload] = {
    # Splitwise (Patel et al., ISCA 2024), Azure LLM inference trace 2023, "conversation":
    # median 1020 prompt tokens, 129 output tokens.
    "chat": Workload("chat", prompt=Lengths("lognormal", 1020, 1.0, 4, 32768),
                     output=Lengths("lognormal", 129, 1.0, 1, 4096),
                     source="Splitwise (Patel et al., ISCA 2024), Azure conversation trace: median 1020 "
                            "prompt / 129 output tokens (trace attribution verified, medians not: see docs/serving.md); "
                            "sigma 1.0 assumed"),
    # Splitwise, Azure trace "coding": median 1500 prompt tokens, 13 output tokens.
    "code": Workload("code", prompt=Lengths("lognormal", 1500, 0.8, 4, 32768),
                     output=Lengths("lognormal", 13, 1.0, 1, 2048),
                     source="Splitwise (Patel et al., ISCA 2024), Azure coding trace: median 1500 prompt / "
                            "13 output tokens (medians not verified: see docs/serving.md); sigma assumed"),
    # arXiv summarization (Cohan et al., NAACL 2018): articles 4,938 words, abstracts 220 words
    # on average; x1.3 tokens per word (assumption, Llama tokenizers on English prose), as
    # medians, capped at an 8K-token context.
    "summarization": Workload("summarization", prompt=Lengths("lognormal", 6400, 0.5, 256, 7900),
                              output=Lengths("lognormal", 290, 0.4, 16, 1024),
                              source="arXiv summarization (Cohan et al., NAACL 2018): 4,938-word articles, "
                                     "220-word abstracts (not verified: see docs/serving.md); 1.3 tokens/word and "
                                     "spreads assumed"),
    # ShareGPT as used by vLLM (Kwon et al., SOSP 2023): mean 161 input / 338 output tokens.
    "sharegpt": Workload("sharegpt", prompt=Lengths("lognormal", 161 / math.exp(0.5), 1.0, 4, 4096),
                         output=Lengths("lognormal", 338 / math.exp(0.5), 1.0, 1, 4096),
                         source="ShareGPT statistics in vLLM (Kwon et al., SOSP 2023): mean 161 input / "
                                "338 output tokens (not verified; vLLM's benchmark sample of 200 measures ~213 / "
                                "~214 with Llama-3's tokenizer, see docs/serving.md); sigma 1.0 assumed"),
}


def read_trace(path: str | Path) -> Workload:
    """A CSV trace with a header: ``arrival`` (s), ``prompt`` and ``output`` token counts, optional
    ``prefix`` and ``group`` (aliases ``arrival_s``/``timestamp``, ``prompt_tokens``/``input_tokens``,
    ``output_tokens``/``completion_tokens``)."""
    p = Path(path)
    aliases = {"arrival": ("arrival", "arrival_s", "arrival_time", "timestamp", "time"),
               "prompt": ("prompt", "prompt_tokens", "input_tokens", "context_tokens"),
               "output": ("output", "output_tokens", "completion_tokens", "generated_tokens"),
               "prefix": ("prefix", "prefix_tokens"), "group": ("group", "prefix_group")}
    try:
        with p.open(newline="") as f:
            reader = csv.DictReader(f)
            header = {h.strip().lower(): h for h in (reader.fieldnames or [])}
            cols = {k: next((header[a] for a in names if a in header), None) for k, names in aliases.items()}
            missing = [k for k in ("arrival", "prompt", "output") if cols[k] is None]
            if missing:
                raise WorkloadError(f"{p}: trace needs columns arrival, prompt, output (missing {', '.join(missing)})")
            rows: list[Request] = []
            for i, row in enumerate(reader):
                try:
                    t = float(row[cols["arrival"]])
                    pr, out = int(float(row[cols["prompt"]])), int(float(row[cols["output"]]))
                    pre = int(float(row[cols["prefix"]])) if cols["prefix"] and row[cols["prefix"]] else 0
                    grp = int(float(row[cols["group"]])) if cols["group"] and row[cols["group"]] else -1
                except (TypeError, ValueError):
                    raise WorkloadError(f"{p}:{i + 2}: expected numbers, got {dict(row)}") from None
                if not (math.isfinite(t) and t >= 0 and pr >= 1 and out >= 1 and 0 <= pre <= pr):
                    raise WorkloadError(f"{p}:{i + 2}: need arrival >= 0, prompt >= 1, output >= 1, "
                                        f"0 <= prefix <= prompt")
                rows.append(Request(i, t, pr, out, pre, grp if pre else -1))
    except OSError as e:
        raise WorkloadError(f"{p}: cannot read trace ({e.strerror or e})") from None
    except (UnicodeDecodeError, csv.Error) as e:
        raise WorkloadError(f"{p}: not a CSV trace ({e})") from None
    if not rows:
        raise WorkloadError(f"{p}: trace has no requests")
    rows.sort(key=lambda r: (r.arrival, r.id))
    t0 = rows[0].arrival
    trace = tuple(replace(r, id=i, arrival=r.arrival - t0) for i, r in enumerate(rows))
    span = trace[-1].arrival
    return Workload(p.stem, "trace", rate=(len(trace) - 1) / span if span > 0 else float("inf"),
                    trace=trace, source=str(p))


def get_workload(name: str | Workload, *, rate: float | None = None, arrival: str | None = None,
                 cv: float | None = None, users: int | None = None, think: float | None = None,
                 prompt: str | int | None = None, output: str | int | None = None,
                 shared_prefix: int | None = None, prefix_groups: int | None = None) -> Workload:
    """A named workload, a ``.csv`` trace, or a ``Workload``, with the given fields overridden."""
    if isinstance(name, Workload):
        w = name
    elif str(name).lower().endswith(".csv") or Path(str(name)).is_file():
        w = read_trace(name)
    elif str(name) in NAMED:
        w = NAMED[str(name)]
    elif str(name) in ("fixed", "custom"):
        w = Workload("custom")
    else:
        raise WorkloadError(f"unknown workload {name!r} (named: {', '.join(NAMED)}, custom; or a .csv trace)")
    changes: dict = {}
    if users is not None:
        if users < 1:
            raise WorkloadError(f"closed loop needs at least one user, got {users}")
        changes.update(arrival="closed", users=int(users))
    if arrival is not None:
        if arrival not in ("poisson", "gamma", "closed"):
            raise WorkloadError(f"unknown arrival process {arrival!r} (poisson, gamma, closed)")
        changes["arrival"] = arrival
    if rate is not None:
        if not (rate > 0 and math.isfinite(rate)):
            raise WorkloadError(f"--rate must be a positive number of requests/s, got {rate}")
        changes["rate"] = float(rate)
    for key, val in (("cv", cv), ("think", think)):
        if val is not None:
            if val < 0:
                raise WorkloadError(f"{key} must be >= 0, got {val}")
            changes[key] = float(val)
    if prompt is not None:
        changes["prompt"] = parse_lengths(prompt, "prompt lengths")
    if output is not None:
        changes["output"] = parse_lengths(output, "output lengths")
    if shared_prefix is not None:
        changes["shared_prefix"] = int(shared_prefix)
        changes["prefix_groups"] = int(prefix_groups or 1)
    elif prefix_groups is not None:
        changes["prefix_groups"] = int(prefix_groups)
    if w.arrival == "trace" and set(changes) - {"rate"}:
        raise WorkloadError(f"a trace fixes arrivals and lengths; cannot override {', '.join(sorted(changes))}")
    if w.arrival == "trace" and "rate" in changes:
        changes = {}   # the trace's own times rule (rate is reported, not imposed)
    if changes.get("arrival") == "closed" and not changes.get("users", w.users):
        raise WorkloadError("a closed loop needs --users N")
    return replace(w, **changes)
