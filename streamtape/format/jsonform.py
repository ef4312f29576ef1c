"""The JSON form of records, shared by ``streamtape cat``, ``info --json`` and the spec's test vectors.

Bytes become ``{"text": ...}`` when they are valid UTF-8 and ``{"base64": ...}`` otherwise, so a reader
of the JSON always knows which it has; that holds for bytes anywhere, a record's own fields or deep inside a
header's ``meta`` (any MessagePack a stranger's tape holds: bin, maps with keys that are not strings,
extension types, timestamps).
"""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

import msgspec

from .records import Record


def bytes_to_json(data: bytes) -> dict[str, str]:
    try:
        return {"text": data.decode("utf-8")}
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode("ascii")}


#: Containers nested deeper than this show as ``{"too_deep": N}`` (N: how many values the level held), so
#: neither this code nor ``json.dumps`` recurses without bound on a hostile ``meta``.
MAX_DEPTH = 64


def _key(key: Any, depth: int) -> str:
    """A map key as a JSON object key: a string as itself, anything else as its JSON form's text."""
    if isinstance(key, str):
        return key
    return json.dumps(to_json(key, _depth=depth), sort_keys=True, ensure_ascii=False)


def to_json(value: Any, *, _depth: int = 0) -> Any:
    """Any value a record holds as JSON-ready data (``json.dumps`` never fails on it).

    Bytes as ``{"text"}`` / ``{"base64"}``; tuples as lists; structs and maps as objects (a key that is not
    a string becomes its JSON text: ``1`` -> ``"1"``, ``b"k"`` -> ``'{"text": "k"}'``); a MessagePack
    timestamp as its ISO 8601 text; any other extension type as ``{"ext": code, "base64" or "text": data}``;
    a container past ``MAX_DEPTH`` levels as ``{"too_deep": its length}``.
    """
    if value is None or isinstance(value, str | int | float):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes_to_json(bytes(value))
    depth = _depth + 1
    if isinstance(value, msgspec.Struct):
        value = msgspec.structs.asdict(value)
    if isinstance(value, dict | list | tuple) and depth > MAX_DEPTH:
        return {"too_deep": len(value)}
    if isinstance(value, dict):
        return {_key(k, depth): to_json(v, _depth=depth) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v, _depth=depth) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, msgspec.msgpack.Ext):
        return {"ext": value.code, **bytes_to_json(bytes(value.data))}
    try:  # whatever else a Tape built in memory may carry
        return to_json(msgspec.to_builtins(value), _depth=_depth)
    except (TypeError, ValueError):
        return repr(value)


def record_to_json(record: Record) -> dict[str, Any]:
    """A record as a JSON-ready dict: ``type`` (the tag) first, then the fields by name."""
    doc: dict[str, Any] = {"type": type(record).__name__.lower()}
    for name, value in msgspec.structs.asdict(record).items():
        doc[name] = to_json(value)
    return doc
