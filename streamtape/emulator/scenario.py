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
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote


def _knob(meaning: str, example: object) -> dict[str, object]:
    """A field's entry in the emulator's ``--help``: what it does, and a value to show in an example URL."""
    return {"meaning": meaning, "example": example}


@dataclass(frozen=True)
class Scenario:
    """What the emulator sends back; the defaults give a normal, complete, realistic stream."""

    events: int = field(default=12, metadata=_knob("content deltas in the answer, about one token each", 6))
    text: str | None = field(
        default=None, metadata=_knob("the exact answer text, cut into `events` pieces", "Hello, wörld")
    )
    pace_ms: float = field(default=0.0, metadata=_knob("milliseconds between two SSE events", 30))
    stall_at: int | None = field(
        default=None, metadata=_knob("stall before SSE event number N (0-based, every event counts)", 3)
    )
    stall_s: float = field(default=1.0, metadata=_knob("seconds the stall at `stall_at` lasts", 0.5))
    reset_at: int | None = field(
        default=None, metadata=_knob("send half of SSE event N, then a TCP reset (RST)", 3)
    )
    cut_at: int | None = field(
        default=None, metadata=_knob("send half of SSE event N, then close cleanly (FIN): a short body", 3)
    )
    drop_final: bool = field(
        default=False,
        metadata=_knob("leave out the closing events (finish reason, [DONE], message_stop)", True),
    )
    status: int | None = field(
        default=None,
        metadata=_knob("answer with this HTTP error status (400-599) and its JSON error body", 529),
    )
    retry_after: float | None = field(
        default=None, metadata=_knob("seconds sent in a retry-after header with the error status", 0.01)
    )
    fail_first: int = field(
        default=0, metadata=_knob("with `status`: only the first N attempts fail (0: every attempt)", 1)
    )
    tools: int = field(default=0, metadata=_knob("tool calls in the answer (0, 1 or 2; 2 interleave)", 2))
    unicode: bool = field(
        default=False, metadata=_knob("multi-byte UTF-8 words in the text and tool arguments", True)
    )
    split_utf8: bool = field(
        default=False,
        metadata=_knob("cut each event inside its first multi-byte character (turns on unicode)", True),
    )
    split: int = field(default=1, metadata=_knob("cut each SSE event into N separate sends", 3))
    error_at: int | None = field(
        default=None, metadata=_knob("replace SSE event N and the rest with the provider's error event", 4)
    )
    ping_every: int = field(default=0, metadata=_knob("Anthropic: a ping event after every N events", 2))
    thinking: bool = field(default=False, metadata=_knob("Anthropic: a thinking block before the text", True))
    usage: bool | None = field(
        default=None,
        metadata=_knob(
            "Chat Completions: a usage chunk at the end (unset: as the request's stream_options asks)", True
        ),
    )
    obfuscation: bool = field(
        default=True, metadata=_knob("OpenAI: `obfuscation` padding in streamed deltas", False)
    )
    gzip: bool = field(
        default=False, metadata=_knob("Content-Encoding: gzip, flushed after each event", True)
    )
    seed: int = field(default=0, metadata=_knob("seed of the generated text, ids and padding", 7))

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
        for knob in dataclasses.fields(self):
            value = getattr(self, knob.name)
            if value == knob.default:
                continue
            parts.append(f"{knob.name}={_format(value)}")
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


@dataclass(frozen=True)
class KnobHelp:
    """One knob as ``python -m streamtape.emulator --help`` lists it, all read from `Scenario`'s fields."""

    name: str
    kind: str  # INT, NUM, 0|1 or TEXT
    default: str  # as the URL spells it; "unset" for None
    meaning: str
    example: str  # `name=value`, encoded as in a URL


_KIND_NAMES: dict[type, str] = {int: "INT", float: "NUM", bool: "0|1", str: "TEXT"}


def knob_help() -> list[KnobHelp]:
    """Every knob of `Scenario`, in field order, with its meaning, default and an encoded example."""
    out = []
    for knob in dataclasses.fields(Scenario):
        default = "unset" if knob.default is None else _format(knob.default)
        example = Scenario(**{knob.name: knob.metadata["example"]}).encode()
        kind = _KIND_NAMES[_KINDS[knob.name]]
        out.append(KnobHelp(knob.name, kind, default, knob.metadata["meaning"], example))
    return out


def _kinds() -> dict[str, type]:
    """Each field's value type with the Optional stripped, read from the annotations."""
    hints = typing.get_type_hints(Scenario)
    kinds: dict[str, type] = {}
    for knob in dataclasses.fields(Scenario):
        hint = hints[knob.name]
        if isinstance(hint, types.UnionType):
            hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
        kinds[knob.name] = hint
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
