"""Parser for the text form written by ``printer.py``; errors carry line:column.

``parse_graph(text, sidecar=...)`` builds a ``Graph`` and verifies it; a verifier complaint about
a node is reported at that node's line.
"""

from __future__ import annotations

import base64
import re
from typing import Any, Callable, Mapping

import numpy as np

from .dims import check_dim
from .dtypes import DTYPES
from .errors import IRError, ParseError, UnsupportedOpError, VerifyError
from .graph import Graph, Value
from .types import TensorType

__all__ = ["parse_graph"]

_TOKEN = re.compile(r"""
    (?P<ws>[ \t\r\n]+|//[^\n]*)
  | (?P<elided><elided[^>]*>)
  | (?P<arrow>->)
  | (?P<value>%(?:[A-Za-z0-9_.$-]+|"(?:[^"\\\n]|\\.)*"))
  | (?P<gname>@(?:[A-Za-z0-9_.$-]+|"(?:[^"\\\n]|\\.)*"))
  | (?P<num>-?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?|-inf\b)
  | (?P<str>"(?:[^"\\\n]|\\.)*")
  | (?P<ident>[A-Za-z_][A-Za-z0-9_.]*)
  | (?P<punct>[()\[\]{}<>,:=])
""", re.VERBOSE | re.ASCII)  # ASCII: `\d` must not take ٣ or ２ as digits

#: nesting deeper than this (lists, dicts, fused bodies) is refused: no real graph comes close, and
#: recursion must end long before Python's limit
MAX_DEPTH = 100
#: longest integer literal (int64 needs 19 digits; Python refuses int() of 4,300+ digits)
_MAX_INT_DIGITS = 24
#: the largest dim and element count a declared type may have (as the ONNX importer refuses)
MAX_DIM, MAX_ELEMENTS = 2 ** 40, 2 ** 48


class _Tok:
    __slots__ = ("kind", "text", "line", "col")

    def __init__(self, kind, text, line, col):
        self.kind, self.text, self.line, self.col = kind, text, line, col

    def __repr__(self):
        return f"{self.kind}:{self.text!r}"


def _tokenize(text: str, source: str) -> list[_Tok]:
    toks, pos, line, line_start = [], 0, 1, 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise ParseError(f"unexpected character {text[pos]!r}", line, pos - line_start + 1, source)
        kind = m.lastgroup
        tok_text = m.group()
        if kind != "ws":
            toks.append(_Tok(kind, tok_text, line, pos - line_start + 1))
        nl = tok_text.count("\n")
        if nl:
            line += nl
            line_start = pos + tok_text.rfind("\n") + 1
        pos = m.end()
    toks.append(_Tok("eof", "", line, pos - line_start + 1))
    return toks


def _unquote(s: str) -> str:
    import json
    try:
        return json.loads(s)
    except ValueError:
        return s[1:-1]


class _Parser:
    def __init__(self, text: str, source: str, sidecar: Mapping[str, np.ndarray] | None):
        self.toks = _tokenize(text, source)
        self.i = 0
        self.source = source
        self.sidecar = sidecar
        self.node_pos: dict[int, tuple[int, int]] = {}
        self.depth = 0

    def enter(self) -> None:
        """One level deeper (a list, a dict, a body); refused past ``MAX_DEPTH``."""
        self.depth += 1
        if self.depth > MAX_DEPTH:
            self.error(f"nested more than {MAX_DEPTH} levels deep")

    # ------------------------------------------------------------------ token helpers
    @property
    def tok(self) -> _Tok:
        return self.toks[self.i]

    def error(self, message: str, tok: _Tok | None = None):
        t = tok or self.tok
        raise ParseError(message, t.line, t.col, self.source)

    def _describe(self, t: _Tok) -> str:
        return "end of input" if t.kind == "eof" else repr(t.text)

    def next(self) -> _Tok:
        t = self.toks[self.i]
        self.i += 1
        return t

    def items(self, close: str, item: Callable[[], Any]) -> list:
        """``item()`` for each of the comma-separated items before ``close`` (not consumed)."""
        out = []
        if not self.at(close):
            out.append(item())
            while self.accept(","):
                out.append(item())
        return out

    def bracketed(self, item: Callable[[], Any]) -> list:
        """A ``[...]`` list after its ``[``: one level deeper, each element by ``item()``."""
        self.enter()
        out = self.items("]", item)
        self.expect("]")
        self.depth -= 1
        return out

    def at(self, text: str) -> bool:
        t = self.tok
        return t.text == text and t.kind in ("punct", "ident", "arrow")

    def expect(self, text: str) -> _Tok:
        if not self.at(text):
            self.error(f"expected {text!r}, found {self._describe(self.tok)}")
        return self.next()

    def expect_kind(self, kind: str, what: str) -> _Tok:
        if self.tok.kind != kind:
            self.error(f"expected {what}, found {self._describe(self.tok)}")
        return self.next()

    def accept(self, text: str) -> bool:
        if self.at(text):
            self.i += 1
            return True
        return False

    # ------------------------------------------------------------------ grammar
    def parse_module(self) -> Graph:
        g = self.parse_graph()
        if self.tok.kind != "eof":
            self.error(f"unexpected {self._describe(self.tok)} after the graph")
        return g

    def _name(self, tok: _Tok) -> str:
        body = tok.text[1:]
        return _unquote(body) if body.startswith('"') else body

    def parse_graph(self) -> Graph:
        self.enter()
        g = self._parse_graph()
        self.depth -= 1
        return g

    def _parse_graph(self) -> Graph:
        self.expect("graph")
        g = Graph(self._name(self.expect_kind("gname", "a graph name like @main")))
        self.expect("(")

        def declared(what: str) -> tuple[_Tok, TensorType]:
            t = self.expect_kind("value", what)
            self.expect(":")
            return t, self.parse_type()

        def graph_input() -> None:
            t, typ = declared("an input like %x")
            if g.has_value(self._name(t)):
                self.error(f"input %{self._name(t)} is declared twice", t)
            g.add_input(self._name(t), typ)

        self.items(")", graph_input)
        self.expect(")")
        self.expect("->")
        self.expect("(")
        declared_outputs = self.items(")", lambda: declared("an output like %y"))
        self.expect(")")
        self.expect("{")
        while True:
            t = self.tok
            if self.accept("return"):
                g.outputs = self.items("}", lambda: self.lookup(g, self.expect_kind("value",
                                                                                   "a returned value like %y")))
                self.expect("}")
                break
            if self.accept("meta"):
                g.meta.update(self.parse_dict())
            elif self.accept("const"):
                self.parse_const(g)
            elif t.kind == "value":
                self.parse_node(g)
            else:
                self.error(f"expected a node, 'const', 'meta' or 'return', found {self._describe(t)}")
        if len(declared_outputs) != len(g.outputs):
            self.error(f"graph @{g.name} declares {len(declared_outputs)} outputs but returns {len(g.outputs)}")
        for (t, typ), v in zip(declared_outputs, g.outputs):
            if self._name(t) != v.name or typ != v.type:
                self.error(f"declared output {t.text}: {typ} does not match returned %{v.name}: {v.type}", t)
        return g

    def lookup(self, g: Graph, t: _Tok) -> Value:
        name = self._name(t)
        if not g.has_value(name):
            self.error(f"use of undefined value %{name}", t)
        return g.value(name)

    def parse_type(self) -> TensorType:
        t = self.expect_kind("ident", "a dtype like f32")
        if t.text not in DTYPES:
            self.error(f"unknown dtype {t.text!r} (known: {', '.join(DTYPES)})", t)
        self.expect("[")
        dims = self.items("]", self._dim)
        self.expect("]")
        if len(dims) > 64:
            self.error(f"rank {len(dims)} is beyond any real tensor", t)
        numel = 1
        for d in dims:
            numel *= d if isinstance(d, int) else 1
        if numel > MAX_ELEMENTS:
            self.error(f"{numel:.3g} elements is beyond any real tensor", t)
        return TensorType(DTYPES[t.text], tuple(dims))

    def parse_const(self, g: Graph) -> None:
        t = self.expect_kind("value", "a constant name like %w")
        name = self._name(t)
        if g.has_value(name):
            self.error(f"value %{name} is defined twice", t)
        self.expect(":")
        typ = self.parse_type()
        data = None
        if self.accept("="):
            data = self.parse_data(typ, name)
        v = g.add_constant(name, data, type=typ)
        if self.accept("meta"):
            v.meta.update(self.parse_dict())

    def parse_data(self, typ: TensorType, name: str) -> np.ndarray:
        t = self.tok
        if t.kind == "elided":
            self.error(f"the data of constant %{name} was elided when this text was printed; print "
                       f"with the data (ridgeline ir MODEL -o file.rir) to get a runnable file")
        if t.kind == "gname" and t.text == "@sidecar":
            self.next()
            if self.sidecar is None:
                self.error(f"constant %{name} lives in a sidecar file, but none was given (is the "
                           f".rir.npz next to the .rir?)", t)
            if name not in self.sidecar:
                self.error(f"constant %{name} is missing from the sidecar file", t)
            arr = np.asarray(self.sidecar[name])
            if arr.dtype != typ.dtype.np_dtype and arr.dtype.kind == "V" and arr.dtype.itemsize == typ.dtype.np_dtype.itemsize:
                arr = arr.view(typ.dtype.np_dtype)
            if tuple(arr.shape) != typ.shape or arr.dtype != typ.dtype.np_dtype:
                self.error(f"sidecar data of %{name} is {arr.dtype}{list(arr.shape)}, its type says {typ}", t)
            return arr
        if not typ.is_static:
            self.error(f"constant %{name} has data but a symbolic shape {typ}", t)
        if self.accept("dense"):
            return self.parse_dense(typ, name, t)
        value = self.parse_literal()
        try:
            arr = np.array(value, dtype=np.float64 if typ.dtype.is_float else None)
            with np.errstate(all="ignore"):  # out-of-range values are reported below, not warned about
                cast = arr.astype(typ.dtype.np_dtype)
        except (ValueError, TypeError, OverflowError) as e:
            self.error(f"bad data for constant %{name}: {e}", t)
        if arr.dtype.kind == "O" or not _fits(arr, cast):
            self.error(f"data of constant %{name} does not fit {typ.dtype}", t)
        arr = cast
        if tuple(arr.shape) != typ.shape:
            self.error(f"constant %{name} has {list(arr.shape)} data, its type says {typ}", t)
        return arr

    def parse_dense(self, typ: TensorType, name: str, at: _Tok) -> np.ndarray:
        self.expect("<")
        s = self.expect_kind("str", "a base64 string")
        self.expect(">")
        try:
            raw = base64.b64decode(_unquote(s.text), validate=True)
        except ValueError:
            self.error(f"constant %{name}: malformed base64 data", s)
        itemsize = typ.dtype.np_dtype.itemsize
        expected = int(np.prod(typ.shape, dtype=np.int64)) * itemsize
        if len(raw) != expected:
            self.error(f"constant %{name}: {len(raw)} bytes of data, its type {typ} needs {expected}", s)
        return np.frombuffer(raw, dtype=typ.dtype.np_dtype).reshape(typ.shape).copy()

    def _dim(self) -> int | str:
        d = self.next()
        if d.kind == "num" and re.fullmatch(r"\d+", d.text):
            if len(d.text) > 13 or int(d.text) > MAX_DIM:
                self.error(f"dimension {d.text[:20]} is beyond any real tensor (limit 2^40)", d)
            return int(d.text)
        if d.kind == "ident":
            return d.text
        if d.kind == "str":
            try:
                return check_dim(_unquote(d.text))
            except IRError as e:
                self.error(str(e), d)
        self.error(f"expected a dimension (a size or a name), found {self._describe(d)}", d)

    def parse_literal(self) -> Any:
        t = self.tok
        if self.accept("["):
            return self.bracketed(self.parse_literal)
        if t.kind == "num":
            self.next()
            if re.fullmatch(r"-?\d+", t.text):
                if len(t.text) > _MAX_INT_DIGITS:
                    self.error(f"integer {t.text[:20]}... has more digits than any dtype holds", t)
                return int(t.text)
            return float(t.text)
        if t.kind == "ident" and t.text in ("inf", "nan", "true", "false", "none"):
            self.next()
            return {"inf": float("inf"), "nan": float("nan"), "true": True, "false": False, "none": None}[t.text]
        self.error(f"expected a number or a list, found {self._describe(t)}")

    def parse_value(self) -> Any:
        """An attribute or meta value."""
        t = self.tok
        if t.kind == "str":
            self.next()
            return _unquote(t.text)
        if self.at("{"):
            return self.parse_dict()
        if self.at("tensor"):
            self.next()
            self.expect("<")
            typ = self.parse_type()
            self.expect("=")
            arr = self.parse_data(typ, "attribute")
            self.expect(">")
            return arr
        if self.accept("["):
            return self.bracketed(self.parse_value)
        return self.parse_literal()

    def parse_dict(self) -> dict:
        self.expect("{")
        self.enter()
        out: dict[str, Any] = {}

        def entry() -> None:
            k = self.next()
            if k.kind not in ("ident", "str"):
                self.error(f"expected a key, found {self._describe(k)}", k)
            key = k.text if k.kind == "ident" else _unquote(k.text)
            if key in out:
                self.error(f"key {key!r} is given twice", k)
            self.expect("=")
            out[key] = self.parse_value()

        self.items("}", entry)
        self.expect("}")
        self.depth -= 1
        return out

    def parse_node(self, g: Graph) -> None:
        start = self.tok
        out_toks = []
        while True:
            out_toks.append(self.expect_kind("value", "a result like %y"))
            if not self.accept(","):
                break
        self.expect("=")
        op_tok = self.expect_kind("ident", "an op name")
        from .ops.registry import find_spec
        if find_spec(op_tok.text) is None:
            self.error(f"unknown op {op_tok.text!r}", op_tok)
        self.expect("(")
        inputs: list[Value | None] = self.items(")", lambda: None if self.accept("none") else self.lookup(
            g, self.expect_kind("value", "an operand like %x")))
        self.expect(")")
        attrs = self.parse_dict() if self.at("{") else {}
        self.expect(":")
        types = [self.parse_type()]
        while self.accept(","):
            types.append(self.parse_type())
        if len(types) != len(out_toks):
            self.error(f"{len(out_toks)} results but {len(types)} types", op_tok)
        meta = self.parse_dict() if self.accept("meta") else None
        body = None
        if self.accept("body"):
            body = self.parse_graph()
        names = []
        for t in out_toks:
            name = self._name(t)
            if g.has_value(name) or name in names:
                self.error(f"value %{name} is defined twice", t)
            names.append(name)
        try:
            node = g.add_node(op_tok.text, inputs, attrs, outputs=types, names=names, body=body, meta=meta)
        except IRError as e:
            self.error(str(e), op_tok)
        self.node_pos[id(node)] = (start.line, start.col)


def parse_graph(text: str, *, sidecar: Mapping[str, np.ndarray] | None = None, source: str = "<text>",
                verify: bool = True) -> Graph:
    """Parse the text form into a ``Graph`` (verified unless ``verify=False``)."""
    p = _Parser(text, source, sidecar)
    g = p.parse_module()
    if verify:
        try:
            g.verify()
        except VerifyError as e:
            node = e.node
            pos = p.node_pos.get(id(node)) if node is not None else None
            if pos is not None:
                raise ParseError(str(e), pos[0], pos[1], source) from None
            raise ParseError(str(e), 1, 1, source) from None
        except UnsupportedOpError as e:  # pragma: no cover - caught per node above
            raise ParseError(str(e), 1, 1, source) from None
    return g


def _fits(value: np.ndarray, cast: np.ndarray) -> bool:
    """True when casting ``value`` to ``cast``'s dtype kept every value (up to float rounding):
    no finite float became inf, no integer wrapped around."""
    if value.size == 0:
        return True
    if cast.dtype.kind in "iub":
        return bool(np.array_equal(cast.astype(value.dtype), value)) or cast.dtype.kind == "b"
    with np.errstate(all="ignore"):
        widened = cast.astype(np.float64)
    finite = np.isfinite(value.astype(np.float64))
    return bool(np.all(np.isfinite(widened[finite])))

