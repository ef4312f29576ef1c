"""A JSON document's values with the byte spans they occupy, so one value can be replaced and every other
byte of the document kept. Sans-IO.

``json`` and ``msgspec`` give values, not where they were. The walk here is over the bytes decoded as
ISO-8859-1 (one character per byte, so character offsets are byte offsets); scalars are read by the
standard decoder, strings decoded again as UTF-8 when they are not ASCII. Paths are tuples of keys and
indexes, as ``replay.bodies`` renders and selects them (``$.messages[0].content``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

Path = tuple[str | int, ...]

#: Deeper documents are treated as not JSON (scanned as bytes) rather than walked.
MAX_DEPTH = 256
_WS = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


class NotJson(ValueError):
    """The bytes are not one JSON document this walk accepts."""


@dataclass(frozen=True, slots=True)
class Value:
    """One value, or one object key (``key``), at ``path``; bytes ``start:end`` of the document hold it.

    ``text`` is a string's (or key's) decoded text, None for other values."""

    start: int
    end: int
    path: Path
    text: str | None = None
    key: bool = False


class _Walk:
    def __init__(self, data: bytes, base: int) -> None:
        self.data = data
        self.s = data.decode("latin-1")
        self.base = base
        self.out: list[Value] = []

    def ws(self, i: int) -> int:
        m = _WS.match(self.s, i)
        return m.end() if m else i

    def string(self, i: int, path: Path, *, key: bool = False) -> tuple[str, int]:
        if self.s[i : i + 1] != '"':
            raise NotJson(f"expected a string at byte {i}")
        raw, end = _DECODER.raw_decode(self.s, i)
        text = raw if raw.isascii() else json.loads(self.data[i:end])
        self.out.append(Value(self.base + i, self.base + end, path, text, key))
        return text, end

    def value(self, i: int, path: Path, depth: int) -> int:
        if depth > MAX_DEPTH:
            raise NotJson("nested too deep")
        c = self.s[i : i + 1]
        if c == '"':
            return self.string(i, path)[1]
        if c in ("{", "["):
            at = len(self.out)
            self.out.append(Value(self.base + i, 0, path))
            end = self.members(i, path, depth) if c == "{" else self.items(i, path, depth)
            self.out[at] = Value(self.base + i, self.base + end, path)
            return end
        try:
            _, end = _DECODER.raw_decode(self.s, i)
        except json.JSONDecodeError as exc:
            raise NotJson(str(exc)) from None
        self.out.append(Value(self.base + i, self.base + end, path))
        return int(end)

    def members(self, i: int, path: Path, depth: int) -> int:
        i = self.ws(i + 1)
        if self.s[i : i + 1] == "}":
            return i + 1
        while True:
            name, i = self.string(i, path, key=True)
            self.out[-1] = Value(self.out[-1].start, self.out[-1].end, (*path, name), name, True)
            i = self.ws(i)
            if self.s[i : i + 1] != ":":
                raise NotJson(f"expected ':' at byte {i}")
            i = self.ws(self.value(self.ws(i + 1), (*path, name), depth + 1))
            c = self.s[i : i + 1]
            if c == "}":
                return i + 1
            if c != ",":
                raise NotJson(f"expected ',' or '}}' at byte {i}")
            i = self.ws(i + 1)

    def items(self, i: int, path: Path, depth: int) -> int:
        i = self.ws(i + 1)
        if self.s[i : i + 1] == "]":
            return i + 1
        n = 0
        while True:
            i = self.ws(self.value(i, (*path, n), depth + 1))
            n += 1
            c = self.s[i : i + 1]
            if c == "]":
                return i + 1
            if c != ",":
                raise NotJson(f"expected ',' or ']' at byte {i}")
            i = self.ws(i + 1)


def values(data: bytes, *, base: int = 0) -> list[Value] | None:
    """Every value and key of the JSON document ``data``, parents before children, spans counted from
    ``base``; None when ``data`` is not one JSON document in UTF-8 (or nests past ``MAX_DEPTH``)."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    walk = _Walk(data, base)
    try:
        end = walk.ws(walk.value(walk.ws(0), (), 0))
    except (NotJson, json.JSONDecodeError, RecursionError):
        return None
    return walk.out if end == len(data) and walk.out else None


def encode_string(text: str) -> bytes:
    """``text`` as a JSON string, non-ASCII kept as UTF-8 (so an unescaped string keeps its bytes)."""
    return json.dumps(text, ensure_ascii=False).encode("utf-8", "surrogatepass")
