"""Reading untrusted JSON without exceptions: parse an event's data, pick fields of the expected type."""

from __future__ import annotations

from typing import Any

import msgspec

_decode = msgspec.json.decode  # 2-3x faster than json.loads on event-sized objects; same values

_EXCERPT = 60


def excerpt(text: str) -> str:
    """A short, printable repr of some input for a problem message."""
    return repr(text if len(text) <= _EXCERPT else text[:_EXCERPT] + "...")


def load(data: str | bytes) -> tuple[Any, str | None]:
    """``(value, None)``, or ``(None, reason)`` when ``data`` is not JSON (too deep counts as not JSON)."""
    try:
        return _decode(data), None
    except (msgspec.DecodeError, ValueError, RecursionError) as exc:
        return None, "nested too deeply" if isinstance(exc, RecursionError) else str(exc)


def obj(value: Any, key: str) -> dict[str, Any] | None:
    """``value[key]`` when ``value`` is a dict and that field is a dict."""
    field = value.get(key) if isinstance(value, dict) else None
    return field if isinstance(field, dict) else None


def text(value: Any, key: str) -> str | None:
    """``value[key]`` when it is a string."""
    field = value.get(key) if isinstance(value, dict) else None
    return field if isinstance(field, str) else None


def items(value: Any, key: str) -> list[Any]:
    """``value[key]`` when it is a list, else ``[]``."""
    field = value.get(key) if isinstance(value, dict) else None
    return field if isinstance(field, list) else []


def integer(value: Any, key: str) -> int | None:
    """``value[key]`` when it is an int (not a bool)."""
    field = value.get(key) if isinstance(value, dict) else None
    return field if isinstance(field, int) and not isinstance(field, bool) else None


def error_kind_and_message(error: Any) -> tuple[str | None, str | None]:
    """The ``type`` (or ``code``) and ``message`` of an error object; a bare string is the message."""
    if isinstance(error, str):
        return None, error
    kind = text(error, "type") or text(error, "code")
    return kind, text(error, "message")
