"""onnxruntime's ``com.microsoft.MatMulNBits``: int4/int8 GEMMs with packed block-quantized weights.

Layout (onnxruntime docs/ContribOperators.md, ``MatMulNBits``; checked against the files
``onnxruntime.quantization.matmul_nbits_quantizer`` writes): ``Y = A · dequantize(B)ᵀ`` with

* ``B``: uint8 ``[N, n_blocks, blob]``, ``n_blocks = ceil(K / block_size)``, ``blob =
  block_size · bits / 8``; the codes of output channel n along K, two 4-bit codes per byte, the
  first in the low nibble; the last block padded with code 0;
* ``scales``: ``[N, n_blocks]`` (or flat ``N · n_blocks``), the activation's float type;
* ``zero_points`` (optional): uint8 ``[N, ceil(n_blocks · bits / 8)]``, packed as ``B`` (4-bit:
  two per byte, a row padded to whole bytes); absent means ``2^(bits-1)`` (symmetric);
* attributes ``K``, ``N``, ``bits`` (4 or 8), ``block_size`` (a power of two ≥ 16).

``save_matmul_nbits`` writes ridgeline's weight-only ``dequant-matmul`` kernels (blocked along K,
``int4-g*``/``int4-zp-g*``/``int8-g*`` schemes with a power-of-two group ≥ 16) as this op;
``expand_matmul_nbits`` turns the op back into blocked ``DequantizeLinear`` + ``MatMul`` (the
importer runs it), so ridgeline's numpy reference computes what onnxruntime computes.
"""

from __future__ import annotations

import os

import numpy as np
import onnx
import onnx.inliner
from onnx import helper, numpy_helper

from ...ir import Graph
from ...ir.errors import ModelError

__all__ = ["MS_DOMAIN", "expand_matmul_nbits", "matmul_nbits_reference", "pack_codes", "save_matmul_nbits",
           "to_matmul_nbits", "unpack_codes"]

MS_DOMAIN = "com.microsoft"
_UNSIGNED = {"i4": ("u4", 8, 4), "u4": ("u4", 0, 4), "i8": ("u8", 128, 8), "u8": ("u8", 0, 8)}


def pack_codes(codes: np.ndarray, bits: int) -> np.ndarray:
    """Unsigned codes ``[..., L]`` packed along the last axis (4-bit: two per byte, low nibble
    first; an odd row padded with 0)."""
    c = np.asarray(codes).astype(np.uint8)
    if bits == 8:
        return c
    if c.shape[-1] % 2:
        c = np.concatenate([c, np.zeros(c.shape[:-1] + (1,), np.uint8)], axis=-1)
    return (c[..., 0::2] & 0x0F) | ((c[..., 1::2] & 0x0F) << 4)


def unpack_codes(packed: np.ndarray, bits: int) -> np.ndarray:
    """Inverse of ``pack_codes`` (the padding kept: trim to the length wanted)."""
    p = np.asarray(packed, np.uint8)
    if bits == 8:
        return p
    out = np.empty(p.shape[:-1] + (p.shape[-1] * 2,), np.uint8)
    out[..., 0::2] = p & 0x0F
    out[..., 1::2] = p >> 4
    return out


def matmul_nbits_reference(a: np.ndarray, b: np.ndarray, scales: np.ndarray, zero_points: np.ndarray | None,
                           *, K: int, N: int, bits: int, block_size: int) -> np.ndarray:
    """The op's value, in numpy (float64 accumulation, cast to ``a``'s dtype)."""
    return (np.asarray(a, np.float64) @ _dequantized(b, scales, zero_points, K, N, bits, block_size)).astype(a.dtype)


def _dequantized(b, scales, zero_points, k: int, n: int, bits: int, block: int) -> np.ndarray:
    """The float weight ``[K, N]`` a MatMulNBits stands for."""
    nb = -(-k // block)
    q = unpack_codes(np.asarray(b).reshape(n, nb, -1), bits).reshape(n, -1)[:, :k].astype(np.float64)
    s = np.asarray(scales, np.float64).reshape(n, nb)
    z = _zero_points(zero_points, n, nb, bits)
    g = np.arange(k) // block
    return ((q - z[:, g]) * s[:, g]).T


def _zero_points(zero_points, n: int, nb: int, bits: int) -> np.ndarray:
    if zero_points is None:
        return np.full((n, nb), float(1 << (bits - 1)))
    z = np.asarray(zero_points)
    if z.dtype != np.uint8:                     # float zero points: x = (q - z) · s as well
        return z.astype(np.float64).reshape(n, nb)
    return unpack_codes(z.reshape(n, -1), bits)[:, :nb].astype(np.float64)


# --------------------------------------------------------------------------- writing
def _weight_form(dq: onnx.NodeProto, inits: dict):
    """(codes K×N unsigned, scales G×N, zero points G×N or None, bits, block) of a blocked
    ``DequantizeLinear`` of a stored 2-D int4/int8 weight along K, or a reason it is not one."""
    a = {x.name: helper.get_attribute_value(x) for x in dq.attribute}
    if any(i not in inits for i in dq.input if i):
        return "its weight, scales or zero points are not stored constants"
    q = numpy_helper.to_array(inits[dq.input[0]])
    dt = {onnx.TensorProto.INT4: "i4", onnx.TensorProto.UINT4: "u4", onnx.TensorProto.INT8: "i8",
          onnx.TensorProto.UINT8: "u8"}.get(inits[dq.input[0]].data_type)
    block = int(a.get("block_size", 0))
    if dt is None or q.ndim != 2 or int(a.get("axis", 1)) % 2 != 0 or not block:
        return "its weight is not int4/int8 blocked along K (per channel, per tensor, float8 or NF4)"
    if block < 16 or block & (block - 1):
        return f"group {block} is not a power of two >= 16 (MatMulNBits' block_size)"
    _, offset, bits = _UNSIGNED[dt]
    codes = q.astype(np.int64) + offset
    sc = numpy_helper.to_array(inits[dq.input[1]])
    z = None
    if len(dq.input) > 2 and dq.input[2]:
        z = numpy_helper.to_array(inits[dq.input[2]]).astype(np.int64) + offset
        if np.all(z == (1 << (bits - 1))):
            z = None                      # the op's default zero point
    elif not offset:
        z = np.zeros(sc.shape, np.int64)
    return codes, sc, z, bits, block


def to_matmul_nbits(graph: Graph, *, opset: int | None = None) -> tuple[onnx.ModelProto, list[str]]:
    """The ONNX model of ``graph`` with each int4/int8 blocked weight-only GEMM written as
    ``com.microsoft.MatMulNBits`` (its epilogue — bias, residual, activation — as the plain ops
    after it; the rest as ``save_onnx`` writes it); and why GEMMs were kept as they were."""
    from .exporter import RIDGELINE_DOMAIN, to_onnx
    m = to_onnx(graph, opset=opset)
    kernels = [(f.domain, f.name) for f in m.functions
               if f.domain == RIDGELINE_DOMAIN and f.name.startswith("dequant_matmul")]
    if not kernels:
        return m, []
    m = onnx.inliner.inline_selected_functions(m, kernels)
    inits = {i.name: i for i in m.graph.initializer}
    users: dict[str, list] = {}
    for node in m.graph.node:
        for i in node.input:
            users.setdefault(i, []).append(node)
    notes, replace, drop = [], {}, set()
    producer = {o: nd for nd in m.graph.node for o in nd.output}
    for node in m.graph.node:
        if node.op_type != "DequantizeLinear" or node.domain not in ("", "ai.onnx"):
            continue
        use = users.get(node.output[0], [])
        offset = _offset_of(node, use, users, producer, inits) if len(use) == 1 and use[0].op_type == "Add" else None
        if offset is not None:          # -asym: DequantizeLinear + Gather(m, k // block) → Add → MatMul
            add, gather, m_off = offset
            use = users.get(add.output[0], [])
        elif len(use) == 1 and use[0].op_type == "Add":
            after = users.get(use[0].output[0], [])
            if len(after) == 1 and after[0].op_type == "MatMul":
                notes.append(f"%{after[0].output[0]}: kept as DequantizeLinear+Add+MatMul: its float offset is "
                             f"not one per block along K (per channel)")
            continue
        if len(use) != 1 or use[0].op_type != "MatMul" or list(use[0].input).index(
                (add if offset is not None else node).output[0]) != 1:
            continue
        form = _weight_form(node, inits)
        if isinstance(form, str):
            notes.append(f"%{use[0].output[0]}: kept as DequantizeLinear+MatMul: {form}")
            continue
        codes, sc, z, bits, block = form
        if offset is not None:
            if bits != 4:     # onnxruntime 1.32's CPU kernel refuses 8-bit codes with float zero points
                notes.append(f"%{use[0].output[0]}: kept as DequantizeLinear+Add+MatMul: onnxruntime's CPU "
                             f"MatMulNBits takes float zero points for 4-bit weights only")
                continue
            if m_off.shape != sc.shape:
                notes.append(f"%{use[0].output[0]}: kept as DequantizeLinear+MatMul: the offset is not one per block")
                continue
            # (q − z)·s + m = (q − z')·s with the float zero point z' = z − m/s (the op's T1 zero points)
            z = (np.zeros(sc.shape) if z is None else z) - m_off.astype(np.float64) / sc.astype(np.float64)
            drop.update((id(add), id(gather)))
            cn = producer.get(gather.input[1])
            if cn is not None and cn.op_type == "Constant" and len(users.get(gather.input[1], [])) == 1:
                drop.add(id(cn))
        k, n = codes.shape
        nb = -(-k // block)
        padded = np.zeros((nb * block, n), np.int64)
        padded[:k] = codes
        base = use[0].output[0]
        ins = [use[0].input[0], f"{base}.nbits_B", f"{base}.nbits_scales"]
        new = [numpy_helper.from_array(pack_codes(padded.T.reshape(n, nb, block), bits), ins[1]),
               numpy_helper.from_array(np.ascontiguousarray(sc.T), ins[2])]
        if z is not None:
            ins.append(f"{base}.nbits_zero_points")
            zt = (np.ascontiguousarray(z.T).astype(sc.dtype) if offset is not None    # unpacked, A's type
                  else pack_codes(z.T, bits))
            new.append(numpy_helper.from_array(zt, ins[3]))
        replace[id(use[0])] = (helper.make_node("MatMulNBits", ins, list(use[0].output), domain=MS_DOMAIN,
                                                K=k, N=n, bits=bits, block_size=block), new)
        drop.add(id(node))
    nodes, added = [], []
    for node in m.graph.node:
        if id(node) in drop:
            continue
        r = replace.get(id(node))
        nodes.append(node if r is None else r[0])
        if r is not None:
            added += r[1]
    del m.graph.node[:]
    m.graph.node.extend(nodes)
    read = {i for nd in nodes for i in nd.input} | {i for f in m.functions for nd in f.node for i in nd.input}
    keep = [i for i in m.graph.initializer if i.name in read]
    del m.graph.initializer[:]
    m.graph.initializer.extend(keep + added)
    if replace and not any(o.domain == MS_DOMAIN for o in m.opset_import):
        m.opset_import.append(helper.make_opsetid(MS_DOMAIN, 1))
    return m, notes


def _offset_of(dq: onnx.NodeProto, use: list, users: dict, producer: dict, inits: dict):
    """(the Add, the Gather, the offset G × N) when ``dq`` feeds ``Add(dq, Gather(m, k // block,
    axis=0))`` — the ``-asym`` schemes' float offset — else None."""
    add = use[0]
    other = [i for i in add.input if i != dq.output[0]]
    g = producer.get(other[0]) if len(other) == 1 else None
    if g is None or g.op_type != "Gather" or len(users.get(g.output[0], [])) != 1 or g.input[0] not in inits:
        return None
    axis = next((helper.get_attribute_value(x) for x in g.attribute if x.name == "axis"), 0)
    a = {x.name: helper.get_attribute_value(x) for x in dq.attribute}
    block = int(a.get("block_size", 0))
    idx = _constant(g.input[1], producer, inits)
    q = inits.get(dq.input[0])
    if axis != 0 or idx is None or q is None or not block:
        return None
    k = q.dims[0]
    if idx.shape != (k,) or np.any(idx != np.arange(k) // block):
        return None
    return add, g, numpy_helper.to_array(inits[g.input[0]])


def _constant(name: str, producer: dict, inits: dict) -> np.ndarray | None:
    if name in inits:
        return numpy_helper.to_array(inits[name])
    c = producer.get(name)
    if c is not None and c.op_type == "Constant":
        v = next((x for x in c.attribute if x.name == "value"), None)
        return numpy_helper.to_array(v.t) if v is not None else None
    return None


def save_matmul_nbits(graph: Graph, path: str | os.PathLike, *, opset: int | None = None) -> list[str]:
    """Write ``graph`` to ``path`` with MatMulNBits GEMMs (see ``to_matmul_nbits``); returns the
    notes on GEMMs kept in the standard form."""
    from ...ir.safe_files import write_atomic
    m, notes = to_matmul_nbits(graph, opset=opset)
    write_atomic(path, m.SerializeToString())
    return notes


# --------------------------------------------------------------------------- reading
def expand_matmul_nbits(proto: onnx.ModelProto) -> onnx.ModelProto:
    """``proto`` with every ``com.microsoft.MatMulNBits`` node (constant B, scales, zero points)
    rewritten as blocked ``DequantizeLinear`` (u4/u8 codes, zero points) + ``MatMul`` [+ ``Add``
    of the bias], in a copy (the caller's proto is left alone); a form it cannot read is a
    one-line ``ModelError``."""
    if not any(n.domain == MS_DOMAIN and n.op_type == "MatMulNBits" for n in proto.graph.node):
        return proto
    src, proto = proto, onnx.ModelProto()
    proto.CopyFrom(src)
    inits = {i.name: i for i in proto.graph.initializer}
    out = []
    for n in proto.graph.node:
        if not (n.domain == MS_DOMAIN and n.op_type == "MatMulNBits"):
            out.append(n)
            continue
        out += _expand_one(n, inits, proto.graph)
    del proto.graph.node[:]
    proto.graph.node.extend(out)
    return proto


def _expand_one(n: onnx.NodeProto, inits: dict, graph: onnx.GraphProto) -> list[onnx.NodeProto]:
    where = f"MatMulNBits node {n.name or n.output[0]!r}"
    a = {x.name: helper.get_attribute_value(x) for x in n.attribute}
    try:
        k, nn, bits, block = int(a["K"]), int(a["N"]), int(a.get("bits", 4)), int(a["block_size"])
    except KeyError as e:
        raise ModelError(f"{where}: attribute {e.args[0]} is missing") from None
    if bits not in (4, 8) or k < 1 or nn < 1 or block < 16 or block & (block - 1):
        raise ModelError(f"{where}: bits={bits}, K={k}, N={nn}, block_size={block}: ridgeline reads bits 4 or 8, "
                         f"a power-of-two block_size >= 16")
    if len(n.input) > 4 and n.input[4]:
        raise ModelError(f"{where}: g_idx (act-order group indices) is not supported; export with static groups")
    arrays = []
    for i in (1, 2, 3):
        name = n.input[i] if len(n.input) > i else ""
        if name and name not in inits:
            raise ModelError(f"{where}: input {name!r} must be an initializer")
        arrays.append(numpy_helper.to_array(inits[name]) if name else None)
    b, s, z = arrays
    nb = -(-k // block)
    if b.dtype != np.uint8 or b.size != nn * nb * block * bits // 8 or s.size != nn * nb:
        raise ModelError(f"{where}: B {b.dtype}{list(b.shape)} / scales {list(s.shape)} do not fit K={k}, N={nn}, "
                         f"block_size={block}, bits={bits}")
    q = unpack_codes(b.reshape(nn, nb, -1), bits).reshape(nn, -1)[:, :k].T      # K × N codes
    zp = _zero_points(z, nn, nb, bits).T                                          # groups × N
    udt = onnx.TensorProto.UINT4 if bits == 4 else onnx.TensorProto.UINT8
    base = n.output[0]
    qn, sn, zn, wn = (f"{base}.expanded_{x}" for x in ("codes", "scales", "zero_points", "weight"))
    sg = np.ascontiguousarray(s.reshape(nn, nb).T)
    graph.initializer.extend([helper.make_tensor(qn, udt, list(q.shape), q.astype(np.uint8).flatten().tolist()),
                              numpy_helper.from_array(sg, sn)])
    if z is not None and z.dtype != np.uint8:
        # float zero points: (q − z)·s = DequantizeLinear(q, s) + m with m = −z·s per block (ridgeline's -asym)
        mn, gn, dn = f"{base}.expanded_offset", f"{base}.expanded_group_index", f"{base}.expanded_codes_times_scale"
        graph.initializer.extend([
            numpy_helper.from_array((-zp * sg.astype(np.float64)).astype(sg.dtype), mn),
            numpy_helper.from_array(np.arange(k, dtype=np.int64) // block, gn)])
        nodes = [helper.make_node("DequantizeLinear", [qn, sn], [dn], axis=0, block_size=block),
                 helper.make_node("Gather", [mn, gn], [f"{mn}.per_row"], axis=0),
                 helper.make_node("Add", [dn, f"{mn}.per_row"], [wn])]
    else:
        graph.initializer.append(helper.make_tensor(zn, udt, list(zp.shape), zp.astype(np.uint8).flatten().tolist()))
        nodes = [helper.make_node("DequantizeLinear", [qn, sn, zn], [wn], axis=0, block_size=block)]
    bias = n.input[5] if len(n.input) > 5 and n.input[5] else None
    mm_out = f"{base}.expanded_product" if bias else base
    nodes.append(helper.make_node("MatMul", [n.input[0], wn], [mm_out]))
    if bias:
        nodes.append(helper.make_node("Add", [mm_out, bias], [base]))
    return nodes
