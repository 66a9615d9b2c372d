"""Go's `encoding/json` scanner, reduced to the one thing the server needs: the error text of a bad body.

A port of Go's `scanner.go` state machine (same states, same messages, same 10 000 nesting limit),
run only on a body Python's `json` already rejected, to say what Go's `json.Decoder` would say:
`invalid character 'x' looking for beginning of value`, or `unexpected EOF` for a body cut short.
Runs of plain string bytes are skipped with a regex, so a large body is scanned quickly.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import NoReturn

_SPACE = frozenset(b" \t\r\n")


def syntax_error(body: bytes) -> str:
    """Go's `json.Decoder.Decode` error for `body`, which is known not to be valid JSON."""
    return _GoScanner().error_for(body)


def _quote_char(c: int) -> str:
    if c == 0x27:
        return "'\\''"
    if c == 0x22:
        return "'\"'"
    ch = chr(c)
    if ch.isprintable():
        return f"'{ch}'"
    escapes = {7: "\\a", 8: "\\b", 12: "\\f", 10: "\\n", 13: "\\r", 9: "\\t", 11: "\\v"}
    return "'" + escapes.get(c, f"\\x{c:02x}" if c < 0x80 else f"\\u{c:04x}") + "'"


_PLAIN_STRING = re.compile(rb'[^"\\\x00-\x1f]+')
_HEX = frozenset(b"0123456789abcdefABCDEF")
_DIGITS = frozenset(b"0123456789")
_LITERALS = {ord("t"): b"true", ord("f"): b"false", ord("n"): b"null"}
_MAX_DEPTH = 10000


class _Stop(Exception):
    def __init__(self, message: str | None) -> None:
        self.message = message


class _GoScanner:
    """Go's `encoding/json` scanner, reduced to finding the error a `Decoder` reports first."""

    def __init__(self) -> None:
        self.stack: list[str] = []  # "key" | "value" | "array"
        self.step: Callable[[int], None] = self._begin_value
        self._hex_left = 0

    def _fail(self, c: int, context: str) -> NoReturn:
        raise _Stop(f"invalid character {_quote_char(c)} {context}")

    def error_for(self, body: bytes) -> str:
        i, n = 0, len(body)
        try:
            while i < n:
                if self.step == self._in_string:
                    plain = _PLAIN_STRING.match(body, i)
                    if plain:
                        i = plain.end()
                        continue
                self.step(body[i])
                i += 1
        except _Stop as stop:
            if stop.message is not None:
                return stop.message
            return "invalid JSON"  # Go accepts what Python rejected: only deeper than Python recurses
        try:
            self.step(0x20)  # at EOF Go's Decoder feeds a space: a value ends, or the body was cut short
        except _Stop as stop:
            if stop.message is None:
                return "invalid JSON"
        return "unexpected EOF"

    # values
    def _begin_value(self, c: int) -> None:
        if c in _SPACE:
            return
        if c == ord("{"):
            self._push("key", c)
            self.step = self._begin_key_or_empty
        elif c == ord("["):
            self._push("array", c)
            self.step = self._begin_value_or_empty
        elif c == ord('"'):
            self.step = self._in_string
        elif c == ord("-"):
            self.step = self._neg
        elif c == ord("0"):
            self.step = self._zero
        elif c in _LITERALS:
            self._literal(_LITERALS[c], 1)
        elif ord("1") <= c <= ord("9"):
            self.step = self._digits
        else:
            self._fail(c, "looking for beginning of value")

    def _push(self, state: str, c: int) -> None:
        if len(self.stack) >= _MAX_DEPTH:
            self._fail(c, "exceeded max depth")
        self.stack.append(state)

    def _begin_value_or_empty(self, c: int) -> None:
        if c in _SPACE:
            return
        if c == ord("]"):
            self._end_value(c)
        else:
            self._begin_value(c)

    def _begin_key_or_empty(self, c: int) -> None:
        if c in _SPACE:
            return
        if c == ord("}"):
            self.stack[-1] = "value"
            self._end_value(c)
        else:
            self._begin_key(c)

    def _begin_key(self, c: int) -> None:
        if c in _SPACE:
            return
        if c != ord('"'):
            self._fail(c, "looking for beginning of object key string")
        self.step = self._in_string

    def _end_value(self, c: int) -> None:
        if not self.stack:
            raise _Stop(None)  # a complete top-level value: the Decoder stops here
        if c in _SPACE:
            self.step = self._end_value
            return
        top = self.stack[-1]
        if top == "key":
            if c != ord(":"):
                self._fail(c, "after object key")
            self.stack[-1] = "value"
            self.step = self._begin_value
        elif top == "value":
            if c == ord(","):
                self.stack[-1] = "key"
                self.step = self._begin_key
            elif c == ord("}"):
                self._pop()
            else:
                self._fail(c, "after object key:value pair")
        elif c == ord(","):
            self.step = self._begin_value
        elif c == ord("]"):
            self._pop()
        else:
            self._fail(c, "after array element")

    def _pop(self) -> None:
        self.stack.pop()
        if not self.stack:
            raise _Stop(None)
        self.step = self._end_value

    # strings
    def _in_string(self, c: int) -> None:
        if c == ord('"'):
            self.step = self._end_value
        elif c == ord("\\"):
            self.step = self._in_escape
        elif c < 0x20:
            self._fail(c, "in string literal")

    def _in_escape(self, c: int) -> None:
        if c in b'bfnrt\\/"':
            self.step = self._in_string
        elif c == ord("u"):
            self._hex_left = 4
            self.step = self._in_hex
        else:
            self._fail(c, "in string escape code")

    def _in_hex(self, c: int) -> None:
        if c not in _HEX:
            self._fail(c, "in \\u hexadecimal character escape")
        self._hex_left -= 1
        if not self._hex_left:
            self.step = self._in_string

    # numbers
    def _neg(self, c: int) -> None:
        if c == ord("0"):
            self.step = self._zero
        elif ord("1") <= c <= ord("9"):
            self.step = self._digits
        else:
            self._fail(c, "in numeric literal")

    def _digits(self, c: int) -> None:
        if c not in _DIGITS:
            self._zero(c)

    def _zero(self, c: int) -> None:
        if c == ord("."):
            self.step = self._dot
        elif c in b"eE":
            self.step = self._exp
        else:
            self._end_value(c)

    def _dot(self, c: int) -> None:
        if c not in _DIGITS:
            self._fail(c, "after decimal point in numeric literal")
        self.step = self._fraction

    def _fraction(self, c: int) -> None:
        if c in b"eE":
            self.step = self._exp
        elif c not in _DIGITS:
            self._end_value(c)

    def _exp(self, c: int) -> None:
        if c in b"+-":
            self.step = self._exp_sign
        else:
            self._exp_sign(c)

    def _exp_sign(self, c: int) -> None:
        if c not in _DIGITS:
            self._fail(c, "in exponent of numeric literal")
        self.step = self._exp_digits

    def _exp_digits(self, c: int) -> None:
        if c not in _DIGITS:
            self._end_value(c)

    # true, false, null
    def _literal(self, word: bytes, at: int) -> None:
        def step(c: int) -> None:
            if c != word[at]:
                self._fail(c, f"in literal {word.decode()} (expecting {_quote_char(word[at])})")
            if at + 1 == len(word):
                self.step = self._end_value
            else:
                self._literal(word, at + 1)

        self.step = step
