"""Serialising JSON and SSE events the way the providers put them on the wire.

Compact separators and raw UTF-8 (`ensure_ascii=False`): the providers send non-ASCII characters
unescaped, which is what lets a multi-byte character straddle two network reads.
"""

from __future__ import annotations

import json
from typing import Any


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def json_body(obj: Any) -> bytes:
    return dumps(obj).encode("utf-8")


def data_event(obj: Any) -> bytes:
    """`data: {json}` plus the blank line: the OpenAI Chat Completions framing (no `event:` line)."""
    return f"data: {dumps(obj)}\n\n".encode()


def named_event(name: str, obj: Any) -> bytes:
    """`event: <name>` then `data: {json}`: the Responses and Anthropic framing."""
    return f"event: {name}\ndata: {dumps(obj)}\n\n".encode()


DONE = b"data: [DONE]\n\n"
