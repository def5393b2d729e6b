"""Moving arrays between numpy (the IR's array type) and torch, dtype by dtype.

torch has no int4/uint4 and ``torch.from_numpy`` does not know ml_dtypes' bf16/fp8 arrays, so
those cross as same-width integer views. Tensors are only shared with numpy on the CPU; a CUDA
device copies.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
import torch

from ...ir.dtypes import DType
from ...ir.errors import BackendError

__all__ = ["TORCH_DTYPES", "supported_dtype", "to_numpy", "to_torch", "torch_dtype"]

#: IR dtype name -> torch dtype (int4/uint4 have no torch counterpart)
TORCH_DTYPES: dict[str, torch.dtype] = {
    "f64": torch.float64, "f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16,
    "f8e4m3": torch.float8_e4m3fn, "f8e5m2": torch.float8_e5m2,
    "i64": torch.int64, "i32": torch.int32, "i16": torch.int16, "i8": torch.int8,
    "u64": torch.uint64, "u32": torch.uint32, "u16": torch.uint16, "u8": torch.uint8, "bool": torch.bool,
}

# numpy dtypes torch.from_numpy cannot take, and the same-width integer to cross as
_VIA_INT = {
    np.dtype(ml_dtypes.bfloat16): (np.int16, torch.int16),
    np.dtype(ml_dtypes.float8_e4m3fn): (np.uint8, torch.uint8),
    np.dtype(ml_dtypes.float8_e5m2): (np.uint8, torch.uint8),
}
_WIDEN = {np.dtype(ml_dtypes.int4): np.int8, np.dtype(ml_dtypes.uint4): np.uint8}
_TORCH_TO_NUMPY = {
    torch.bfloat16: (torch.int16, np.dtype(ml_dtypes.bfloat16)),
    torch.float8_e4m3fn: (torch.uint8, np.dtype(ml_dtypes.float8_e4m3fn)),
    torch.float8_e5m2: (torch.uint8, np.dtype(ml_dtypes.float8_e5m2)),
}


def supported_dtype(dt: DType) -> bool:
    return dt.name in TORCH_DTYPES


def torch_dtype(dt: DType | str) -> torch.dtype:
    name = dt if isinstance(dt, str) else dt.name
    try:
        return TORCH_DTYPES[name]
    except KeyError:
        raise BackendError(f"the torch backend has no dtype for {name}; run this graph on numpy") from None


def to_torch(a: np.ndarray, device: torch.device) -> torch.Tensor:
    """A tensor with ``a``'s data (shared with numpy on the CPU when ``a`` is writeable)."""
    a = np.asarray(a)
    if a.dtype in _WIDEN:       # int4/uint4 codes (quantized weights) compute as int8/uint8 values
        a = a.astype(_WIDEN[a.dtype])
    via = _VIA_INT.get(a.dtype)
    if not a.flags.writeable or not a.flags.c_contiguous:
        a = a.copy(order="C")  # torch.from_numpy wants writeable memory it may alias
    if via is not None:
        t = torch.from_numpy(a.view(via[0])).view(TORCH_DTYPES[_IR_NAME[a.dtype]])
    else:
        t = torch.from_numpy(a)
    return t.to(device) if t.device != device else t


_IR_NAME = {np.dtype(ml_dtypes.bfloat16): "bf16", np.dtype(ml_dtypes.float8_e4m3fn): "f8e4m3",
            np.dtype(ml_dtypes.float8_e5m2): "f8e5m2"}


def to_numpy(t: torch.Tensor) -> np.ndarray:
    """The tensor's values as a numpy array (a copy from a device, a view on the CPU)."""
    t = t.detach()
    if t.device.type != "cpu":
        t = t.cpu()
    via = _TORCH_TO_NUMPY.get(t.dtype)
    if via is not None:
        return t.contiguous().view(via[0]).numpy().view(via[1])
    return t.numpy()
