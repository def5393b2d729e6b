"""``TensorType``: an element dtype and a shape of static or symbolic dims."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from . import dims as D
from .dims import Dim
from .dtypes import DType, dtype as to_dtype
from .errors import IRError

__all__ = ["TensorType", "tensor"]


@dataclass(frozen=True, slots=True)
class TensorType:
    """The type of a value: ``TensorType(f32, (batch, 64))`` prints as ``f32[batch, 64]``."""

    dtype: DType
    shape: tuple[Dim, ...]

    def __post_init__(self):
        if not isinstance(self.dtype, DType):
            object.__setattr__(self, "dtype", to_dtype(self.dtype))
        if not isinstance(self.shape, tuple) or not all(type(d) in (int, str) for d in self.shape):
            object.__setattr__(self, "shape", tuple(D.check_dim(d) for d in self.shape))

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def is_static(self) -> bool:
        return all(isinstance(d, int) for d in self.shape)

    @property
    def numel(self) -> Dim:
        """Element count: an int when static, else a symbolic expression."""
        return D.product(self.shape)

    @property
    def nbytes(self) -> Dim:
        """Bytes of the packed tensor; raises if the shape is symbolic."""
        n = self.numel
        if not isinstance(n, int):
            raise IRError(f"size of {self} depends on unbound dims {sorted(self.symbols)}; bind them first")
        return self.dtype.nbytes(n)

    @property
    def symbols(self) -> set[str]:
        out: set[str] = set()
        for d in self.shape:
            if isinstance(d, str):
                out |= D.free_symbols(d)
        return out

    def bind(self, binding: Mapping[str, Dim]) -> "TensorType":
        if self.is_static:
            return self
        return TensorType(self.dtype, tuple(D.substitute(d, binding) for d in self.shape))

    def __str__(self) -> str:
        return f"{self.dtype.name}[{', '.join(_dim_text(d) for d in self.shape)}]"

    __repr__ = __str__


def _dim_text(d: Dim) -> str:
    if isinstance(d, int) or D.is_name(d):
        return str(d)
    return '"' + d + '"'


def tensor(dt: DType | str, *shape: Dim) -> TensorType:
    """Shorthand: ``tensor("f32", "batch", 64)``."""
    return TensorType(to_dtype(dt), tuple(shape))
