"""The JIT: one LLVM target machine for this host, modules compiled at -O3 into executable code.

``host()`` describes the CPU as LLVM sees it (name, features, SIMD width, cores). ``compile_ir``
optimizes a module with the new pass manager at -O3 (loop and SLP vectorizers on) for the host's
CPU and features, then hands it to MCJIT; the returned ``CompiledModule`` owns the machine code
and gives function addresses. llvmlite 0.50 (LLVM 22) drops ``llvm.initialize()``: only the
native target and asm printer are initialized. Object code is cached on disk across processes
(``objcache``): a module compiled before, for this CPU and LLVM, is loaded instead of optimized
and code-generated again.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import time
from dataclasses import dataclass

from ...ir.errors import BackendError
from ..threads import available_cores
from . import objcache
from .irutil import checked_now

try:
    import llvmlite.binding as llvm
except ImportError:  # pragma: no cover - the registry checks first; this guards direct imports
    raise BackendError("backend 'llvm' needs llvmlite, which is not installed: pip install 'ridgeline[llvm]'") from None

__all__ = ["HostInfo", "host", "CompiledModule", "compile_ir", "FUNCTION_ATTRIBUTES"]

log = logging.getLogger(__name__)
_lock = threading.Lock()
_LLVMLITE_VERSION = getattr(__import__("llvmlite"), "__version__", "unknown")


@dataclass(frozen=True)
class HostInfo:
    """The host CPU as the JIT targets it."""

    triple: str
    cpu: str                 # LLVM's name, e.g. "znver5", "emeraldrapids"
    features: str            # "+avx2,+fma,..." as LLVM spells them
    vector_bits: int         # widest SIMD register the kernels use: 512, 256 or 128
    cores: int               # CPUs this process may run on

    @property
    def vector_width_f32(self) -> int:
        return self.vector_bits // 32


def _new_target_machine(triple: str, cpu: str, features: str):
    target = llvm.Target.from_triple(triple)
    return target.create_target_machine(cpu=cpu, features=features, opt=3, codemodel="jitdefault", jit=True)


@functools.lru_cache(maxsize=1)
def _target_machine():
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    triple = llvm.get_process_triple()
    cpu = llvm.get_host_cpu_name()
    features = llvm.get_host_cpu_features().flatten()
    tm = _new_target_machine(triple, cpu, features)
    bits = 512 if "+avx512f" in features.split(",") else 256 if "+avx2" in features.split(",") else 128
    return tm, HostInfo(triple, cpu, features, bits, available_cores())


def host() -> HostInfo:
    """The host CPU (name, features, SIMD width, cores)."""
    return _target_machine()[1]


def FUNCTION_ATTRIBUTES() -> str:
    """Attributes every kernel gets: no unwinding, and the full SIMD width.

    LLVM prefers 256-bit vectors on AVX-512 machines unless told otherwise
    (``prefer-vector-width``), which halves the throughput of streaming kernels on CPUs whose
    512-bit units run at full rate.
    """
    info = host()
    return f'nounwind "prefer-vector-width"="{info.vector_bits}" "min-legal-vector-width"="0"'


_DEFINE = re.compile(r"^(define [^\n]*\))([^\n]*)$", re.M)


def finalize_text(text: str) -> str:
    """Give every defined function the kernel attribute group (llvmlite.ir cannot spell string
    attributes such as ``"prefer-vector-width"``)."""
    text = _DEFINE.sub(lambda m: f"{m.group(1)} #0{m.group(2).replace(' nounwind', '')}", text)
    return text + f"\nattributes #0 = {{ {FUNCTION_ATTRIBUTES()} }}\n"


class CompiledModule:
    """Machine code for one module; keep it alive as long as its functions are called."""

    def __init__(self, engine, ir_text: str):
        self._engine = engine
        self.ir = ir_text   # the optimized IR, for tests and reports

    def address(self, name: str) -> int:
        addr = self._engine.get_function_address(name)
        if not addr:
            raise BackendError(f"internal error: JIT function {name!r} was not emitted")
        return addr


#: a vector load or store through a reinterpreted pointer with no stated alignment: LLVM assumes
#: the vector's own size (64 bytes for 16 floats) and emits aligned moves, which fault on memory
#: aligned less (attention's i64 stack arrays, at some shapes) — a crash no bounds check sees
_CAST = re.compile(r"^\s*(%\S+) = bitcast [^\n]* to <[^\n]*>\*$", re.M)
_ACCESS = re.compile(r"^\s*(?:%\S+ = )?(?:load|store) <(?![^\n]*, align )[^\n]*\* (%\S+)$", re.M)


def _unaligned(text: str) -> str | None:
    """The first vector access through a bitcast pointer that does not state its alignment."""
    for fn in text.split("\ndefine "):   # (value names are per function)
        casts = set(_CAST.findall(fn))
        bad = next((m.group(0).strip() for m in _ACCESS.finditer(fn) if m.group(1) in casts), None)
        if bad:
            return bad
    return None


def compile_ir(module_text: str, *, optimize: bool = True) -> CompiledModule:
    """Parse, verify, optimize (-O3 for the host) and JIT-compile ``module_text``. Checked mode
    also refuses a vector load or store that does not state its alignment."""
    tm, info = _target_machine()
    bad = _unaligned(module_text) if checked_now() else None
    if bad:
        raise RuntimeError(f"generated LLVM IR has a vector access with no alignment: {bad}")
    t0 = time.perf_counter()
    text = module_text.replace('target triple = "unknown-unknown-unknown"', f'target triple = "{info.triple}"')
    text = text.replace('target datalayout = ""', f'target datalayout = "{tm.target_data}"')
    folder = objcache.cache_dir()
    key = objcache.entry_key(text, triple=info.triple, cpu=info.cpu, features=info.features, optimize=optimize,
                             llvmlite_version=_LLVMLITE_VERSION) if folder is not None else ""
    cached = objcache.load(folder, key)
    with _lock:  # LLVM contexts are not thread-safe
        try:
            mod = llvm.parse_assembly(text)
            mod.verify()
        except RuntimeError as e:  # a code generator bug, not a user error: keep the IR for the report
            raise RuntimeError(f"generated LLVM IR does not verify: {e}\n{text}") from None
        if optimize and cached is None:   # a cached object was optimized before it was stored
            pto = llvm.create_pipeline_tuning_options(speed_level=3)
            pto.slp_vectorization = True   # off by default; loop vectorization, interleaving and unrolling are on
            pb = llvm.create_pass_builder(tm, pto)
            pb.getModulePassManager().run(mod, pb)
        # an engine takes ownership of its target machine: give each its own
        engine = llvm.create_mcjit_compiler(mod, _new_target_machine(info.triple, info.cpu, info.features))
        if folder is not None:
            engine.set_object_cache(lambda _m, obj: None if cached is not None else objcache.store(folder, key, obj),
                                    lambda _m: cached)
        engine.finalize_object()
        names = [f.name for f in mod.functions if not f.is_declaration]
        optimized = str(mod)
    seconds = time.perf_counter() - t0
    log.info("JIT-%s %d function(s) in %.1f ms", "loaded" if cached is not None else "compiled", len(names),
             seconds * 1e3)
    return CompiledModule(engine, optimized)
