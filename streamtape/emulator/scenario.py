"""The knobs of one emulated exchange, and their compact text form.

A scenario travels inside the base URL (`/x/<encoded>`) or an `x-emulator-scenario` header, so a client
that only lets you set `base_url` can still ask for a stall, a reset or a 529. The encoding lists only the
knobs that differ from their defaults, as `name=value` pairs joined by commas, with string values
percent-encoded so the result is one URL path segment of plain ASCII.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote


@dataclass(frozen=True)
class Scenario:
    """What the emulator sends back; the defaults give a normal, complete, realistic stream."""

    events: int = 12
    text: str | None = None
    pace_ms: float = 0.0
    stall_at: int | None = None
    stall_s: float = 1.0
    reset_at: int | None = None
    cut_at: int | None = None
    drop_final: bool = False
    status: int | None = None
    retry_after: float | None = None
    fail_first: int = 0
    tools: int = 0
    unicode: bool = False
    split_utf8: bool = False
    split: int = 1
    error_at: int | None = None
    ping_every: int = 0
    thinking: bool = False
    usage: bool | None = None
    obfuscation: bool = True
    gzip: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        for name, kind in _KINDS.items():
            value = getattr(self, name)
            _check_type(name, kind, value)
            if kind is float and value is not None:
                object.__setattr__(self, name, float(value))  # so 2 and 2.0 encode alike
        _check_range(self)

    def encode(self) -> str:
        """The compact form: non-default knobs as `name=value`, comma-separated ("" for the defaults)."""
        parts = []
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value == field.default:
                continue
            parts.append(f"{field.name}={_format(value)}")
        return ",".join(parts)

    @classmethod
    def decode(cls, encoded: str) -> Scenario:
        """Parse `encode()`'s output; raises ValueError naming the bad knob or value."""
        knobs: dict[str, Any] = {}
        for part in encoded.split(","):
            if not part:
                continue
            name, sep, raw = part.partition("=")
            if not sep:
                raise ValueError(f"scenario knob {name!r} has no value (expected name=value)")
            if name not in _KINDS:
                raise ValueError(f"unknown scenario knob {name!r}; known knobs: {', '.join(_KINDS)}")
            if name in knobs:
                raise ValueError(f"scenario knob {name!r} given twice")
            knobs[name] = _parse(name, _KINDS[name], unquote(raw))
        return cls(**knobs)


def _kinds() -> dict[str, type]:
    """Each field's value type with the Optional stripped, read from the annotations."""
    hints = typing.get_type_hints(Scenario)
    kinds: dict[str, type] = {}
    for field in dataclasses.fields(Scenario):
        hint = hints[field.name]
        if isinstance(hint, types.UnionType):
            hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
        kinds[field.name] = hint
    return kinds


def _optional(name: str) -> bool:
    return next(f for f in dataclasses.fields(Scenario) if f.name == name).default is None


def _check_type(name: str, kind: type, value: object) -> None:
    if value is None:
        if _optional(name):
            return
        raise ValueError(f"scenario knob {name!r} cannot be None")
    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    else:
        ok = isinstance(value, kind)
    if not ok:
        raise ValueError(f"scenario knob {name!r} must be {kind.__name__}, got {value!r}")


def _check_range(s: Scenario) -> None:
    non_negative = ("events", "pace_ms", "stall_s", "fail_first", "ping_every", "retry_after")
    for name in (*non_negative, "stall_at", "reset_at", "cut_at", "error_at"):
        value = getattr(s, name)
        if value is not None and value < 0:
            raise ValueError(f"scenario knob {name!r} must be >= 0, got {value!r}")
    if s.tools not in (0, 1, 2):
        raise ValueError(f"scenario knob 'tools' must be 0, 1 or 2, got {s.tools!r}")
    if s.split < 1:
        raise ValueError(f"scenario knob 'split' must be >= 1, got {s.split!r}")
    if s.status is not None and not 400 <= s.status <= 599:
        raise ValueError(f"scenario knob 'status' must be an HTTP error status (400-599), got {s.status!r}")


def _format(value: object) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, str):
        return quote(value, safe="")
    return str(value)


def _parse(name: str, kind: type, raw: str) -> object:
    try:
        if kind is bool:
            lowered = raw.lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if kind is int:
            return int(raw)
        if kind is float:
            return float(raw)
    except ValueError:
        raise ValueError(f"scenario knob {name!r} needs a {kind.__name__} value, got {raw!r}") from None
    return raw


_KINDS: dict[str, type] = _kinds()
