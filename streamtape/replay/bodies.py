"""How a live request body compares with a recorded one. Sans-IO: bytes in, a verdict or a JSON path out.

Two JSON bodies are equal as JSON: key order and whitespace do not matter (SDK releases reorder keys), a
number is compared by value, and ``true`` is never ``1``. Fields the user asks to ignore (a ``user`` or
``metadata`` field, a request id) are left out on both sides: a plain name at any depth, or a path from
the root (``$.metadata.trace``, ``$.messages[*].name``). A recorded string holding redaction fingerprints
(``REDACTED:<12 hex>``, written by the recorder or by ``streamtape redact``) stands for any value there: a
string that is one fingerprint matches any JSON value, a fingerprint inside a string matches any text in
its place. A body that is not JSON on either side is compared as bytes, fingerprints again matching
anything. A difference is reported as the JSON path where it starts, so a mismatch message says
``$.messages[1].content`` instead of a byte offset.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import msgspec

#: A redaction fingerprint (``record.redact``): what a tape holds in place of a secret or a prompt.
FINGERPRINT = re.compile(r"REDACTED:[0-9a-f]{12}")
_FINGERPRINT_BYTES = re.compile(FINGERPRINT.pattern.encode())

Path = tuple[str | int, ...]


class _NotJson:
    """What ``parse`` gives for a body that is not JSON (compared as bytes)."""


NOT_JSON = _NotJson()
_ABSENT = object()


def parse(body: bytes) -> Any:
    """The body's JSON value, or ``NOT_JSON`` (an empty body is not JSON)."""
    if not body.strip():
        return NOT_JSON
    try:
        return msgspec.json.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return NOT_JSON


def json_path(path: Path) -> str:
    """``$.messages[1].content``; a key that is not an identifier is quoted: ``$["x-y"]``."""
    out = ["$"]
    for part in path:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif part.isidentifier():
            out.append(f".{part}")
        else:
            out.append(f"[{msgspec.json.encode(part).decode()}]")
    return "".join(out)


_SEGMENT = re.compile(r"\.([^.\[\]]+)|\[(\*|\d+)\]|\[\"((?:[^\"\\]|\\.)*)\"\]")


@dataclass(frozen=True)
class Ignore:
    """Fields left out of a body comparison: plain names at any depth, and ``$``-rooted paths."""

    names: frozenset[str] = frozenset()
    paths: tuple[tuple[str | int | None, ...], ...] = ()  # None is ``[*]``

    @classmethod
    def of(cls, fields: Iterable[str]) -> Ignore:
        names: set[str] = set()
        paths: list[tuple[str | int | None, ...]] = []
        for field in fields:
            if not isinstance(field, str) or not field:
                raise ValueError(f"a field to ignore is a name or a $-path, not {field!r}")
            if not field.startswith("$"):
                names.add(field)
                continue
            parts: list[str | int | None] = []
            at = 1
            while at < len(field):
                m = _SEGMENT.match(field, at)
                if m is None:
                    raise ValueError(f"not a JSON path: {field!r} (at character {at})")
                key, index, quoted = m.groups()
                if key is not None:
                    parts.append(key)
                elif index is not None:
                    parts.append(None if index == "*" else int(index))
                else:
                    parts.append(msgspec.json.decode(f'"{quoted}"'))
                at = m.end()
            paths.append(tuple(parts))
        return cls(frozenset(names), tuple(paths))

    def __bool__(self) -> bool:
        return bool(self.names or self.paths)

    def skips(self, path: Path) -> bool:
        if path and isinstance(path[-1], str) and path[-1] in self.names:
            return True
        return any(
            len(p) == len(path) and all(q is None or q == part for q, part in zip(p, path, strict=True))
            for p in self.paths
        )


@dataclass(frozen=True)
class BodyDifference:
    """Where two JSON bodies first differ, and both values there (``_ABSENT`` when one side lacks it)."""

    path: Path
    live: Any
    recorded: Any

    def describe(self, *, show_bodies: bool, fingerprint: Callable[[bytes], str]) -> str:
        """In words; values shown only when asked, otherwise their kind, size and a fingerprint."""

        def value(v: Any) -> str:
            if v is _ABSENT:
                return "absent"
            raw = msgspec.json.encode(v)
            if show_bodies:
                text = raw.decode()
                return text if len(text) <= 60 else text[:57] + "..."
            if v is None or isinstance(v, bool):
                return "null" if v is None else "a boolean"  # nothing to hide in these
            if isinstance(v, str):
                return f"a string of {len(v)} characters {fingerprint(raw)}"
            if isinstance(v, dict | list):
                kind = "an object of" if isinstance(v, dict) else "an array of"
                return f"{kind} {len(v)} {'keys' if isinstance(v, dict) else 'items'} {fingerprint(raw)}"
            return f"a number {fingerprint(raw)}"

        where = json_path(self.path)
        hint = "" if show_bodies else "; STREAMTAPE_SHOW_BODIES=1 shows them"
        return f"body differs at {where} (live: {value(self.live)}; recorded: {value(self.recorded)}{hint})"


def _wildcard(recorded: str) -> re.Pattern[str] | None:
    """A recorded string with fingerprints in it as a pattern (None when it holds none)."""
    if "REDACTED:" not in recorded or not FINGERPRINT.search(recorded):
        return None
    pieces = FINGERPRINT.split(recorded)
    return re.compile("(?s)" + ".+?".join(map(re.escape, pieces)))


def first_difference(
    live: Any, recorded: Any, ignore: Ignore = Ignore(), path: Path = ()
) -> BodyDifference | None:
    """The first place (in recorded key order, then live-only keys) where two JSON values differ."""
    if isinstance(recorded, str):
        if FINGERPRINT.fullmatch(recorded):
            return None  # a redacted value: any live value was there
        pattern = _wildcard(recorded)
        if pattern is not None:
            same = isinstance(live, str) and pattern.fullmatch(live) is not None
            return None if same else BodyDifference(path, live, recorded)
    if isinstance(recorded, dict) and isinstance(live, dict):
        for key, value in recorded.items():
            here = (*path, key)
            if ignore and ignore.skips(here):
                continue
            if key not in live:
                return BodyDifference(here, _ABSENT, value)
            found = first_difference(live[key], value, ignore, here)
            if found is not None:
                return found
        for key, value in live.items():
            here = (*path, key)
            if key not in recorded and not (ignore and ignore.skips(here)):
                return BodyDifference(here, value, _ABSENT)
        return None
    if isinstance(recorded, list) and isinstance(live, list):
        for i, (a, b) in enumerate(zip(live, recorded, strict=False)):
            here = (*path, i)
            if ignore and ignore.skips(here):
                continue
            found = first_difference(a, b, ignore, here)
            if found is not None:
                return found
        if len(live) != len(recorded):
            i = min(len(live), len(recorded))
            return BodyDifference(
                (*path, i),
                live[i] if i < len(live) else _ABSENT,
                recorded[i] if i < len(recorded) else _ABSENT,
            )
        return None
    if _scalar_kind(live) != _scalar_kind(recorded) or live != recorded:
        return BodyDifference(path, live, recorded)
    return None


def _scalar_kind(v: Any) -> str:
    """JSON's kinds: 1 and 1.0 are one number, ``true`` is not 1."""
    if isinstance(v, bool) or v is None:
        return repr(v)
    if isinstance(v, int | float):
        return "number"
    return type(v).__name__


def same_bytes(live: bytes, recorded: bytes) -> bool:
    """Non-JSON bodies: equal bytes, a fingerprint in the recorded body matching any bytes in its place."""
    if live == recorded:
        return True
    if b"REDACTED:" not in recorded or not _FINGERPRINT_BYTES.search(recorded):
        return False
    pieces = _FINGERPRINT_BYTES.split(recorded)
    return re.fullmatch(b"(?s)" + b".+?".join(map(re.escape, pieces)), live) is not None
