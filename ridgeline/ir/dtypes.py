"""Element types of the IR.

Each dtype knows its text name (``f32``), its numpy dtype (``ml_dtypes`` supplies bf16, fp8 and
int4, exactly as ONNX itself does), its ONNX ``TensorProto`` code and its width in bits, so the
cost models can count bytes for sub-byte types without special cases.
"""

from __future__ import annotations

from dataclasses import dataclass

import ml_dtypes
import numpy as np

from .errors import IRError

__all__ = [
    "DType", "DTYPES", "dtype", "bits", "from_numpy", "from_onnx",
    "f64", "f32", "f16", "bf16", "f8e4m3", "f8e5m2",
    "i64", "i32", "i16", "i8", "u64", "u32", "u16", "u8", "i4", "u4", "boolean",
]


@dataclass(frozen=True)
class DType:
    """An element type: ``name`` is its spelling in the text IR."""

    name: str
    np_dtype: np.dtype
    onnx_code: int
    bits: int
    kind: str  # "float", "int", "uint" or "bool"

    @property
    def is_float(self) -> bool:
        return self.kind == "float"

    @property
    def is_integer(self) -> bool:
        return self.kind in ("int", "uint")

    def nbytes(self, numel: int) -> int:
        """Bytes needed for ``numel`` packed elements (sub-byte types round up)."""
        return (numel * self.bits + 7) // 8

    def __repr__(self) -> str:
        return self.name

    def __str__(self) -> str:
        return self.name


# ONNX TensorProto codes are spelled out so that the IR does not import onnx.
_TABLE = [
    ("f64", np.dtype(np.float64), 11, 64, "float"),
    ("f32", np.dtype(np.float32), 1, 32, "float"),
    ("f16", np.dtype(np.float16), 10, 16, "float"),
    ("bf16", np.dtype(ml_dtypes.bfloat16), 16, 16, "float"),
    ("f8e4m3", np.dtype(ml_dtypes.float8_e4m3fn), 17, 8, "float"),
    ("f8e5m2", np.dtype(ml_dtypes.float8_e5m2), 19, 8, "float"),
    ("i64", np.dtype(np.int64), 7, 64, "int"),
    ("i32", np.dtype(np.int32), 6, 32, "int"),
    ("i16", np.dtype(np.int16), 5, 16, "int"),
    ("i8", np.dtype(np.int8), 3, 8, "int"),
    ("u64", np.dtype(np.uint64), 13, 64, "uint"),
    ("u32", np.dtype(np.uint32), 12, 32, "uint"),
    ("u16", np.dtype(np.uint16), 4, 16, "uint"),
    ("u8", np.dtype(np.uint8), 2, 8, "uint"),
    ("i4", np.dtype(ml_dtypes.int4), 22, 4, "int"),
    ("u4", np.dtype(ml_dtypes.uint4), 21, 4, "uint"),
    ("bool", np.dtype(np.bool_), 9, 8, "bool"),
]

DTYPES: dict[str, DType] = {row[0]: DType(*row) for row in _TABLE}
_BY_NUMPY = {d.np_dtype: d for d in DTYPES.values()}
_BY_ONNX = {d.onnx_code: d for d in DTYPES.values()}

# Spellings users type on the command line or in configs.
_ALIASES = {
    "float32": "f32", "float": "f32", "fp32": "f32", "float16": "f16", "fp16": "f16", "half": "f16",
    "bfloat16": "bf16", "float64": "f64", "double": "f64", "fp64": "f64",
    "fp8": "f8e4m3", "fp8e4m3": "f8e4m3", "f8": "f8e4m3", "float8_e4m3fn": "f8e4m3",
    "fp8e5m2": "f8e5m2", "float8_e5m2": "f8e5m2",
    "int64": "i64", "int32": "i32", "int16": "i16", "int8": "i8", "int4": "i4",
    "uint64": "u64", "uint32": "u32", "uint16": "u16", "uint8": "u8", "uint4": "u4", "bool_": "bool",
}

f64, f32, f16, bf16 = DTYPES["f64"], DTYPES["f32"], DTYPES["f16"], DTYPES["bf16"]
f8e4m3, f8e5m2 = DTYPES["f8e4m3"], DTYPES["f8e5m2"]
i64, i32, i16, i8 = DTYPES["i64"], DTYPES["i32"], DTYPES["i16"], DTYPES["i8"]
u64, u32, u16, u8 = DTYPES["u64"], DTYPES["u32"], DTYPES["u16"], DTYPES["u8"]
i4, u4, boolean = DTYPES["i4"], DTYPES["u4"], DTYPES["bool"]


def dtype(spec: str | DType | np.dtype | type) -> DType:
    """Resolve a dtype from its IR name, a common alias, or a numpy dtype."""
    if isinstance(spec, DType):
        return spec
    if isinstance(spec, str):
        key = spec.strip().lower()
        key = _ALIASES.get(key, key)
        if key in DTYPES:
            return DTYPES[key]
        raise IRError(f"unknown dtype {spec!r}; known: {', '.join(DTYPES)}")
    return from_numpy(np.dtype(spec))


def bits(spec: str | DType) -> int:
    """Bits per element of a dtype (IR name, alias or ``DType``). An unknown name raises
    ``IRError``: a guessed width would silently mis-count every byte derived from it."""
    return dtype(spec).bits


def from_numpy(np_dtype: np.dtype) -> DType:
    """The IR dtype of a numpy dtype; raises IRError for types the IR lacks (complex, string)."""
    try:
        return _BY_NUMPY[np.dtype(np_dtype)]
    except (KeyError, TypeError):
        raise IRError(f"numpy dtype {np_dtype} has no ridgeline equivalent") from None


def from_onnx(code: int) -> DType:
    """The IR dtype of an ONNX ``TensorProto.DataType`` code."""
    try:
        return _BY_ONNX[code]
    except KeyError:
        raise IRError(f"ONNX element type {code} is not supported") from None
