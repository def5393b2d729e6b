"""Small helpers over ``llvmlite.ir`` for writing kernels: types, loops, locals, intrinsics.

Kernels share one calling convention: ``void f(i64 lo, i64 hi, ptr a0, ptr a1, ...)`` where
``[lo, hi)`` is the slice of the kernel's outermost parallel range this call computes (the
executor splits it across cores) and every operand is a ``noalias`` pointer to a buffer.
Mutable locals are ``alloca`` slots (SROA turns them into registers at -O3), as clang does.

With ``RIDGELINE_LLVM_CHECKED=1`` (a debug mode, on in the tests) every kernel also takes each
buffer's size in bytes and an error record: every ``load``/``store``/``address`` is checked
against its buffer, and an access outside it is recorded (kernel, buffer, index) and redirected
to a scratch slot instead of touching memory; the executor turns the record into an error.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Callable, Iterator, Sequence

import llvmlite.ir as ir

__all__ = ["F16", "F32", "F64", "I1", "I8", "I16", "I32", "I64", "PTR", "STORAGE", "mangle", "kernel_function",
           "splat", "lane_mask", "masked_load", "masked_store", "load_lanes", "store_lanes", "checked_mode", "checked_now", "address",
           "Var", "Array", "loop", "strided_loops", "intrinsic", "call_intrinsic", "const", "load", "store", "REDUCE_FLAGS", "lanes"]

F16 = ir.HalfType()
F32 = ir.FloatType()
F64 = ir.DoubleType()
I1 = ir.IntType(1)
I8 = ir.IntType(8)
I16 = ir.IntType(16)
I32 = ir.IntType(32)
I64 = ir.IntType(64)
PTR = ir.PointerType()

#: IR dtype name -> how elements are stored in memory (bool is a byte, as in numpy)
STORAGE: dict[str, ir.Type] = {"f32": F32, "f64": F64, "i64": I64, "i32": I32, "i16": I16, "i8": I8,
                               "u8": I8, "u16": I16, "u32": I32, "u64": I64, "bool": I8}

_FLOAT_BYTES = {ir.FloatType: 4, ir.DoubleType: 8, ir.HalfType: 2}

#: fast-math flags for reductions: reassociation lets LLVM vectorize a sum into several lanes
REDUCE_FLAGS = ("reassoc", "contract")


def mangle(ty: ir.Type) -> str:
    """The overload suffix of an intrinsic for ``ty`` (``f32``, ``v16f32``, ``i64``, ``v16p0``)."""
    if isinstance(ty, ir.VectorType):
        return f"v{ty.count}{mangle(ty.element)}"
    if type(ty) in _FLOAT_BYTES:
        return f"f{8 * _FLOAT_BYTES[type(ty)]}"
    if isinstance(ty, ir.IntType):
        return f"i{ty.width}"
    if isinstance(ty, ir.PointerType):
        return "p0"
    raise TypeError(f"no intrinsic suffix for {ty}")


def intrinsic(module: ir.Module, name: str, ret: ir.Type, args: Sequence[ir.Type]) -> ir.Function:
    """Declare (once) the function ``name`` with the given signature."""
    fn = module.globals.get(name)
    if fn is None:
        fn = ir.Function(module, ir.FunctionType(ret, list(args)), name)
    return fn


def call_intrinsic(b: ir.IRBuilder, base: str, *args: ir.Value, ret: ir.Type | None = None,
                   overload: Sequence[ir.Type] | None = None, fastmath: Sequence[str] = ()) -> ir.Value:
    """``llvm.<base>.<suffix>(args)``, overloaded on the first argument's type by default, with
    the fast-math flags ``fastmath`` (e.g. ``REDUCE_FLAGS``)."""
    over = overload if overload is not None else [args[0].type]
    name = f"llvm.{base}." + ".".join(mangle(t) for t in over)
    fn = intrinsic(b.module, name, ret if ret is not None else args[0].type, [a.type for a in args])
    return b.call(fn, list(args), fastmath=tuple(fastmath))


def const(ty: ir.Type, v) -> ir.Constant:
    """A constant of ``ty``; a vector type gets ``v`` in every lane."""
    if isinstance(ty, ir.VectorType):
        return ir.Constant(ty, [const(ty.element, v)] * ty.count)
    if isinstance(ty, (ir.FloatType, ir.DoubleType, ir.HalfType)):
        return ir.Constant(ty, float(v))
    return ir.Constant(ty, int(v))


def checked_mode() -> bool:
    """True when kernels are generated with bounds checks (``RIDGELINE_LLVM_CHECKED=1``)."""
    _CHECKED[0] = os.environ.get("RIDGELINE_LLVM_CHECKED", "").strip() not in ("", "0")
    return _CHECKED[0]


#: ``checked_mode()`` as last read: reading the environment costs a microsecond, and a decode step
#: asks per pointer; the executor reads it once per run (``checked_mode()``), kernels use this
_CHECKED = [False]
checked_mode()


def checked_now() -> bool:
    """``checked_mode()`` as read at the start of this run (or last asked)."""
    return _CHECKED[0]


def kernel_function(module: ir.Module, name: str, n_ptrs: int, *,
                    checked: bool | None = None) -> tuple[ir.Function, ir.IRBuilder, ir.Value, ir.Value, list[ir.Value]]:
    """Define ``void name(i64 lo, i64 hi, ptr...)``; returns (fn, builder at entry, lo, hi, ptrs).

    In checked mode (``checked``, by default ``checked_mode()``) the function takes, after the
    pointers, one i64 size in bytes per pointer and a pointer to an i64[2] error record (see the
    module docstring); callers outside the executor pass ``checked=False``."""
    checked = checked_mode() if checked is None else checked
    extra = [I64] * n_ptrs + [PTR] if checked else []
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [I64, I64] + [PTR] * n_ptrs + extra), name)
    fn.attributes.add("nounwind")
    for a in fn.args[2:2 + n_ptrs]:
        a.add_attribute("noalias")
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    ptrs = list(fn.args[2:2 + n_ptrs])
    if checked:
        sizes, rec = fn.args[2 + n_ptrs:2 + 2 * n_ptrs], fn.args[2 + 2 * n_ptrs]
        scratch = b.bitcast(b.alloca(I8, size=const(I64, 256), name="oob.scratch"), PTR)  # wider than any vector
        # per pointer: its index, size, the record, the scratch, and its last valid index per access
        # width (computed once per kernel, in the entry block)
        fn.bounds = {id(p): (k, sizes[k], rec, scratch, {}) for k, p in enumerate(ptrs)}
    return fn, b, fn.args[0], fn.args[1], ptrs


def _nbytes(ty: ir.Type) -> int:
    if isinstance(ty, ir.VectorType):
        return ty.count * _nbytes(ty.element)
    if isinstance(ty, ir.IntType):
        return max(1, ty.width // 8)
    return _FLOAT_BYTES[type(ty)]


def address(b: ir.IRBuilder, base: ir.Value, index: ir.Value, etype: ir.Type, lanes: int = 1,
            is_store: bool = False) -> ir.Value:
    """The address of ``base[index]`` (elements of ``etype``) for an access of ``lanes`` elements;
    bounds-checked in checked mode."""
    addr = b.gep(base, [index], source_etype=etype)
    bounds = getattr(b.function, "bounds", None)
    entry = bounds.get(id(base)) if bounds else None
    if entry is None or lanes <= 0:
        return addr
    k, size, rec, scratch, last = entry
    key = (_nbytes(etype), lanes)
    if key not in last:
        with b.goto_entry_block():
            last[key] = b.sub(b.sdiv(size, const(I64, key[0])), const(I64, lanes))
    ok = b.and_(b.icmp_signed(">=", index, const(I64, 0)), b.icmp_signed("<=", index, last[key]))
    # no branch: the record is written on every access, to itself only on the first miss (else to
    # the scratch), so a loop body stays one block (two nested branches and four stores per access
    # cost the checked GEMM/matmul spaces ~45% more compile time)
    first = b.and_(b.not_(ok), b.icmp_signed("==", b.load(rec, typ=I64), const(I64, 0)))
    note = b.select(first, rec, scratch)
    b.store(const(I64, 1 + 2 * k + int(is_store)), note)           # the record's layout: checked.py
    b.store(index, b.gep(note, [const(I64, 1)], source_etype=I64))
    return b.select(ok, addr, scratch)


class Var:
    """A mutable local (a stack slot promoted to a register by the optimizer)."""

    def __init__(self, b: ir.IRBuilder, ty: ir.Type, init: ir.Value | None = None, name: str = ""):
        self.b = b
        self.ty = ty
        with b.goto_entry_block():
            self.slot = b.alloca(ty, name=name)
        if init is not None:
            b.store(init, self.slot)

    def get(self) -> ir.Value:
        return self.b.load(self.slot, typ=self.ty)

    def set(self, value: ir.Value) -> None:
        self.b.store(value, self.slot)


class Array:
    """A fixed-size stack buffer of ``n`` elements of ``ty`` (scratch for one kernel call)."""

    def __init__(self, b: ir.IRBuilder, ty: ir.Type, n: int, name: str = ""):
        self.b, self.ty = b, ty
        with b.goto_entry_block():
            self.slot = b.alloca(ty, size=const(I64, max(n, 1)), name=name)

    def at(self, index: ir.Value) -> ir.Value:
        return self.b.gep(self.slot, [index], source_etype=self.ty)

    def get(self, index: ir.Value) -> ir.Value:
        return self.b.load(self.at(index), typ=self.ty)

    def set(self, index: ir.Value, value: ir.Value) -> None:
        self.b.store(value, self.at(index))


@contextmanager
def loop(b: ir.IRBuilder, start, stop, step: int = 1, name: str = "i") -> Iterator[ir.Value]:
    """``for (i = start; i < stop; i += step)`` over i64; the body is the ``with`` block."""
    start = start if isinstance(start, ir.Value) else const(I64, start)
    stop = stop if isinstance(stop, ir.Value) else const(I64, stop)
    pre = b.block
    head = b.append_basic_block(f"{name}.head")
    body = b.append_basic_block(f"{name}.body")
    end = b.append_basic_block(f"{name}.end")
    b.branch(head)
    b.position_at_end(head)
    i = b.phi(I64, name=name)
    i.add_incoming(start, pre)
    b.cbranch(b.icmp_signed("<", i, stop), body, end)
    b.position_at_end(body)
    yield i
    nxt = b.add(i, const(I64, step), name=f"{name}.next")
    i.add_incoming(nxt, b.block)
    b.branch(head)
    b.position_at_end(end)


def strided_loops(b: ir.IRBuilder, lo: ir.Value, hi: ir.Value, dims: Sequence[int], strides: Sequence[Sequence[int]],
                  offsets: list[ir.Value], body: Callable[[list[ir.Value]], None], d: int = 0) -> None:
    """A loop nest over ``dims`` (dim 0 over the kernel's slice ``[lo, hi)``) calling ``body`` innermost
    with each operand's element offset: ``offsets[k]`` plus ``strides[k][d]`` per step of dim d."""
    with loop(b, lo if d == 0 else 0, hi if d == 0 else dims[d], name=f"i{d}") as i:
        offs = [b.add(o, b.mul(i, const(I64, s[d]))) if s[d] else o for o, s in zip(offsets, strides)]
        if d == len(dims) - 1:
            body(offs)
        else:
            strided_loops(b, lo, hi, dims, strides, offs, body, d + 1)


def load(b: ir.IRBuilder, base: ir.Value, index: ir.Value, ty: ir.Type, align: int | None = None) -> ir.Value:
    """``base[index]`` for elements of ``ty``."""
    return b.load(address(b, base, index, ty), typ=ty, align=align)


def store(b: ir.IRBuilder, value: ir.Value, base: ir.Value, index: ir.Value, align: int | None = None) -> None:
    b.store(value, address(b, base, index, value.type, is_store=True), align=align)


def splat(b: ir.IRBuilder, value: ir.Value, n: int) -> ir.Value:
    """``<n x T>`` with ``value`` in every lane."""
    vt = ir.VectorType(value.type, n)
    v = b.insert_element(ir.Constant(vt, None), value, const(I32, 0))
    return b.shuffle_vector(v, ir.Constant(vt, None), lanes(I32, (0,) * n))


_LANES: dict[tuple, ir.Constant] = {}


def lanes(ty: ir.Type, values: Sequence) -> ir.Constant:
    """The constant vector ``<values>`` of ``ty`` (made once: llvmlite takes ~0.1 ms to build a
    16-lane constant, and kernels ask for the same few masks hundreds of times). Cached by each
    value's type and repr, not by ``==``: -0.0 and 0.0, or 1 and True (``i1 true``), are
    different constants."""
    key = (ty, tuple((type(v), repr(v)) for v in values))
    c = _LANES.get(key)
    if c is None:
        if len(_LANES) >= 256:
            _LANES.pop(next(iter(_LANES)), None)   # the oldest
        c = _LANES[key] = ir.Constant(ir.VectorType(ty, len(values)), list(values))
    return c


def lane_mask(n: int, active: int) -> ir.Constant:
    """``<n x i1>`` with the first ``active`` lanes on."""
    return lanes(I1, (1,) * active + (0,) * (n - active))


def masked_load(b: ir.IRBuilder, address: ir.Value, vt: ir.VectorType, mask: ir.Constant, align: int = 4) -> ir.Value:
    """Load only the lanes of ``mask`` (the others read no memory and are zero)."""
    name = f"llvm.masked.load.{mangle(vt)}.p0"
    fn = intrinsic(b.module, name, vt, [PTR, I32, mask.type, vt])
    return b.call(fn, [address, const(I32, align), mask, const(vt, 0)])


def masked_store(b: ir.IRBuilder, value: ir.Value, address: ir.Value, mask: ir.Constant, align: int = 4) -> None:
    name = f"llvm.masked.store.{mangle(value.type)}.p0"
    fn = intrinsic(b.module, name, ir.VoidType(), [value.type, PTR, I32, mask.type])
    b.call(fn, [value, address, const(I32, align), mask])


def load_lanes(b: ir.IRBuilder, base: ir.Value, index: ir.Value, vt: ir.VectorType, live: int) -> ir.Value:
    """``vt`` at ``base[index]``; lanes from ``live`` on read no memory and are zero (a row's tail)."""
    addr = address(b, base, index, vt.element, min(live, vt.count))
    return b.load(addr, typ=vt, align=4) if live >= vt.count else masked_load(b, addr, vt, lane_mask(vt.count, live))


def store_lanes(b: ir.IRBuilder, value: ir.Value, base: ir.Value, index: ir.Value, live: int) -> None:
    """``value``'s first ``live`` lanes to ``base[index]`` (no write past them)."""
    addr = address(b, base, index, value.type.element, min(live, value.type.count), is_store=True)
    if live >= value.type.count:
        b.store(value, addr, align=4)
    else:
        masked_store(b, value, addr, lane_mask(value.type.count, live))
