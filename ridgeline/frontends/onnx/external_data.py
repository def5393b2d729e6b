"""Loading ONNX external data without trusting the file.

An initializer stored outside the model names a ``location``: it must be a relative path that
resolves (after symlinks) inside the model's folder, and its ``offset``/``length`` must fit both
the file and the tensor's declared size. Anything else is a ``ModelError``, before any byte is read.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from ...ir.dtypes import from_onnx
from ...ir.errors import IRError, ModelError

__all__ = ["load_external_tensor", "uses_external_data"]


def uses_external_data(t: onnx.TensorProto) -> bool:
    return t.HasField("data_location") and t.data_location == onnx.TensorProto.EXTERNAL


def load_external_tensor(t: onnx.TensorProto, base_dir: Path | None) -> np.ndarray:
    info = {e.key: e.value for e in t.external_data}
    name = t.name or "?"
    location = info.get("location")
    if not location:
        raise ModelError(f"initializer {name!r} uses external data but names no location")
    if base_dir is None:
        raise ModelError(f"initializer {name!r} uses external data {location!r}, but the model was not "
                         f"loaded from a file; load it by path")
    if "\x00" in location or len(location) > 4096:
        raise ModelError(f"initializer {name!r}: external data path {location[:64]!r} is malformed")
    if os.path.isabs(location) or location.startswith(("/", "\\")) or ":" in location.split("/")[0]:
        raise ModelError(f"initializer {name!r}: external data path {location!r} is absolute; "
                         f"only files inside the model's folder are read")
    parts = Path(location).parts
    if ".." in parts:
        raise ModelError(f"initializer {name!r}: external data path {location!r} leaves the model's folder")
    base = base_dir.resolve()
    path = (base / location).resolve()
    if base != path and base not in path.parents:
        raise ModelError(f"initializer {name!r}: external data path {location!r} resolves outside the "
                         f"model's folder (symlink?)")
    if not path.is_file():
        raise ModelError(f"initializer {name!r}: external data file {location!r} does not exist")
    try:
        dt = from_onnx(t.data_type)
    except IRError as e:
        raise ModelError(f"initializer {name!r}: {e}") from None
    shape = tuple(int(d) for d in t.dims)
    if any(d < 0 for d in shape):
        raise ModelError(f"initializer {name!r} has a negative dim {shape}")
    numel = math.prod(shape)  # Python ints: np.prod would wrap around on absurd dims
    need = dt.nbytes(numel) if dt.bits < 8 else numel * dt.np_dtype.itemsize
    try:
        offset = int(info.get("offset", 0))
        length = int(info["length"]) if "length" in info else None
    except ValueError:
        raise ModelError(f"initializer {name!r}: external data offset/length are not integers") from None
    size = path.stat().st_size
    if offset < 0 or offset > size:
        raise ModelError(f"initializer {name!r}: external data offset {offset} is outside {location!r} "
                         f"({size} bytes)")
    if length is None:
        length = size - offset
    if length != need:
        raise ModelError(f"initializer {name!r}: external data holds {length} bytes but {dt}{list(shape)} "
                         f"needs {need}")
    if offset + length > size:
        raise ModelError(f"initializer {name!r}: external data runs past the end of {location!r}")
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            raw = f.read(length)
    except OSError as e:
        raise ModelError(f"initializer {name!r}: cannot read external data {location!r}: {e.strerror or e}") from None
    if len(raw) != length:  # the file shrank while we read it
        raise ModelError(f"initializer {name!r}: external data {location!r} ended early")
    # Rebuild the tensor with raw_data so onnx's own decoding (packing of int4, endianness) applies.
    tmp = onnx.TensorProto()
    tmp.CopyFrom(t)
    del tmp.external_data[:]
    tmp.data_location = onnx.TensorProto.DEFAULT
    tmp.raw_data = raw
    return numpy_helper.to_array(tmp)
