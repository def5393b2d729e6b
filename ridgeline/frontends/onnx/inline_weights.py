"""Inline weights of a serialized ONNX model located without parsing them.

An ``.onnx`` file with its weights inside (no external data) is mostly the ``raw_data`` of its
initializers. Parsing it with protobuf copies every byte twice (the file into memory, the message
out of it), and reading ``raw_data`` from Python copies it again. ``split_inline_weights`` walks
the protobuf wire format of the memory-mapped file instead: it finds each large
``ModelProto.graph.initializer[*].raw_data`` field, records where its bytes lie in the file, and
returns the model's bytes without them (a few MB for a 500 MB model) for protobuf to parse. The
importer then maps each weight as a ``LazyTensor`` over the file, exactly as it maps external data.

Anything unexpected (a malformed varint, a group, a length running past its message, a tensor named
twice) returns None and the caller parses the whole file as before, so its error messages stay
the ones users see.
"""

from __future__ import annotations

__all__ = ["MIN_SPLIT_BYTES", "split_inline_weights"]

#: ``raw_data`` fields at least this long are left in the file; smaller ones (shape constants,
#: norms' small vectors) are parsed as usual. Equal to the importer's shape-inference cutoff so
#: that every weight left out here is also left out of onnx's shape inference.
MIN_SPLIT_BYTES = 1 << 16

# field numbers in onnx.proto (ModelProto.graph = 7, GraphProto.initializer = 5,
# TensorProto.name = 8, TensorProto.raw_data = 9)
_MODEL_GRAPH, _GRAPH_INITIALIZER, _TENSOR_NAME, _TENSOR_RAW = 7, 5, 8, 9
_LEN, _VARINT, _I64, _I32 = 2, 0, 1, 5


class _Malformed(Exception):
    pass


def _varint(buf, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise _Malformed
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def _encode_varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _fields(buf, pos: int, end: int):
    """(field number, wire type, start of the field, end of its tag, start of its payload, end)."""
    while pos < end:
        start = pos
        key, pos = _varint(buf, pos, end)
        tag_end = pos
        field, wire = key >> 3, key & 7
        if field == 0:
            raise _Malformed
        if wire == _VARINT:
            _, pos2 = _varint(buf, pos, end)
        elif wire == _LEN:
            n, pos = _varint(buf, pos, end)
            pos2 = pos + n
        elif wire == _I64:
            pos2 = pos + 8
        elif wire == _I32:
            pos2 = pos + 4
        else:  # groups (3, 4) and reserved wire types: not in ONNX files
            raise _Malformed
        if pos2 > end:
            raise _Malformed
        yield field, wire, start, tag_end, pos, pos2
        pos = pos2


def _tensor(buf, start: int, end: int, found: dict) -> bytes | None:
    """The TensorProto at ``buf[start:end]`` without a large raw_data (its place recorded in
    ``found`` by name), or None when it keeps its bytes."""
    name, raw, raws = None, None, 0
    for field, wire, s, _, p, q in _fields(buf, start, end):
        if field == _TENSOR_NAME and wire == _LEN:
            name = bytes(buf[p:q])
        elif field == _TENSOR_RAW and wire == _LEN:
            raws += 1
            raw = (s, p, q)
    if raw is None or raw[2] - raw[1] < MIN_SPLIT_BYTES:
        return None
    if raws != 1 or name is None:
        raise _Malformed
    try:
        key = name.decode("utf-8")
    except UnicodeDecodeError:
        raise _Malformed from None
    if key in found:
        raise _Malformed
    found[key] = (raw[1], raw[2] - raw[1])
    return bytes(buf[start:raw[0]]) + bytes(buf[raw[2]:end])  # every field but raw_data


def _rewrite(buf, start: int, end: int, wanted: int, rewrite) -> bytes:
    """``buf[start:end]`` with each length-delimited field ``wanted`` replaced by
    ``rewrite(payload start, payload end)`` (None keeps it as it is)."""
    out = bytearray()
    keep = start
    for field, wire, _, t, p, q in _fields(buf, start, end):
        if field != wanted or wire != _LEN:
            continue
        new = rewrite(p, q)
        if new is None:
            continue
        out += buf[keep:t]
        out += _encode_varint(len(new))
        out += new
        keep = q
    out += buf[keep:end]
    return bytes(out)


def split_inline_weights(buf) -> tuple[bytes, dict[str, tuple[int, int]]] | None:
    """``(model bytes without the large initializer raw_data, {initializer name: (offset, length)
    of its raw_data in buf})``, or None when the file has none or anything is not as expected.

    ``buf`` is the file's bytes (an ``mmap`` or ``bytes``); nothing in it is copied but the rest.
    """
    found: dict[str, tuple[int, int]] = {}
    try:
        out = _rewrite(buf, 0, len(buf), _MODEL_GRAPH,
                       lambda p, q: _rewrite(buf, p, q, _GRAPH_INITIALIZER,
                                             lambda p2, q2: _tensor(buf, p2, q2, found)))
    except _Malformed:
        return None
    return (out, found) if found else None
