"""JSON the way Toxiproxy's Go server reads and writes it, so error bodies and echoes match byte for byte.

Toxiproxy decodes request bodies with Go's `encoding/json` `Decoder` and answers a bad body with
`bad request body: <Go's error text>`; clients and the conformance suite compare those texts. This
module reproduces, for the shapes the API accepts:

- syntax: only the first JSON value is read (trailing bytes are ignored); an empty body is `EOF`, a
  truncated one `unexpected EOF`, anything else Go's scanner message (`invalid character 'x' looking
  for beginning of value`). Valid bodies are parsed by the stdlib `json` (C speed); only a body it
  rejects is re-scanned by `_goscan`, a port of Go's `scanner.go` state machine, for the message.
- typed decoding into Go types (`GoStruct`, `GoPtr`, scalars): keys match fields exactly, else
  ASCII-case-insensitively; duplicate keys: the last wins (structs merge); `null` leaves a value as
  it was; unknown keys are ignored; the first wrong type is reported as Go's `UnmarshalTypeError`
  (`json: cannot unmarshal string into Go struct field LatencyToxic.attributes.latency of type int64`).
- encoding: Go's string escaping (`<`, `>`, `&`, U+2028/9 as `\\u....`) and float32 formatting.

Hand-written because no Python library reproduces Go's messages; it is kept to what the API needs.
"""

from __future__ import annotations

import json
import math
import re
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NoReturn

from simulators.toxiproxy._goscan import syntax_error


class GoJSONError(ValueError):
    """A body Go's decoder would reject; `str()` is Go's error text."""


class Number(str):
    """A JSON number, kept as its literal text (Go reports `number 1.5` when it does not fit)."""


class JSONObject(list[tuple[str, Any]]):
    """A JSON object as its (key, value) pairs in document order, duplicates included."""


class Float32(float):
    """A float32 value: encoded with Go's shortest float32 formatting."""


def _no_constants(name: str) -> NoReturn:
    raise ValueError(name)


_DECODER = json.JSONDecoder(object_pairs_hook=JSONObject, parse_int=Number, parse_float=Number,
                            parse_constant=_no_constants)
_SPACE = frozenset(b" \t\r\n")


def parse(body: bytes) -> Any:
    """The first JSON value in `body`, as Go's `json.Decoder.Decode` would read it."""
    start = 0
    while start < len(body) and body[start] in _SPACE:
        start += 1
    if start == len(body):
        raise GoJSONError("EOF")
    text = body.decode("utf-8", "replace")
    try:
        value, end = _DECODER.raw_decode(text, len(text) - len(text.lstrip(" \t\r\n")))
    except (ValueError, RecursionError):
        raise GoJSONError(syntax_error(body)) from None
    if isinstance(value, Number) and text[end:end + 1] in (".", "e", "E"):  # Python stopped inside a bad number
        raise GoJSONError(syntax_error(body))
    return value


# --------------------------------------------------------------------------- typed decoding


@dataclass(frozen=True)
class GoScalar:
    """string, bool, int, int64 or float32."""

    name: str


@dataclass(frozen=True)
class GoPtr:
    """A pointer: `null` resets it to nil (the key reads as absent)."""

    elem: GoType


@dataclass(frozen=True)
class GoSlice:
    elem: GoType


@dataclass(frozen=True)
class GoStruct:
    """`type_name` as Go's reflect prints it; `short` is its `Name()` ("" for an anonymous struct)."""

    type_name: str
    short: str
    fields: tuple[tuple[str, GoType], ...] = field(default_factory=tuple)


GoType = GoScalar | GoPtr | GoSlice | GoStruct
STRING, BOOL, INT, INT64, FLOAT32 = (GoScalar(n) for n in ("string", "bool", "int", "int64", "float32"))
_INT64_RANGE = range(-(2**63), 2**63)


@dataclass
class _Context:
    struct: str | None = None
    stack: tuple[str, ...] = ()
    error: str | None = None

    def type_error(self, what: str, go_type: GoType) -> None:
        if self.error is not None:
            return
        shown = _type_string(go_type)
        if self.struct is not None or self.stack:
            where = f"Go struct field {self.struct or ''}.{'.'.join(self.stack)}"
        else:
            where = "Go value"
        self.error = f"json: cannot unmarshal {what} into {where} of type {shown}"


def _type_string(go_type: GoType) -> str:
    if isinstance(go_type, GoScalar):
        return go_type.name
    if isinstance(go_type, GoStruct):
        return go_type.type_name
    if isinstance(go_type, GoSlice):
        return "[]" + _type_string(go_type.elem)
    return _type_string(go_type.elem)  # Go reports the pointed-to type


def _kind(value: Any) -> str:
    if isinstance(value, JSONObject):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, Number):
        return "number"
    return "string"


def _fold(name: str) -> str:
    return name.lower().replace("ſ", "s").replace("K", "k")


def decode(value: Any, go_type: GoType) -> Any:
    """`value` (from `parse`) decoded into `go_type`; raises `GoJSONError` with Go's type error.

    Structs decode to a dict of the fields that were set (absent keys and `null`s are missing).
    """
    context = _Context()
    result = _decode(value, go_type, context, None)
    if context.error is not None:
        raise GoJSONError(context.error)
    return result


def _decode(value: Any, go_type: GoType, ctx: _Context, into: Any) -> Any:
    if value is None:
        return None if isinstance(go_type, GoPtr) else into
    if isinstance(go_type, GoPtr):
        return _decode(value, go_type.elem, ctx, into)
    if isinstance(go_type, GoStruct):
        if not isinstance(value, JSONObject):
            ctx.type_error(_kind(value), go_type)
            return into
        return _decode_struct(value, go_type, ctx, dict(into) if isinstance(into, dict) else {})
    if isinstance(go_type, GoSlice):
        if not isinstance(value, list) or isinstance(value, JSONObject):
            ctx.type_error(_kind(value), go_type)
            return into
        return [_decode(item, go_type.elem, ctx, None) for item in value]
    return _decode_scalar(value, go_type, ctx, into)


def _decode_struct(value: JSONObject, go_type: GoStruct, ctx: _Context, out: dict[str, Any]) -> dict[str, Any]:
    exact = dict(go_type.fields)
    folded = {_fold(name): name for name, _ in go_type.fields}
    for key, item in value:
        name = key if key in exact else folded.get(_fold(key))
        if name is None:
            continue
        saved = (ctx.struct, ctx.stack)
        ctx.struct, ctx.stack = go_type.short, (*ctx.stack, name)
        decoded = _decode(item, exact[name], ctx, out.get(name))
        ctx.struct, ctx.stack = saved
        if decoded is None:
            out.pop(name, None)
        else:
            out[name] = decoded
    return out


def _decode_scalar(value: Any, go_type: GoScalar, ctx: _Context, into: Any) -> Any:
    kind = _kind(value)
    if go_type.name == "string":
        if kind == "string":
            return value
    elif go_type.name == "bool":
        if kind == "bool":
            return value
    elif kind == "number":
        if go_type.name == "float32":
            as_float = float(value)
            if math.isinf(as_float) or abs(as_float) > 3.4028234663852886e38:
                ctx.type_error(f"number {value}", go_type)
                return into
            return Float32(struct.unpack("f", struct.pack("f", as_float))[0])
        if re.fullmatch(r"-?\d+", value) and int(value) in _INT64_RANGE:
            return int(value)
        ctx.type_error(f"number {value}", go_type)
        return into
    ctx.type_error(kind, go_type)
    return into


# --------------------------------------------------------------------------- encoding


_HTML_UNSAFE = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_HTML_UNSAFE_RE = re.compile("[<>&\u2028\u2029]")


def encode(value: Any) -> str:
    """Go's `json.Marshal` for dicts (in insertion order), lists, str, bool, None, int and Float32."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Float32):
        return format_float32(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        text = json.dumps(value.encode("utf-8", "replace").decode("utf-8"), ensure_ascii=False)
        return _HTML_UNSAFE_RE.sub(lambda m: _HTML_UNSAFE[m.group()], text)
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{encode(str(k))}:{encode(v)}" for k, v in value.items()) + "}"
    if isinstance(value, Sequence):
        return "[" + ",".join(encode(v) for v in value) + "]"
    raise TypeError(f"cannot encode {type(value).__name__}")


def format_float32(value: float) -> str:
    """Go's `strconv.FormatFloat(v, 'f' or 'e', -1, 32)` as `encoding/json` picks it."""
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    as32 = struct.unpack("f", struct.pack("f", value))[0]
    for digits in range(1, 10):
        text = f"{as32:.{digits}g}"
        if struct.unpack("f", struct.pack("f", float(text)))[0] == as32:
            break
    if abs(as32) < 1e-6 or abs(as32) >= 1e21:
        mantissa, exponent = f"{Decimal(text):e}".split("e")
        return f"{mantissa}e{'-' if exponent.startswith('-') else '+'}{int(exponent.lstrip('+-')):02d}".replace(
            "e-0", "e-").replace("e+0", "e+")
    plain = format(Decimal(text), "f")
    return plain.rstrip("0").rstrip(".") if "." in plain else plain
