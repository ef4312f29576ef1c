"""The JSON form of records, shared by ``streamtape cat`` and the spec's test vectors.

Bytes become ``{"text": ...}`` when they are valid UTF-8 and ``{"base64": ...}`` otherwise, so a reader
of the JSON always knows which it has.
"""

from __future__ import annotations

import base64
from typing import Any

import msgspec

from .records import Record


def bytes_to_json(data: bytes) -> dict[str, str]:
    try:
        return {"text": data.decode("utf-8")}
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode("ascii")}


def record_to_json(record: Record) -> dict[str, Any]:
    """A record as a JSON-ready dict: ``type`` (the tag) first, then the fields by name."""
    doc: dict[str, Any] = {"type": type(record).__name__.lower()}
    for name, value in msgspec.structs.asdict(record).items():
        doc[name] = bytes_to_json(value) if isinstance(value, bytes) else msgspec.to_builtins(value)
    return doc
