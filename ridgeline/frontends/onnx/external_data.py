"""Every ONNX tensor (initializer or attribute) to numpy, without trusting the file.

A tensor stored outside the model names a ``location``; it is read only through the file-access
policy of ``ir.safe_files`` (relative, inside the model's folder after symlinks, a regular file,
exactly the declared size). onnx's ``numpy_helper.to_array`` is only ever handed tensors whose
data is inline: on external data it would resolve the location against the working directory.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from ...ir.dtypes import from_onnx
from ...ir.errors import IRError, ModelError
from ...ir.safe_files import map_inside, read_inside
from ...ir.storage import LazyTensor

__all__ = ["MAX_DIM", "MAX_ELEMENTS", "InlineWeights", "load_external_tensor", "tensor_to_array", "uses_external_data"]

#: no real tensor has a dim above 2^40 (10^12) or more than 2^48 elements (1 PB of f32); a file
#: that declares one is refused before anything could try to allocate it
MAX_DIM, MAX_ELEMENTS = 2 ** 40, 2 ** 48


def uses_external_data(t: onnx.TensorProto) -> bool:
    return (t.HasField("data_location") and t.data_location == onnx.TensorProto.EXTERNAL) or len(t.external_data) > 0


def _declared(t: onnx.TensorProto, where: str):
    try:
        dt = from_onnx(t.data_type)
    except IRError as e:
        raise ModelError(f"{where}: {e}") from None
    shape = tuple(int(d) for d in t.dims)
    if any(d < 0 for d in shape):
        raise ModelError(f"{where}: negative dimension in {list(shape)[:8]}")
    if len(shape) > 64:
        raise ModelError(f"{where}: rank {len(shape)} is beyond any real tensor")
    numel = math.prod(shape)  # Python ints: np.prod would wrap around on absurd dims
    if numel > MAX_ELEMENTS or any(d > MAX_DIM for d in shape):
        raise ModelError(f"{where}: dims {list(shape)[:8]} declare {numel:.3g} elements, beyond any real tensor")
    return dt, shape, numel


def load_external_tensor(t: onnx.TensorProto, base_dir: Path | None, where: str | None = None, *,
                         maps: dict | None = None) -> np.ndarray | LazyTensor:
    """The array of a tensor whose data is in a file beside the model (``ModelError`` otherwise).

    With ``maps`` (one dict per model: a mapping per file), a byte-aligned tensor comes back as a
    ``LazyTensor`` over a read-only memory map: checked now, read when first used, never copied.
    """
    where = where or f"initializer {t.name or '?'!r}"
    info = {e.key: e.value for e in t.external_data}
    location = info.get("location")
    if not location:
        raise ModelError(f"{where} uses external data but names no location")
    if base_dir is None:
        raise ModelError(f"{where} uses external data {location!r}, but the model was not "
                         f"loaded from a file; load it by path")
    dt, shape, numel = _declared(t, where)
    need = dt.nbytes(numel)
    try:
        offset = int(info.get("offset", 0))
        length = int(info["length"]) if "length" in info else None
    except ValueError:
        raise ModelError(f"{where}: external data offset/length are not integers") from None
    if maps is not None and dt.bits % 8 == 0 and sys.byteorder == "little" and dt.np_dtype.kind != "O":
        view = map_inside(base_dir, location, offset, length, need, f"{where}: external data", maps)
        np_dtype = dt.np_dtype
        return LazyTensor(shape, np_dtype, lambda: np.frombuffer(view, dtype=np_dtype).reshape(shape),
                          source=f"{location} @ {offset}")
    raw = read_inside(base_dir, location, offset, length, need, f"{where}: external data")
    # Rebuild the tensor with raw_data so onnx's own decoding (packing of int4, endianness) applies.
    tmp = onnx.TensorProto()
    tmp.CopyFrom(t)
    del tmp.external_data[:]
    tmp.data_location = onnx.TensorProto.DEFAULT
    tmp.raw_data = raw
    return numpy_helper.to_array(tmp)


@dataclass
class InlineWeights:
    """Initializer bytes left in the read-only mapping of the model file by
    ``inline_weights.split_inline_weights``: ``places[name] = (offset, length)`` in ``whole``."""
    whole: object  # the file's mmap
    places: dict[str, tuple[int, int]]
    source: str    # the file's name, for messages


def _inline_tensor(t: onnx.TensorProto, inline: InlineWeights, where: str) -> np.ndarray | LazyTensor:
    """An initializer whose ``raw_data`` stayed in the mapped model file, checked as inline
    bytes are: a ``LazyTensor`` over the mapping (copied on first use only if misaligned)."""
    dt, shape, numel = _declared(t, where)
    offset, length = inline.places[t.name]
    if length != dt.nbytes(numel):
        raise ModelError(f"{where}: holds {length} bytes, its dims {list(t.dims)} of {dt} need {dt.nbytes(numel)}")
    view = memoryview(inline.whole)[offset:offset + length]
    np_dtype = dt.np_dtype
    if dt.bits % 8 or sys.byteorder != "little" or np_dtype.kind == "O":
        tmp = onnx.TensorProto()  # sub-byte or big-endian: onnx's own decoding, as for any raw_data
        tmp.CopyFrom(t)
        tmp.raw_data = bytes(view)
        return numpy_helper.to_array(tmp)
    aligned = offset % np_dtype.alignment == 0  # kernels may assume natural alignment

    def load() -> np.ndarray:
        a = np.frombuffer(view, dtype=np_dtype).reshape(shape)
        return a if aligned else a.copy()
    return LazyTensor(shape, np_dtype, load, source=f"{inline.source} @ {offset}")


def tensor_to_array(t: onnx.TensorProto, base_dir: Path | None, where: str, *,
                    maps: dict | None = None, inline: InlineWeights | None = None) -> np.ndarray | LazyTensor:
    """Any tensor of the model (initializer, ``Constant`` value, attribute) as numpy, the sizes
    checked against the declared type before decoding; external data is a memory-mapped
    ``LazyTensor`` when ``maps`` is given (see ``load_external_tensor``), and so is an initializer
    whose bytes ``inline`` left in the model file."""
    if t.data_type == onnx.TensorProto.STRING:
        raise ModelError(f"{where}: string tensors are not supported")
    if uses_external_data(t):
        return load_external_tensor(t, base_dir, where, maps=maps)
    if inline is not None and t.name in inline.places:
        return _inline_tensor(t, inline, where)
    dt, _, numel = _declared(t, where)
    if t.HasField("raw_data") and len(t.raw_data) != dt.nbytes(numel):
        raise ModelError(f"{where}: holds {len(t.raw_data)} bytes, its dims {list(t.dims)} of {dt} need "
                         f"{dt.nbytes(numel)}")
    try:
        arr = numpy_helper.to_array(t)
    except Exception as e:  # noqa: BLE001  (onnx decoding a hostile tensor may raise anything)
        raise ModelError(f"{where}: unreadable tensor data ({type(e).__name__}: {e})") from None
    if arr.size != numel:
        raise ModelError(f"{where}: holds {arr.size} elements, its dims say {numel}")
    return arr
