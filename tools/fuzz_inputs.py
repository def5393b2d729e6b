"""Hostile-input fuzzing of the ``ridgeline`` command: every run fails cleanly or succeeds.

Each case builds a hostile input in a fresh workspace and runs one ``ridgeline`` command in a child
process with a memory limit (``RLIMIT_AS``), a CPU-time limit (``RLIMIT_CPU``) and a wall-clock
limit. Two ways to start that child (``--isolation``):

* ``fork`` (the default): each of the ``--jobs`` workers imports numpy, onnx and ridgeline's CLI once,
  then forks one child per case, which installs the audit hook, applies the limits and calls the
  CLI's ``main`` with the case's arguments -- about a tenth of the CPU of a fresh interpreter;
* ``spawn``: each case runs ``python -c _CHILD`` (a fresh interpreter, nothing shared); the tests run
  the same seeds both ways and require the same outcome per seed.

Inputs come from mutators of

* ONNX files: byte flips, varint overwrites, truncation (byte level) and structured edits — extreme
  dims and attribute values, hostile external-data locations on initializers *and* ``Constant``
  tensors (``..``, absolute paths, symlinks out, FIFOs, devices, huge offsets), invalid UTF-8 names;
* ``.rir`` text: token-level edits (extreme numbers, deep nesting, deleted/duplicated tokens) and its
  ``.rir.npz`` sidecar (symlinked out, huge ``.npy`` headers, corrupt zips);
* target TOML files (deep nesting, huge or wrong-typed values);
* CLI arguments (hostile numbers, pass options, ``-o`` into planted symlinks, devices, directories).

The workspace has ``model/`` (the inputs), ``out/`` (the named output's folder), ``secret/`` (files
outside the model's folder, some reachable through symlinks planted in ``model/``) and ``work/``
(the child's working directory, holding a ``secret.bin`` as in the Constant-node attack). Each run
records every file the child opens (an audit hook installed before ridgeline is imported) and the
hash of every file in the workspace before and after. A run counts as a failure when it

* reads a file in ``secret/`` or ``work/`` or a planted absolute path (``read-outside``),
* writes anywhere but the named output (``write-outside``) or changes an input (``modified-input``),
* prints a Python traceback, dies of a signal, runs out of memory, or hangs: more than ``--timeout``
  seconds of CPU time (``RLIMIT_CPU`` sends SIGXCPU) or more than ``--wall`` seconds without exiting
  (a read from a FIFO or a lock blocks without using CPU), or
* exits with a status other than 0 or 2, or exits 2 with more than one line on stderr.

Each distinct failure (class + the last line of stderr) is saved under ``--repro DIR`` with the
command and its inputs. Profiles: ``--profile ci`` (a handful of runs, used by the tests) and
``--profile soak`` (10,000 runs); ``--runs`` and ``--jobs`` override.

    python tools/fuzz_inputs.py --profile soak --jobs 2 --repro /tmp/fuzz-repros

The CPU-time limit is what makes "hang" mean the same on a machine shared with other jobs: a run
starved of CPU at load 20 is slow in wall time, not hung.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures as cf
import hashlib
import json
import os
import random
import re
import resource
import selectors
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROFILES = {"ci": {"runs": 24, "timeout": 60.0}, "soak": {"runs": 10_000, "timeout": 60.0}}
#: wall-clock seconds after which a run that has not used its CPU-time limit counts as blocked (hang)
WALL_LIMIT = 600.0
#: modules a fork server imports once before forking (torch is left to the runs that use it: it
#: adds 0.5 GB of address space, which would shrink RLIMIT_AS for every other run)
PRELOAD = ("numpy", "onnx", "onnx.numpy_helper", "ridgeline.cli", "ridgeline.frontends.onnx", "ridgeline.backends")
#: address-space limit of a child: generous for the small models here, far below the machine
MEMORY_LIMIT = 3 * 2 ** 30
#: absolute paths the mutators plant; reading any of them is a breach
PLANTED_ABSOLUTE = ("/etc/passwd", "/etc/hostname", "/proc/self/environ", "/dev/zero")
SECRET = b"TOP-SECRET-" * 8  # 88 bytes: 22 f32, so a length check alone cannot refuse it

# ----------------------------------------------------------------------------- child wrapper
#: the audit hook, installed in the child only (never in a fork server): logs every open to the file
#: named by RIDGELINE_FUZZ_LOG, one JSON line [path, is_write] each
_HOOK = r"""
import json, os, sys
_log = open(os.environ["RIDGELINE_FUZZ_LOG"], "w", buffering=1)
def _hook(event, args):
    if event == "open" and args and isinstance(args[0], (str, bytes, os.PathLike)):
        path, mode, flags = args[0], args[1], args[2] if len(args) > 2 else 0
        try:
            p = os.fsdecode(path)
        except Exception:
            return
        if mode is None:
            w = bool(flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND))
        else:
            w = any(c in str(mode) for c in "wax+")
        _log.write(json.dumps([p, w]) + "\n")
sys.addaudithook(_hook)
"""
#: spawn mode: a fresh interpreter installs the hook before ridgeline is imported, then runs
#: ``python -m ridgeline`` with argv
_CHILD = _HOOK + r"""
import runpy
sys.argv = ["ridgeline"] + sys.argv[1:]
runpy.run_module("ridgeline", run_name="__main__", alter_sys=True)
"""


@dataclass
class Case:
    """One hostile command: files to create in model/ (name -> bytes, or a callable setting it up),
    the ridgeline arguments (paths relative to the workspace), and what it exercises."""

    kind: str
    args: list[str]
    files: dict[str, bytes] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)   # name in the workspace -> symlink target
    fifos: tuple[str, ...] = ()
    output: str | None = None                           # the named output (workspace-relative)


# ----------------------------------------------------------------------------- seed models
def _onnx_seed(rng: random.Random):
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    n = rng.choice([2, 3, 4, 8])
    w = numpy_helper.from_array(np.linspace(-1, 1, n * n, dtype=np.float32).reshape(n, n), "W")
    idx = numpy_helper.from_array(np.array([0, n - 1], np.int64), "idx")
    shape = numpy_helper.from_array(np.array([-1, n], np.int64), "shape")
    axes = numpy_helper.from_array(np.array([0], np.int64), "starts")
    ends = numpy_helper.from_array(np.array([2], np.int64), "ends")
    nodes = [
        helper.make_node("Constant", [], ["c"], value=numpy_helper.from_array(np.ones(n, np.float32)), name="const"),
        helper.make_node("MatMul", ["x", "W"], ["h"], name="mm"),
        helper.make_node("Add", ["h", "c"], ["a"], name="add"),
        helper.make_node("Gelu", ["a"], ["g"], name="gelu"),
        helper.make_node("Reshape", ["g", "shape"], ["r"], name="reshape", allowzero=0),
        helper.make_node("Gather", ["r", "idx"], ["ga"], axis=1, name="gather"),
        helper.make_node("Slice", ["ga", "starts", "ends"], ["s"], name="slice"),
        helper.make_node("LayerNormalization", ["s", "ln_scale"], ["y"], axis=-1, epsilon=1e-5, name="ln"),
    ]
    scale = numpy_helper.from_array(np.ones(2, np.float32), "ln_scale")
    g = helper.make_graph(nodes, "seed", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", n])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          initializer=[w, idx, shape, axes, ends, scale])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 20)])
    m.ir_version = 9
    return m, onnx


def _external(t, location: str, offset: int | None = None, length: int | None = None) -> None:
    import onnx
    t.ClearField("raw_data")
    t.ClearField("float_data")
    t.ClearField("int64_data")
    t.data_location = onnx.TensorProto.EXTERNAL
    del t.external_data[:]
    for k, v in (("location", location), ("offset", offset), ("length", length)):
        if v is not None:
            e = t.external_data.add()
            e.key, e.value = k, str(v)


_HOSTILE_LOCATIONS = ["../secret/secret.bin", "/etc/passwd", "secret.bin", "link.bin", "dirlink/secret.bin",
                      "fifo.bin", "zero.bin", "../work/secret.bin", "sub/../../secret/secret.bin",
                      "C:/secret.bin", "a\\..\\..\\secret\\secret.bin", "w.bin", "", ".", "sub"]
_EXTREME_INTS = [0, -1, 1, 2 ** 31, 2 ** 62, 2 ** 63 - 1, -2 ** 63, -2 ** 62, 10 ** 12, 100, -100]


def _onnx_structured(rng: random.Random) -> Case:
    import numpy as np
    m, onnx = _onnx_seed(rng)
    g = m.graph
    files: dict[str, bytes] = {"w.bin": np.linspace(-1, 1, 64, dtype=np.float32).tobytes()}
    links = {"model/link.bin": "../secret/secret.bin", "model/dirlink": "../secret", "model/zero.bin": "/dev/zero"}
    fifos = ("model/fifo.bin",)
    what = rng.choice(["external-init", "external-constant", "dims", "attr", "indices", "utf8", "optype",
                       "sparse", "value-info", "duplicate", "external-constant", "external-init"])
    if what == "external-init":
        _external(rng.choice(list(g.initializer)), rng.choice(_HOSTILE_LOCATIONS),
                  rng.choice([None, 0, 4, -4, 2 ** 40]), rng.choice([None, 16, 64, 88, 2 ** 40]))
    elif what == "external-constant":
        const = g.node[0]
        _external(const.attribute[0].t, rng.choice(_HOSTILE_LOCATIONS), rng.choice([None, 0, 8]),
                  rng.choice([None, 8, 16, 88]))
    elif what == "dims":
        t = rng.choice(list(g.initializer))
        if t.dims:
            t.dims[rng.randrange(len(t.dims))] = rng.choice(_EXTREME_INTS)
        else:
            t.dims.append(rng.choice(_EXTREME_INTS))
    elif what == "attr":
        n = rng.choice(list(g.node))
        if n.attribute:
            a = rng.choice(list(n.attribute))
            if a.type == onnx.AttributeProto.INT:
                a.i = rng.choice(_EXTREME_INTS)
            elif a.type == onnx.AttributeProto.FLOAT:
                a.f = rng.choice([float("nan"), float("inf"), -1e38, -1.0, 1e38])
    elif what == "indices":
        t = [t for t in g.initializer if t.name in ("idx", "starts", "ends", "shape")]
        t = rng.choice(t)
        from onnx import numpy_helper
        vals = np.array([rng.choice(_EXTREME_INTS) for _ in range(max(1, len(t.dims) and t.dims[0]))], np.int64)
        t.CopyFrom(numpy_helper.from_array(vals.reshape(list(t.dims) or [1])[: t.dims[0] if t.dims else 1], t.name))
    elif what == "utf8":
        pass  # protobuf will not store invalid UTF-8: the node name is replaced in the bytes below
    elif what == "optype":
        rng.choice(list(g.node)).op_type = rng.choice(["Foo", "If", "Loop", "", "Relu", "Concat", "Gather"])
    elif what == "sparse":
        sp = g.sparse_initializer.add()
        sp.values.name = "sp"
        sp.dims.extend([4])
    elif what == "value-info":
        vi = g.value_info.add()
        vi.name = "h"
        vi.type.tensor_type.elem_type = rng.choice([1, 7, 16, 0, 99])
        for d in rng.choice([[2 ** 50], [-1], [3, 3, 3]]):
            vi.type.tensor_type.shape.dim.add().dim_value = d
    elif what == "duplicate":
        g.node.append(g.node[rng.randrange(len(g.node))])
    data = m.SerializeToString()
    if what == "utf8":
        data = data.replace(b"\x04gelu", b"\x04\xff\xfe\xfd\xfc", 1)
    files["m.onnx"] = data
    return Case("onnx-structured/" + what, [], files, links, fifos)


def _onnx_bytes(rng: random.Random) -> Case:
    m, _ = _onnx_seed(rng)
    data = bytearray(m.SerializeToString())
    for _ in range(rng.choice([1, 1, 2, 4, 16])):
        op = rng.choice(["flip", "byte", "varint", "truncate", "insert"])
        i = rng.randrange(len(data))
        if op == "flip":
            data[i] ^= 1 << rng.randrange(8)
        elif op == "byte":
            data[i] = rng.randrange(256)
        elif op == "varint":  # a huge length or value where a varint was
            data[i:i + 1] = bytes([0xff] * rng.randrange(1, 10) + [0x01])
        elif op == "truncate":
            del data[i:]
            if not data:
                data = bytearray(b"\x08")
        else:
            data[i:i] = os.urandom(rng.randrange(1, 16))
    return Case("onnx-bytes", [], {"m.onnx": bytes(data)})


def _rir_seed(rng: random.Random) -> tuple[str, bytes]:
    import io

    import numpy as np
    n = rng.choice([4, 8, 40])
    text = (f"graph @g(%x: f32[batch, {n}]) -> (%y: f32[batch, {n}]) {{\n"
            f"  const %w: f32[{n}, {n}] = @sidecar\n"
            f"  const %b: f32[{n}] = [" + ", ".join(["0.5"] * n) + "]\n"
            f"  const %t: i64[2] = [1, 2]\n"
            f"  %h = MatMul(%x, %w) : f32[batch, {n}]\n"
            f"  %a = Add(%h, %b) {{}} : f32[batch, {n}]\n"
            f"  %y = Fused(%a) {{kind = \"elementwise\"}} : f32[batch, {n}] body graph @body(%p: f32[batch, {n}]) -> "
            f"(%q: f32[batch, {n}]) {{\n    %q = Relu(%p) : f32[batch, {n}]\n    return %q\n  }}\n"
            f"  return %y\n}}\n")
    buf = io.BytesIO()
    np.savez(buf, w=np.eye(n, dtype=np.float32))
    return text, buf.getvalue()


_RIR_TOKEN = re.compile(r"->|-?\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|[A-Za-z_][A-Za-z0-9_.]*|%[A-Za-z0-9_.]+|@[A-Za-z0-9_]+|\S")
_HOSTILE_NUMBERS = ["-1e999", "1e999", "9" * 5000, "-9223372036854775808", "18446744073709551616", "1e-400",
                    "nan", "-0", "٣", "２", "1_000", "0x10", "99999999999999999999"]


def _rir_tokens(rng: random.Random) -> Case:
    text, side = _rir_seed(rng)
    toks = _RIR_TOKEN.findall(text)
    for _ in range(rng.choice([1, 1, 2, 3])):
        i = rng.randrange(len(toks))
        op = rng.choice(["number", "number", "nest", "delete", "duplicate", "swap", "unicode"])
        if op == "number":
            nums = [k for k, t in enumerate(toks) if re.fullmatch(r"-?\d.*", t)]
            if nums:
                toks[rng.choice(nums)] = rng.choice(_HOSTILE_NUMBERS)
        elif op == "nest":
            depth = rng.choice([200, 1000, 10_000])
            kind = rng.choice(["list", "dict", "fused"])
            if kind == "list":
                toks[i:i] = ["const %deep: f32[1] = " + "[" * depth + "1" + "]" * depth + "\n"]
            elif kind == "dict":
                toks[i:i] = ["meta " + "{a=" * depth + "1" + "}" * depth + "\n"]
            else:
                body = "graph @b(%p: f32[2]) -> (%q: f32[2]) { %q = Relu(%p) : f32[2] return %q }"
                for _ in range(min(depth, 2000)):
                    body = ("graph @b(%p: f32[2]) -> (%q: f32[2]) { %q = Fused(%p) {kind = \"k\"} : f32[2] body "
                            + body + " return %q }")
                toks[i:i] = [body]
        elif op == "delete":
            del toks[i]
        elif op == "duplicate":
            toks[i:i] = [toks[i]] * rng.choice([1, 2, 1000])
        elif op == "swap":
            j = rng.randrange(len(toks))
            toks[i], toks[j] = toks[j], toks[i]
        else:
            toks[i] = rng.choice(["\udcff", "\u202e", "\x00", "é", "\ufeff"])
    out = " ".join(toks).encode("utf-8", "surrogateescape")
    return Case("rir-tokens", [], {"m.rir": out, "m.rir.npz": side})


def _npy_header(shape: str, descr: str = "<f4") -> bytes:
    head = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}".encode()
    head += b" " * ((64 - (10 + len(head) + 1) % 64) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(head).to_bytes(2, "little") + head


def _sidecar(rng: random.Random) -> Case:
    import io
    import zipfile
    text, side = _rir_seed(rng)
    files = {"m.rir": text.encode()}
    links: dict[str, str] = {}
    fifos: tuple[str, ...] = ()
    what = rng.choice(["symlink-out", "symlink-secret-npz", "huge-header", "corrupt", "object", "fifo",
                       "wrong-size", "dev-zero", "dir"])
    if what == "symlink-out":
        links["model/m.rir.npz"] = "../secret/w.npz"
    elif what == "symlink-secret-npz":
        links["model/m.rir.npz"] = os.path.abspath("/etc/passwd")
    elif what in ("huge-header", "wrong-size", "object"):
        shape = {"huge-header": rng.choice(["(1099511627776, 1099511627776)", "(4611686018427387904,)", "(10**12,)"]),
                 "wrong-size": "(8, 8)", "object": "(2,)"}[what]
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("w.npy", _npy_header(shape, "|O" if what == "object" else "<f4") + b"\0" * 64)
        files["m.rir.npz"] = buf.getvalue()
    elif what == "corrupt":
        b = bytearray(side)
        for _ in range(8):
            b[rng.randrange(len(b))] = rng.randrange(256)
        files["m.rir.npz"] = bytes(b)
    elif what == "fifo":
        fifos = ("model/m.rir.npz",)
    elif what == "dev-zero":
        links["model/m.rir.npz"] = "/dev/zero"
    else:
        files["m.rir.npz/x"] = b""
    return Case("sidecar/" + what, [], files, links, fifos)


def _toml(rng: random.Random) -> Case:
    base_path = ROOT / "ridgeline" / "cost_models" / "targets"
    tomls = sorted(base_path.glob("*.toml"))
    text = tomls[rng.randrange(len(tomls))].read_text() if tomls else ""
    what = rng.choice(["nest-table", "nest-array", "numbers", "types", "truncate", "bytes"])
    if what == "nest-table":
        d = rng.choice([100, 1000, 5000])
        text += "\n[" + ".".join(["a"] * d) + "]\nx = 1\n"
    elif what == "nest-array":
        d = rng.choice([100, 1000, 5000])
        text += "\nz = " + "[" * d + "]" * d + "\n"
    elif what == "numbers":
        text = re.sub(r"(?m)(=\s*)([0-9][0-9_.eE+-]*)", lambda m: m.group(1) + rng.choice(
            ["1e999", "-1", "0", "nan", "inf", "9" * 5000, "1e-320", "-1e308"]) if rng.random() < 0.3 else m.group(0), text)
    elif what == "types":
        text = re.sub(r"(?m)(=\s*)([0-9][0-9_.eE+-]*)", lambda m: m.group(1) + rng.choice(
            ['"x"', "[]", "{}", "true", "[1, 2]"]) if rng.random() < 0.3 else m.group(0), text)
    elif what == "truncate":
        text = text[: rng.randrange(max(1, len(text)))]
    else:
        b = bytearray(text.encode())
        for _ in range(4):
            if b:
                b[rng.randrange(len(b))] = rng.randrange(256)
        return Case("toml/bytes", ["estimate", "llama-3-8b", "--target-file", "model/t.toml"], {"t.toml": bytes(b)})
    return Case("toml/" + what, ["estimate", "llama-3-8b", "--target-file", "model/t.toml"], {"t.toml": text.encode()})


_CLI_NUMBERS = ["1_000", "٣", "２", "-1", "0", "99999999999999999999", "1e3", " 5", "1000000000", str(2 ** 63),
                "10" * 3000, "+4", "0x10", "nan", "1"]


def _cli(rng: random.Random) -> Case:
    m, _ = _onnx_seed(rng)
    files = {"m.onnx": m.SerializeToString()}
    num = rng.choice(_CLI_NUMBERS)
    options = [
        ["run", "model/m.onnx", "--dim", f"batch={num}"],
        ["run", "model/m.onnx", "--dim", "batch=2", "--seed", num],
        ["run", "model/m.onnx", "--dim", "batch=2", "-b", rng.choice(["llvm", "torch"]), "--threads", num],
        ["estimate", "llama-3-8b", "--target", rng.choice(["groq-lpu", "h100", "tpu-v5e"]), "--batch", num],
        ["estimate", "llama-3-8b", "--target", rng.choice(["groq-lpu", "cerebras-wse-3", "h100"]), "--context", num],
        ["opt", "model/m.onnx", "-p", rng.choice([f"fuse-elementwise{{max-nodes={num}}}", f"quantize{{samples={num}}}",
                                                 f"quantize{{percentile={num}}}", f"fold-constants{{size-limit={num}}}",
                                                 "cse{max-constant-elements=-5}", "fuse-elementwise{max-nodes=", "{{{"])],
        ["estimate", "llama-3-8b", "--target", "h100", "-O", f"launch_overhead={num}"],
    ]
    args = rng.choice(options)
    out = None
    if rng.random() < 0.5 and args[0] in ("run", "opt"):
        out = "out/o.npz" if args[0] == "run" else "out/o.onnx"
        args = args + ["-o", out]
    return Case("cli/" + args[0], args, files, output=out)


def _outputs(rng: random.Random) -> Case:
    """``-o`` into planted symlinks, devices, directories, missing folders."""
    m, _ = _onnx_seed(rng)
    files = {"m.onnx": m.SerializeToString(), "t.rir": _rir_seed(rng)[0].encode()}
    cmd, ext = rng.choice([(["opt", "model/m.onnx", "-p", "default"], ".onnx"), (["opt", "model/m.onnx", "-p", "cse"], ".rir"),
                           (["ir", "model/m.onnx"], ".rir"), (["run", "model/m.onnx", "--dim", "batch=2"], ".npz"),
                           (["estimate", "llama-3-8b", "--target", "h100", "--plot"], ".png")])
    where = rng.choice(["tmp-link", "link", "dir", "missing", "dev-full", "dev-null", "plain", "sidecar-link"])
    links: dict[str, str] = {}
    name = "out/o" + ext
    if where == "tmp-link":
        links[name + ".tmp"] = "../secret/victim.txt"
    elif where == "link":
        links[name] = "../secret/victim.txt"
    elif where == "sidecar-link":
        links[name + ".npz"] = "../secret/victim.txt"
    elif where == "dir":
        files["../out/o" + ext + "/x"] = b""
    elif where == "missing":
        name = "out/missing/o" + ext
    elif where == "dev-full":
        name = "/dev/full"
    elif where == "dev-null":
        name = "/dev/null"
    flag = [] if cmd[-1] == "--plot" else ["-o"]
    return Case("output/" + where, cmd + flag + [name], files, links, output=name)


MUTATORS = {"onnx-structured": (_onnx_structured, 4), "onnx-bytes": (_onnx_bytes, 3), "rir-tokens": (_rir_tokens, 3),
            "sidecar": (_sidecar, 2), "toml": (_toml, 1), "cli": (_cli, 2), "output": (_outputs, 2)}
_COMMANDS = [["show"], ["opt", "-p", "default", "-o", "out/o.onnx"], ["run", "--dim", "batch=2"], ["ir", "-o", "out/o.rir"],
             ["run", "--dim", "batch=2", "-b", "torch"], ["run", "--dim", "batch=3", "-b", "llvm"]]


def make_case(rng: random.Random) -> Case:
    names = list(MUTATORS)
    kind = rng.choices(names, weights=[MUTATORS[k][1] for k in names])[0]
    case = MUTATORS[kind][0](rng)
    if not case.args:  # a model mutation: pick a command to run on it
        model = "model/" + next(n for n in case.files if n.endswith((".onnx", ".rir")))
        cmd = list(rng.choice(_COMMANDS))
        case.args = [cmd[0], model] + cmd[1:]
        if "-o" in cmd:
            case.output = cmd[cmd.index("-o") + 1]
    return case


# ----------------------------------------------------------------------------- running one case
def _setup(ws: Path, case: Case) -> None:
    for d in ("model", "out", "secret", "work"):
        (ws / d).mkdir(parents=True, exist_ok=True)
    (ws / "secret" / "secret.bin").write_bytes(SECRET)
    (ws / "secret" / "victim.txt").write_bytes(b"victim: must never change\n")
    import io

    import numpy as np
    buf = io.BytesIO()
    np.savez(buf, w=np.eye(8, dtype=np.float32))
    (ws / "secret" / "w.npz").write_bytes(buf.getvalue())
    (ws / "work" / "secret.bin").write_bytes(SECRET)
    for name, data in case.files.items():
        p = (ws / "model" / name).resolve()
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    for name, target in case.links.items():
        p = ws / name
        p.parent.mkdir(parents=True, exist_ok=True)
        if not os.path.lexists(p):
            os.symlink(target, p)
    for name in case.fifos:
        p = ws / name
        if not os.path.lexists(p):
            os.mkfifo(p)


def _snapshot(ws: Path) -> dict[str, str]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(ws):
        for n in filenames + dirnames:
            p = Path(dirpath) / n
            rel = str(p.relative_to(ws))
            try:
                st = os.lstat(p)
            except OSError:
                continue
            if stat.S_ISLNK(st.st_mode):
                out[rel] = "link:" + os.readlink(p)
            elif stat.S_ISREG(st.st_mode):
                out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = "dir"
            else:
                out[rel] = "special"
    return out


def _limits(memory: int, cpu: float):
    """The child's limits: address space, CPU seconds (SIGXCPU, then SIGKILL 5 s later), no core
    files, and a session of its own so a timeout can kill everything it started."""
    def apply():
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_CPU, (int(cpu), int(cpu) + 5))
        os.setsid()
    return apply


@dataclass
class Outcome:
    kind: str
    outcome: str          # ok, error, or a failure class
    args: list[str]
    seconds: float
    detail: str = ""
    cpu: float | None = None  # CPU seconds of the child (fork mode; None in spawn mode)


def _child_env(ws: Path, log: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIDGELINE_")}
    env.update(PYTHONPATH=str(ROOT), RIDGELINE_FUZZ_LOG=str(log), COLUMNS="120", OMP_NUM_THREADS="1",
               PYTHONDONTWRITEBYTECODE="1", MPLCONFIGDIR=str(ws.parent / "mpl"))  # shared: the font cache once
    return env


def run_case(case: Case, ws: Path, timeout: float, memory: int = MEMORY_LIMIT, *, wall: float = WALL_LIMIT,
             isolation: str = "spawn") -> Outcome:
    """Set up ``case`` in ``ws``, run it in a child (``isolation``: "spawn" or "fork") limited to
    ``timeout`` CPU seconds, ``wall`` seconds and ``memory`` bytes of address space, and classify it."""
    _setup(ws, case)
    before = _snapshot(ws)
    log = ws.parent / (ws.name + ".opens")
    env = _child_env(ws, log)
    argv = [a if a.startswith("/") or not a.startswith(("model/", "out/")) else str(ws / a) for a in case.args]
    t0 = time.monotonic()
    run = _run_forked if isolation == "fork" else _run_spawned
    code, err, cpu = run(argv, ws / "work", env, ws.parent / (ws.name + ".stderr"), memory, timeout, wall)
    seconds = time.monotonic() - t0
    after = _snapshot(ws)
    outcome, detail = _classify(case, ws, code, err, before, after, log)
    return Outcome(case.kind, outcome, case.args, seconds, detail, cpu)


def _run_spawned(argv, cwd, env, err_path, memory, cpu, wall):
    p = subprocess.Popen([sys.executable, "-c", _CHILD, *argv], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         preexec_fn=_limits(memory, cpu))  # noqa: PLW1509 - limits must precede exec; the threads only wait
    try:
        _, err = p.communicate(timeout=wall)
        code = p.returncode
    except subprocess.TimeoutExpired:
        _kill_group(p.pid)
        _, err = p.communicate()
        code = None
    return code, err.decode("utf-8", "replace"), None


def _kill_group(pid: int) -> None:
    for kill in (os.killpg, os.kill):
        try:
            kill(pid, signal.SIGKILL)
        except OSError:  # not yet its own session leader, or already gone
            pass


def _run_forked(argv, cwd, env, err_path, memory, cpu, wall):
    """Fork this (preloaded, single-threaded) process; the child becomes ``ridgeline argv``."""
    if threading.active_count() != 1 or len(os.listdir("/proc/self/task")) != 1:
        raise RuntimeError("fuzz_inputs: a fork server must have exactly one thread when it forks")
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: never returns into the server
        code = 70
        try:
            code = _child_main(argv, cwd, env, err_path, memory, cpu)
        finally:
            os._exit(code)
    deadline, delay = time.monotonic() + wall, 0.002
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            code = os.waitstatus_to_exitcode(status)
            break
        if time.monotonic() > deadline:
            _kill_group(pid)
            _, status, usage = os.wait4(pid, 0)
            code = None
            break
        time.sleep(delay)
        delay = min(2 * delay, 0.05)
    try:
        err = err_path.read_bytes().decode("utf-8", "replace")
    finally:
        err_path.unlink(missing_ok=True)
    return code, err, usage.ru_utime + usage.ru_stime


def _child_main(argv, cwd, env, err_path, memory, cpu) -> int:
    """What ``_CHILD`` does in a fresh interpreter, done in a forked one: limits, own session, stdin
    and stdout to /dev/null, stderr to a file, cwd, environment, the audit hook, then the CLI."""
    _limits(memory, cpu)()
    fd = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(fd, 2)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    # relative import paths ('' or "tools" of the server) would make lazy imports look in the case's cwd
    sys.path[:] = [os.path.abspath(p) for p in sys.path]
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    sys.argv = ["ridgeline", *argv]
    exec(_HOOK, {"__name__": "_fuzz_hook"})  # noqa: S102 - our own constant
    from ridgeline.cli import main as cli_main
    try:
        code = cli_main(argv)
    except SystemExit as e:  # as the interpreter would report it
        code = e.code
        if code is None:
            code = 0
        elif not isinstance(code, int):
            sys.stderr.write(f"{code}\n")
            code = 1
    except BaseException:  # noqa: BLE001 - an uncaught exception: print it as the interpreter would
        traceback.print_exc()
        code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001, S110 - as at interpreter exit
            pass
    return int(code) & 0xFF


def _classify(case: Case, ws: Path, code, err: str, before, after, log: Path) -> tuple[str, str]:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    last = lines[-1][:200] if lines else ""
    # 1. file access (the audit log): reads of secrets, writes outside the output
    secret_roots = [os.path.realpath(ws / "secret"), os.path.realpath(ws / "work")]
    out_dir = os.path.realpath((ws / case.output).parent) if case.output and not case.output.startswith("/") else None
    try:
        opens = [json.loads(x) for x in log.read_text().splitlines() if x.strip()]
    except (OSError, ValueError):
        opens = []
    for path, write in opens:
        real = os.path.realpath(path if os.path.isabs(path) else os.path.join(ws / "work", path))
        if any(real == r or real.startswith(r + os.sep) for r in secret_roots) or real in PLANTED_ABSOLUTE:
            return ("write-outside" if write else "read-outside"), f"{'wrote' if write else 'read'} {real}"
        if write and real.startswith(str(ws) + os.sep) and not (out_dir and real.startswith(out_dir + os.sep)):
            return "write-outside", f"wrote {real}"
    # 2. files changed: inputs or secrets modified, anything written besides the named output
    for rel in set(before) | set(after):
        if before.get(rel) == after.get(rel):
            continue
        named = case.output and not case.output.startswith("/") and rel in (case.output, case.output + ".npz")
        if rel.startswith(("model", "secret", "work")):
            return "modified-input", f"{rel} changed"
        if not named:
            return "write-outside", f"{rel} appeared or changed"
    # 3. how the process ended
    if code is None:
        return "hang", f"blocked: no exit within the wall-clock limit: {last}"
    if code == -signal.SIGXCPU:
        return "hang", f"CPU-time limit: {last}"
    if code < 0:
        return "signal", f"signal {-code}: {last}"
    if "MemoryError" in err or "Cannot allocate memory" in err or "std::bad_alloc" in err:
        return "oom", last
    if "Traceback (most recent call last)" in err:
        return "traceback", last
    if "Warning" in err:
        return "warning", last
    if code == 0:
        return "ok", ""
    if code == 2:
        return ("error" if len(lines) == 1 else "multi-line-error"), last
    return f"exit-{code}", last


# ----------------------------------------------------------------------------- the campaign
FAILURES = ("read-outside", "write-outside", "modified-input", "traceback", "signal", "oom", "hang",
            "multi-line-error", "warning")


def _signature(o: Outcome) -> str:
    detail = re.sub(r"/tmp/\S+", "<path>", o.detail)
    detail = re.sub(r"\d+", "N", detail)
    return f"{o.outcome}: {o.kind}: {detail[:160]}"


def _one(seed: int, timeout: float, scratch: str, repro: str | None, wall: float = WALL_LIMIT,
         isolation: str = "spawn") -> tuple[Outcome, str | None]:
    rng = random.Random(seed)
    case = make_case(rng)
    ws = Path(tempfile.mkdtemp(prefix=f"case{seed}-", dir=scratch))
    try:
        o = run_case(case, ws, timeout, wall=wall, isolation=isolation)
        saved = None
        if o.outcome in FAILURES and repro:
            dest = Path(repro) / f"{o.outcome}-{seed}"
            if not dest.exists():
                shutil.copytree(ws, dest, symlinks=True, ignore=lambda d, names: [n for n in names if
                                                                                    stat.S_ISFIFO(os.lstat(os.path.join(d, n)).st_mode)])
                (dest / "COMMAND").write_text(f"seed {seed}\ncd work && ridgeline {shlex.join(case.args)}\n{o.detail}\n")
                saved = str(dest)
        return o, saved
    finally:
        shutil.rmtree(ws, ignore_errors=True)
        Path(str(ws) + ".opens").unlink(missing_ok=True)


def _record(seed: int, o: Outcome, saved: str | None) -> dict:
    return {"seed": seed, "kind": o.kind, "outcome": o.outcome, "seconds": round(o.seconds, 2),
            "cpu": None if o.cpu is None else round(o.cpu, 2), "args": o.args, "detail": o.detail, "repro": saved}


def _spawned_results(seeds, jobs, run_one):
    """Spawn mode: a thread per job, each starting one interpreter per case."""
    with cf.ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(run_one, s): s for s in seeds}
        for f in cf.as_completed(futures):
            o, saved = f.result()
            yield _record(futures[f], o, saved)


def _fork_server(seeds, run_one) -> None:
    """A worker (a fresh interpreter, so the caller's threads do not matter): import the heavy
    modules once, then fork one child per case; one JSON line per result on stdout."""
    import importlib
    os.environ["OMP_NUM_THREADS"] = "1"  # no BLAS thread pool in a process that forks
    for name in PRELOAD:
        importlib.import_module(name)
    from ridgeline.cli import build_parser
    build_parser()  # imports every command module
    here = Path(sys.modules["ridgeline"].__file__).resolve().parent.parent
    if here != ROOT:
        raise RuntimeError(f"fuzz_inputs: the fork server imported ridgeline from {here}, not {ROOT}")
    for s in seeds:
        o, saved = run_one(s)
        sys.stdout.write(json.dumps(_record(s, o, saved)) + "\n")
        sys.stdout.flush()


def _forked_results(seeds, jobs, run_one, server_args):
    """Fork mode: ``jobs`` fork servers, each taking every ``jobs``-th seed and streaming its
    results back through a pipe."""
    procs, sel = [], selectors.DefaultSelector()
    for k in range(jobs):
        mine = seeds[k::jobs]
        if not mine:
            continue
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]))
        p = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--serve",
                              json.dumps({**server_args, "seeds": mine})], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                             env=env)  # the ridgeline of this checkout, as spawn mode's children import it
        procs.append(p)
        sel.register(p.stdout, selectors.EVENT_READ, bytearray())
    try:
        open_pipes = len(procs)
        while open_pipes:
            for key, _ in sel.select():
                chunk = os.read(key.fd, 1 << 16)
                if not chunk:
                    sel.unregister(key.fileobj)
                    open_pipes -= 1
                    continue
                key.data.extend(chunk)
                while b"\n" in key.data:
                    line, _, rest = bytes(key.data).partition(b"\n")
                    key.data[:] = rest
                    yield json.loads(line)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
            p.stdout.close()
        if any(p.returncode for p in procs):
            raise RuntimeError("fuzz_inputs: a fork server died; see its traceback above")


def campaign(runs: int, *, seed: int = 0, jobs: int = 1, timeout: float = 60.0, repro: str | None = None,
             progress: bool = False, log: str | None = None, wall: float = WALL_LIMIT,
             isolation: str = "fork") -> dict:
    """Run ``runs`` hostile commands (seeds ``seed`` ..); returns counts per outcome, per mutator, the
    distinct failures and ``per_seed`` outcomes. ``timeout``: CPU seconds per run; ``wall``: seconds
    per run; ``isolation``: "fork" (fork servers) or "spawn" (a fresh interpreter per run).
    ``log``: append one JSON line per run there (a long soak can be tabulated while it runs)."""
    if isolation not in ("fork", "spawn"):
        raise ValueError(f"isolation must be 'fork' or 'spawn', not {isolation!r}")
    log_file = open(log, "a", buffering=1) if log else None  # noqa: SIM115 - closed in the finally below
    counts: collections.Counter = collections.Counter()
    by_kind: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    distinct: dict[str, dict] = {}
    per_seed: dict[int, str] = {}
    slowest, slowest_cpu = 0.0, 0.0
    scratch = tempfile.mkdtemp(prefix="ridgeline-fuzz-")
    t0 = time.monotonic()
    seeds = [seed + i for i in range(runs)]

    def run_one(s):
        return _one(s, timeout, scratch, repro, wall, isolation)

    if isolation == "fork":
        results = _forked_results(seeds, jobs, run_one, {"timeout": timeout, "wall": wall, "scratch": scratch,
                                                         "repro": repro})
    else:
        results = _spawned_results(seeds, jobs, run_one)
    try:
        for k, r in enumerate(results, 1):
            if log_file is not None:
                log_file.write(json.dumps(r) + "\n")
            per_seed[r["seed"]] = r["outcome"]
            counts[r["outcome"]] += 1
            by_kind[r["kind"].split("/")[0]][r["outcome"]] += 1
            slowest = max(slowest, r["seconds"])
            slowest_cpu = max(slowest_cpu, r["cpu"] or 0.0)
            if r["outcome"] in FAILURES:
                o = Outcome(r["kind"], r["outcome"], r["args"], r["seconds"], r["detail"])
                distinct.setdefault(_signature(o), {"args": r["args"], "detail": r["detail"], "repro": r["repro"]})
            if progress and k % 50 == 0:
                fails = sum(counts[c] for c in FAILURES)
                print(f"{k}/{runs} runs, {fails} failures, {time.monotonic() - t0:.0f} s", file=sys.stderr, flush=True)
    finally:
        results.close()
        shutil.rmtree(scratch, ignore_errors=True)
        if log_file is not None:
            log_file.close()
    return {"runs": runs, "seconds": time.monotonic() - t0, "slowest_run_s": slowest, "slowest_cpu_s": slowest_cpu,
            "outcomes": dict(counts), "by_mutator": {k: dict(v) for k, v in by_kind.items()},
            "failures": sum(counts[c] for c in FAILURES), "distinct_failures": distinct, "per_seed": per_seed,
            "isolation": isolation}


def table(log: str) -> str:
    """A markdown table of a ``--log`` file: outcomes by mutator, the seeds, the slowest runs."""
    rows = [json.loads(x) for x in Path(log).read_text().splitlines() if x.strip()]
    kinds = sorted({r["kind"].split("/")[0] for r in rows})
    outcomes = ["ok", "error", *FAILURES] + sorted({r["outcome"] for r in rows} - {"ok", "error", *FAILURES})
    count = collections.Counter((r["outcome"], r["kind"].split("/")[0]) for r in rows)
    lines = ["| outcome | all | " + " | ".join(kinds) + " |", "|---" * (len(kinds) + 2) + "|"]
    for o in outcomes:
        lines.append(f"| {o} | {sum(count[o, k] for k in kinds):,} | " + " | ".join(f"{count[o, k]:,}" for k in kinds) + " |")
    lines.append(f"| runs | {len(rows):,} | " + " | ".join(f"{sum(count[o, k] for o in outcomes):,}" for k in kinds) + " |")
    seeds = sorted(r["seed"] for r in rows)
    wall = max(rows, key=lambda r: r["seconds"])
    cpu = max(rows, key=lambda r: r["cpu"] or 0.0)
    lines += ["", (f"Seeds {seeds[0]}–{seeds[-1]} ({len(seeds):,} runs). Slowest run: {wall['seconds']:.1f} s wall "
                   f"(`{shlex.join(wall['args'])}`); most CPU: {cpu['cpu'] or 0:.1f} s (`{shlex.join(cpu['args'])}`).")]
    return "\n".join(lines)


def _serve(spec: str) -> int:
    a = json.loads(spec)
    _fork_server(a["seeds"], lambda s: _one(s, a["timeout"], a["scratch"], a["repro"], a["wall"], "fork"))
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--serve"]:  # internal: a fork server started by campaign()
        return _serve(argv[1])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", choices=sorted(PROFILES), default="ci")
    ap.add_argument("--runs", type=int, help="override the profile's number of runs")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--timeout", type=float, help="CPU seconds per run before it counts as a hang (default 60)")
    ap.add_argument("--wall", type=float, default=WALL_LIMIT,
                    help=f"wall-clock seconds per run before it counts as blocked (default {WALL_LIMIT:.0f})")
    ap.add_argument("--isolation", choices=("fork", "spawn"), default="fork",
                    help="fork: fork servers that import ridgeline once (default); spawn: a fresh interpreter per run")
    ap.add_argument("--repro", help="save each distinct failure here")
    ap.add_argument("--log", help="append one JSON line per run to this file")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--table", metavar="LOG", help="print the markdown table of a --log file and exit")
    args = ap.parse_args(argv)
    if args.table:
        print(table(args.table))
        return 0
    prof = PROFILES[args.profile]
    res = campaign(args.runs or prof["runs"], seed=args.seed, jobs=args.jobs, timeout=args.timeout or prof["timeout"],
                   repro=args.repro, progress=not args.json, log=args.log, wall=args.wall, isolation=args.isolation)
    if args.json:
        print(json.dumps(res, indent=1))
    else:
        print(f"{res['runs']} hostile commands in {res['seconds']:.0f} s ({res['isolation']}; slowest run "
              f"{res['slowest_run_s']:.1f} s, {res['slowest_cpu_s']:.1f} CPU s)")
        print(f"{'outcome':<18}{'runs':>8}")
        for k in ["ok", "error", *FAILURES]:
            print(f"{k:<18}{res['outcomes'].get(k, 0):>8}")
        for k, v in sorted(res["outcomes"].items()):
            if k not in ("ok", "error", *FAILURES):
                print(f"{k:<18}{v:>8}")
        print("by mutator: " + "; ".join(f"{k}: {dict(v)}" for k, v in sorted(res["by_mutator"].items())))
        for sig, info in res["distinct_failures"].items():
            print(f"FAIL {sig}\n     ridgeline {shlex.join(info['args'])}  {info['repro'] or ''}")
    return 1 if res["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
