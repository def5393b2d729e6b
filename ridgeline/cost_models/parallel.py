"""Tensor and pipeline parallelism, read off the graph: which node is split how, and where the
collectives go.

Tensor parallelism (Megatron-LM's scheme) is found by propagating a *sharding state* through the
graph, so it works on any transformer graph, preset or imported:

- ``R`` replicated: every device holds the whole tensor;
- ``S`` sharded: each device holds 1/tp of it (a slice of the hidden features or of the heads);
- ``P`` partial: each device holds a full-size partial sum that needs an all-reduce.

A MatMul against a weight is *column-parallel* when its input is ``R`` (output ``S``, weight
split along N) and *row-parallel* when its input is ``S`` (output ``P``, weight split along K);
``Attention`` on sharded Q/K/V splits its heads; element-wise ops follow their inputs; a
normalization needs ``R``. A ``P`` value is all-reduced before anything but a view reads it (the
two all-reduces per transformer layer); an embedding ``Gather`` is vocab-parallel (output ``P``);
sharded graph outputs other than the KV cache (logits) are all-gathered at the end.

Pipeline parallelism splits the layers (``node.meta["layer"]``, which presets set; else the
graph is cut by cumulative weight bytes) into contiguous stages; activations crossing a stage
boundary are sent point-to-point.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..ir import Graph, Node, Value
from ..ir.errors import TargetError
from .llm import llm_meta, model_name
from .work import FREE_CATEGORIES, node_label

__all__ = ["Shard", "Comm", "ParallelPlan", "TPAnalysis", "analyze_tensor_parallel", "plan_parallel", "check_degrees",
           "ParallelError"]

R, S, P = "R", "S", "P"


class ParallelError(TargetError):
    """Impossible parallel degrees for this graph or target."""


@dataclass(frozen=True)
class Shard:
    """How a node's work is split across the tensor-parallel group."""

    parts: int = 1                      # 1: replicated (every device does all of it)
    dim: str | None = None              # contraction dim split: "n" column, "k" row, "batch" heads
    in_factors: tuple[float, ...] = ()  # per input: fraction of its bytes each device touches
    out_factors: tuple[float, ...] = ()


@dataclass(frozen=True)
class Comm:
    """A collective or point-to-point transfer the plan inserts after a node."""

    kind: str          # "all_reduce", "all_gather", "send"
    bytes: float       # the full tensor's size (what one device contributes / receives)
    devices: int
    label: str
    layer: int | None = None


@dataclass
class ParallelPlan:
    tp: int = 1
    pp: int = 1
    shard: dict[int, Shard] = field(default_factory=dict)       # id(node) -> Shard
    after: dict[int, list[Comm]] = field(default_factory=dict)  # id(node) -> comms following it
    stage: dict[int, int] = field(default_factory=dict)         # id(node) -> pipeline stage
    const_sharded: dict[int, bool] = field(default_factory=dict)  # id(constant) -> split across tp
    kv_values: set[int] = field(default_factory=set)            # id(value) of KV-cache tensors
    layers: int = 0
    kv_heads: dict[int, int] = field(default_factory=dict)      # see TPAnalysis.kv_heads

    @property
    def devices(self) -> int:
        return self.tp * self.pp

    def shard_of(self, node: Node) -> Shard:
        return self.shard.get(id(node), _REPLICATED)

    def stage_of(self, node: Node) -> int:
        return self.stage.get(id(node), 0)


_REPLICATED = Shard()


def check_degrees(graph: Graph, tp: int, pp: int) -> None:
    """Reject degrees the graph cannot be split into (one clear line each)."""
    if not isinstance(tp, int) or not isinstance(pp, int) or tp < 1 or pp < 1:
        raise ParallelError(f"parallel degrees must be positive integers, got tp={tp!r} pp={pp!r}")
    meta = llm_meta(graph)
    heads, kv, layers = meta.get("heads"), meta.get("kv_heads"), meta.get("layers")
    name = model_name(graph)
    if tp > 1 and heads:
        if heads % tp or (kv and kv % tp and tp % kv):
            fit = [t for t in range(2, heads + 1) if not heads % t and (not kv or not kv % t or not t % kv)]
            what = (f"the {heads} attention heads" if heads % tp else
                    f"the {kv} KV heads (nor is it a multiple of them, which would replicate each KV head)")
            raise ParallelError(f"tp={tp} does not divide {what} of {name}; tp could be "
                                f"{', '.join(map(str, fit[:8])) or '1'}")
    n_layers = layers or _count_layers(graph)
    if pp > 1 and n_layers and pp > n_layers:
        raise ParallelError(f"pp={pp} exceeds the {n_layers} layers of {name}: each stage needs at least one layer")


def _count_layers(graph: Graph) -> int:
    top = -1
    for n in graph:
        l = n.meta.get("layer")
        if isinstance(l, int) and l > top:
            top = l
    return top + 1


@dataclass
class TPAnalysis:
    """The tensor-parallel split of a graph for any degree > 1 (the states do not depend on it)."""

    #: id(node) -> (contraction dim split, input states, output state, indices of sharded constants)
    decisions: dict[int, tuple[str | None, tuple[str, ...], str, frozenset]] = field(default_factory=dict)
    #: id(node) -> its KV-head count, for attention nodes and the K/V projections feeding them: when
    #: tp exceeds it each KV head is replicated on tp/kv ranks (vLLM, TensorRT-LLM do this)
    kv_heads: dict[int, int] = field(default_factory=dict)
    comms: list[tuple[Node, str, Value]] = field(default_factory=list)   # (after node, kind, tensor)
    const_sharded: dict[int, bool] = field(default_factory=dict)
    kv_values: set[int] = field(default_factory=set)
    layers: int = 0


def _is_attention(n: Node) -> bool:
    return n.op == "Attention" or (n.op == "Fused" and n.body is not None and any(b.op == "Attention" for b in n.body))


def analyze_tensor_parallel(graph: Graph) -> TPAnalysis:
    """Propagate sharding states through ``graph`` (see the module docstring)."""
    a = TPAnalysis(layers=llm_meta(graph).get("layers") or _count_layers(graph))
    for n in graph:
        if _is_attention(n):
            for i in (1, 2):
                if i < len(n.outputs):
                    a.kv_values.add(id(n.outputs[i]))
            for i in ((4, 5) if n.op == "Attention" else (3, 4)):
                if i < len(n.inputs) and n.inputs[i] is not None and not n.inputs[i].const:
                    a.kv_values.add(id(n.inputs[i]))
    state: dict[int, str] = {}
    reduced: set[int] = set()
    for n in graph:
        if _is_attention(n):
            hkv = _kv_heads_of(n)
            if hkv:
                a.kv_heads[id(n)] = hkv
                for i in (1, 2):
                    p = _projection_of(n.inputs[i] if i < len(n.inputs) else None)
                    if p is not None:
                        a.kv_heads[id(p)] = hkv
    for v in graph.inputs:
        if id(v) in a.kv_values:
            # a KV cache in memory is split by heads like the attention that reads it: each rank
            # holds (and reads) its own heads' share, as the memory plan counts it
            state[id(v)] = S

    def st(v: Value | None) -> str:
        return R if v is None else state.get(id(v), R)

    def all_reduce(v: Value) -> None:
        # a partial sum is reduced right after it is produced, once
        state[id(v)] = R
        if id(v) in reduced:
            return
        reduced.add(id(v))
        if v.producer is not None:
            a.comms.append((v.producer, "all_reduce", v))

    def all_gather(v: Value, at: Node) -> None:
        state[id(v)] = R
        a.comms.append((v.producer or at, "all_gather", v))

    for n in graph:
        cat = n.spec.category
        if cat in FREE_CATEGORIES:
            first = st(n.inputs[0]) if n.inputs else R
            for v in n.outputs:
                state[id(v)] = first
            continue
        for v in n.inputs:
            if v is not None and st(v) == P:
                all_reduce(v)
        ins = tuple(st(v) for v in n.inputs)
        decision = None
        weight_i = _weight_input(n)
        if n.op == "Gather" and n.inputs[0] is not None and n.inputs[0].const:
            # vocab-parallel embedding: each device looks up its slice of the vocabulary
            a.const_sharded[id(n.inputs[0])] = True
            out_state = P
            decision = (None, ins, P, frozenset({0}))
        elif weight_i is not None:
            out_state, dim = (P, "k") if ins[0] == S else (S, "n")   # row- / column-parallel
            consts = {i for i, v in enumerate(n.inputs) if v is not None and v.const}
            split = frozenset(i for i in consts if dim == "n" or i == weight_i)  # a row-parallel bias is whole
            for i in consts:
                a.const_sharded[id(n.inputs[i])] = i in split
            decision = (dim, ins, out_state, split)
        elif cat == "normalization":
            for v in n.inputs:
                if v is not None and st(v) == S:
                    all_gather(v, n)
            out_state = R
        elif S in ins:
            if cat == "matmul" and ins[0] != ins[1]:
                # activation × activation with one side replicated: gather the sharded side
                for v in n.inputs[:2]:
                    if v is not None and st(v) == S:
                        all_gather(v, n)
                out_state = R
            else:
                out_state = S
                dim = "batch" if (n.op == "Attention" or cat in ("matmul", "fused")) else None
                decision = (dim, ins, S, frozenset())
        else:
            out_state = R
        for v in n.outputs:
            state[id(v)] = out_state
        if decision is not None:
            a.decisions[id(n)] = decision
    for v in graph.outputs:
        s = st(v)
        if s == P:
            all_reduce(v)
        elif s == S and id(v) not in a.kv_values and v.producer is not None:
            all_gather(v, v.producer)
    return a


def plan_parallel(graph: Graph, tp: int = 1, pp: int = 1, analysis: TPAnalysis | None = None) -> ParallelPlan:
    """The split of ``graph`` over ``tp`` × ``pp`` devices (see the module docstring).

    ``analysis`` (from ``analyze_tensor_parallel``) may be passed to reuse it across degrees.
    """
    check_degrees(graph, tp, pp)
    a = analysis or analyze_tensor_parallel(graph)
    plan = ParallelPlan(tp, pp, const_sharded=a.const_sharded, kv_values=a.kv_values, layers=a.layers,
                        kv_heads=a.kv_heads)
    if tp > 1:
        checked: set = set()
        interned: dict[Shard, Shard] = {}
        for n in graph:
            d = a.decisions.get(id(n))
            if d is None:
                continue
            dim, ins, out_state, consts = d
            hkv = a.kv_heads.get(id(n), tp)
            kv_parts = min(tp, hkv)      # ranks holding distinct KV heads (the rest replicate them)
            in_f = tuple((1.0 / tp if i in consts else 1.0) if (v is not None and v.const)
                         else (1.0 / tp if ins[i] == S else 1.0) for i, v in enumerate(n.inputs))
            out_f = tuple((1.0 / tp if out_state == S else 1.0) for _ in n.outputs)
            parts = tp
            if kv_parts < tp:
                if _is_attention(n):     # K, V and the cache are one head per rank; Q and O stay split by tp
                    kv_in = {1, 2} | {i for i, v in enumerate(n.inputs) if v is not None and id(v) in a.kv_values}
                    in_f = tuple(f * tp / kv_parts if i in kv_in and f < 1 else f for i, f in enumerate(in_f))
                    out_f = tuple(f * tp / kv_parts if 0 < i < 3 and f < 1 else f for i, f in enumerate(out_f))
                else:                    # a K/V projection: each rank computes its replicated head
                    parts = kv_parts
                    in_f = tuple(f * tp / kv_parts if f < 1 else f for f in in_f)
                    out_f = tuple(f * tp / kv_parts if f < 1 else f for f in out_f)
            shard = Shard(parts, dim, in_f, out_f)
            shard = interned.setdefault(shard, shard)
            plan.shard[id(n)] = shard
            key = (n.op, tuple(v.type if v is not None else None for v in n.inputs), dim)
            if key not in checked:
                checked.add(key)
                _check_divisible(n, shard, tp)
        for node, kind, v in a.comms:
            plan.after.setdefault(id(node), []).append(
                Comm(kind, _bytes(v), tp, f"{kind.replace('_', '-')} %{v.name}", node.meta.get("layer")))
    _pipeline(graph, plan)
    return plan


def _weight_input(n: Node) -> int | None:
    """The input holding a weight matrix that a tensor-parallel split would cut, if any."""
    if n.spec.category == "matmul":
        from .work import _operands
        ops = _operands(n)
        if ops is not None and n.inputs[ops[1]].const and n.inputs[ops[1]].type.rank >= 2:
            return ops[1]
        return None
    if n.op == "Fused" and n.body is not None:
        from .work import shared_work
        for c in shared_work(n).contractions:
            if c.b_weight:
                consts = [i for i, v in enumerate(n.inputs) if v is not None and v.const and v.type.rank >= 2]
                if consts:
                    # the largest constant is the weight matrix
                    return max(consts, key=lambda i: _bytes(n.inputs[i]))
    return None


def _check_divisible(n: Node, shard: Shard, tp: int) -> None:
    if n.op == "Attention":
        from ..ir.ops.attention import node_attention_dims
        _, hq, _, _, hkv, _, _, _ = node_attention_dims(n)
        for what, h in (("query", hq), ("KV", hkv)):
            if isinstance(h, int) and h % tp and (what == "query" or tp % h):
                raise ParallelError(f"tp={tp} does not divide the {h} {what} heads of Attention %{node_label(n)}")
        return
    if shard.dim in ("n", "k"):
        from .work import shared_work
        for c in shared_work(n).contractions:
            size = getattr(c, shard.dim)
            if c.b_weight and size % shard.parts:
                kind = "column" if shard.dim == "n" else "row"
                raise ParallelError(f"tp={tp} does not divide dim {shard.dim}={size} of {n.op} %{node_label(n)} "
                                    f"({kind}-parallel)")


def _kv_heads_of(n: Node) -> int | None:
    att = n if n.op == "Attention" else next((b for b in n.body if b.op == "Attention"), None)
    if att is None:
        return None
    h = att.attr("kv_num_heads")
    if isinstance(h, int) and h > 0:
        return h
    k = att.inputs[1].type.shape if len(att.inputs) > 1 and att.inputs[1] is not None else ()
    return k[1] if len(k) == 4 and isinstance(k[1], int) else None


def _projection_of(v: Value | None) -> Node | None:
    """The weight MatMul a K/V operand comes from, through views and element-wise ops (RoPE)."""
    for _ in range(16):
        if v is None or v.producer is None:
            return None
        p = v.producer
        if _weight_input(p) is not None:
            return p
        if p.spec.category in ("matmul", "attention", "normalization"):
            return None
        v = next((x for x in p.inputs if x is not None and not x.const), None)
    return None


def _bytes(v: Value) -> float:
    n = v.type.numel
    return float(v.type.dtype.nbytes(n)) if isinstance(n, int) else 0.0


# --------------------------------------------------------------------------- pipeline parallel
def _pipeline(graph: Graph, plan: ParallelPlan) -> None:
    pp = plan.pp
    nodes = graph.nodes
    layers = plan.layers
    if layers:
        first = next((i for i, n in enumerate(nodes) if isinstance(n.meta.get("layer"), int)), 0)
        for i, n in enumerate(nodes):
            l = n.meta.get("layer")
            if isinstance(l, int):
                s = min(pp - 1, l * pp // layers)
            else:
                s = 0 if i < first else pp - 1
            plan.stage[id(n)] = s
    else:
        total = sum(_bytes(v) for v in graph.constants.values()) or 1.0
        cum = 0.0
        for n in nodes:
            plan.stage[id(n)] = min(pp - 1, int(cum / total * pp))
            cum += sum(_bytes(v) for v in n.inputs if v is not None and v.const)
    if pp == 1:
        return
    for n in nodes:
        s = plan.stage[id(n)]
        for v in n.outputs:
            later = {plan.stage.get(id(u), s) for u, _ in v.uses}
            for t in sorted(x for x in later if x > s):
                plan.after.setdefault(id(n), []).append(
                    Comm("send", _bytes(v) * _shard_fraction(plan, n), 2, f"send %{v.name} to stage {t}",
                         n.meta.get("layer")))


def _shard_fraction(plan: ParallelPlan, n: Node) -> float:
    sh = plan.shard.get(id(n))
    return sh.out_factors[0] if sh and sh.out_factors else 1.0
