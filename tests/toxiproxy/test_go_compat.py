"""Go's texts and arithmetic the server reproduces: JSON errors, float32 echoes, addresses, slicing.

Pure functions: no sockets, no time.
"""

from __future__ import annotations

import random

import pytest

from simulators.toxiproxy._addr import AddressError, split_host_port
from simulators.toxiproxy._gojson import (
    FLOAT32,
    INT64,
    STRING,
    GoJSONError,
    GoPtr,
    GoSlice,
    GoStruct,
    decode,
    encode,
    format_float32,
    parse,
)
from simulators.toxiproxy.toxics import slice_points

POINT = GoStruct("pkg.Point", "Point", (("x", INT64), ("name", STRING), ("inner", GoStruct("pkg.In", "In", (
    ("v", FLOAT32),)))))


@pytest.mark.parametrize(("body", "message"), [
    (b"", "EOF"),
    (b" \n\t", "EOF"),
    (b"{", "unexpected EOF"),
    (b'{"a": tru', "unexpected EOF"),
    (b"x", "invalid character 'x' looking for beginning of value"),
    (b"{x", "invalid character 'x' looking for beginning of object key string"),
    (b'{"a" 1}', "invalid character '1' after object key"),
    (b'{"a": 1 2}', "invalid character '2' after object key:value pair"),
    (b"[1 2]", "invalid character '2' after array element"),
    (b"[1,]", "invalid character ']' looking for beginning of value"),
    (b'"a\x01"', "invalid character '\\x01' in string literal"),
    (b'"\\q"', "invalid character 'q' in string escape code"),
    (b'"\\u12x4"', "invalid character 'x' in \\u hexadecimal character escape"),
    (b"-x", "invalid character 'x' in numeric literal"),
    (b"1.x", "invalid character 'x' after decimal point in numeric literal"),
    (b"1ex", "invalid character 'x' in exponent of numeric literal"),
    (b"fals3", "invalid character '3' in literal false (expecting 'e')"),
    (b"NaN", "invalid character 'N' looking for beginning of value"),
    (b"'a'", "invalid character '\\'' looking for beginning of value"),
    (b"\xef\xbb\xbf{}", "invalid character '\u00ef' looking for beginning of value"),
    (b"[" * 10001, "invalid character '[' exceeded max depth"),
])
def test_syntax_errors_read_like_go(body: bytes, message: str) -> None:
    with pytest.raises(GoJSONError) as error:
        parse(body)
    assert str(error.value) == message


def test_only_the_first_value_is_read() -> None:
    assert decode(parse(b'{"x": 1} trailing garbage'), POINT) == {"x": 1}
    assert decode(parse(b"0123"), GoPtr(INT64)) == 0


@pytest.mark.parametrize(("body", "message"), [
    (b'{"x": "1"}', "json: cannot unmarshal string into Go struct field Point.x of type int64"),
    (b'{"x": 1.0}', "json: cannot unmarshal number 1.0 into Go struct field Point.x of type int64"),
    (b'{"x": 9223372036854775808}',
     "json: cannot unmarshal number 9223372036854775808 into Go struct field Point.x of type int64"),
    (b'{"name": 5}', "json: cannot unmarshal number into Go struct field Point.name of type string"),
    (b'{"inner": {"v": "x"}}', "json: cannot unmarshal string into Go struct field In.inner.v of type float32"),
    (b'{"inner": {"v": 1e39}}', "json: cannot unmarshal number 1e39 into Go struct field In.inner.v of type float32"),
    (b'{"inner": []}', "json: cannot unmarshal array into Go struct field Point.inner of type pkg.In"),
    (b'{"x": "first", "name": 1}', "json: cannot unmarshal string into Go struct field Point.x of type int64"),
    (b"true", "json: cannot unmarshal bool into Go value of type pkg.Point"),
])
def test_type_errors_read_like_go(body: bytes, message: str) -> None:
    with pytest.raises(GoJSONError) as error:
        decode(parse(body), POINT)
    assert str(error.value) == message


def test_decoding_follows_go_rules() -> None:
    assert decode(parse(b'{"X": 1, "NAME": "n", "x": 2, "other": [1]}'), POINT) == {"x": 2, "name": "n"}
    assert decode(parse(b'{"x": 1, "x": null}'), POINT) == {"x": 1}  # null leaves a value alone
    assert decode(parse(b'{"inner": {"v": 1}, "inner": {}}'), POINT) == {"inner": {"v": 1.0}}  # structs merge
    assert decode(parse(b"null"), POINT) is None
    assert decode(parse(b'[{"x": 1}, null]'), GoSlice(POINT)) == [{"x": 1}, None]
    with pytest.raises(GoJSONError, match=r"Go value of type pkg\.Point"):
        decode(parse(b"[1]"), GoSlice(POINT))


@pytest.mark.parametrize(("value", "text"), [
    (1.0, "1"), (0.2, "0.2"), (0.5, "0.5"), (0.0, "0"), (-0.0, "-0"), (1e20, "100000000000000000000"),
    (1e21, "1e+21"), (1e-7, "1e-7"), (1.5e-7, "1.5e-7"), (123.456, "123.456"), (16777217.0, "16777216"),
])
def test_float32_echo_matches_go(value: float, text: str) -> None:
    assert format_float32(value) == text


def test_encoding_escapes_like_go() -> None:
    encoded = encode({"a": "<b>&\u2028", "n": None, "l": [True, 1]})
    assert encoded == '{"a":"\\u003cb\\u003e\\u0026\\u2028","n":null,"l":[true,1]}'
    assert encode("é\n") == '"é\\n"'


@pytest.mark.parametrize(("address", "error"), [
    ("local373", "address local373: missing port in address"),
    ("a:b:c", "address a:b:c: too many colons in address"),
    ("[::1", "address [::1: missing ']' in address"),
    ("[::1]", "address [::1]: missing port in address"),
    ("[::1]x:1", "address [::1]x:1: missing port in address"),
    ("[::1]:1:2", "address [::1]:1:2: too many colons in address"),
    ("a[b:1", "address a[b:1: unexpected '[' in address"),
    ("ab]:1", "address ab]:1: unexpected ']' in address"),
])
def test_addresses_split_like_go(address: str, error: str) -> None:
    with pytest.raises(AddressError) as raised:
        split_host_port(address)
    assert str(raised.value) == error


def test_addresses_that_split() -> None:
    assert split_host_port("localhost:80") == ("localhost", "80")
    assert split_host_port("[::1]:80") == ("::1", "80")
    assert split_host_port(":0") == ("", "0")


@pytest.mark.parametrize(("average", "variation"), [(0, 0), (0, 5), (-1, 0), (1, 0), (2, 1), (5, 10), (1024, 512)])
@pytest.mark.parametrize("size", [1, 2, 21, 1000, 4096])
def test_slicing_reassembles_for_any_attributes(average: int, variation: int, size: int) -> None:
    pieces = slice_points(size, average, variation, random.Random(1))
    assert (pieces[0][0], pieces[-1][1]) == (0, size)
    assert all(a < b for a, b in pieces)
    assert all(pieces[i][1] == pieces[i + 1][0] for i in range(len(pieces) - 1))


def test_slicing_sizes_follow_the_average() -> None:
    pieces = slice_points(480_000, 1024, 512, random.Random(2))
    assert 240 <= len(pieces) <= 720  # Toxiproxy's TestSlicerToxic bounds
    assert all(end - start <= 1024 + 512 for start, end in pieces)
    assert len(slice_points(24, 1, 0, random.Random(3))) == 24
