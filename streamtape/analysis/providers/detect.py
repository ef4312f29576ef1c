"""Which provider's format an exchange speaks: by the request path, then by what came back, then by the request.

Paths: ``.../chat/completions`` (OpenAI, Azure OpenAI, and the many OpenAI-compatible servers),
``.../responses``, ``.../messages`` (Anthropic; OpenAI's Assistants ``threads/.../messages`` excluded), and
Vertex AI's ``publishers/anthropic/`` models. Behind a proxy with other paths, the events tell: Anthropic's
event names (``message_start``, ``content_block_delta``, ...), ``response.*`` types, a
``chat.completion.chunk`` or ``[DONE]``; a JSON response by its ``object`` / ``type``; last, a request body
with ``input`` (Responses) or ``anthropic_version`` (Anthropic on Vertex / Bedrock).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from . import _json as j
from .assembly import ANTHROPIC, OPENAI_CHAT, OPENAI_RESPONSES, UNKNOWN

_ANTHROPIC_EVENTS = frozenset(
    {
        "message_start",
        "message_delta",
        "message_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "ping",
    }
)
#: How many events are looked at when sniffing.
SNIFF_EVENTS = 8


def _by_path(url: str) -> str | None:
    try:
        path = urlsplit(url).path.rstrip("/")
    except ValueError:
        return None
    if path.endswith("/chat/completions"):
        return OPENAI_CHAT
    if path.endswith("/responses"):
        return OPENAI_RESPONSES
    if (path.endswith("/messages") and "/threads/" not in path) or "/publishers/anthropic/" in path:
        return ANTHROPIC
    return None


def _by_json_type(body: Any) -> str | None:
    kind = j.text(body, "type") or ""
    if kind.startswith("response.") or body.get("object") == "response":
        return OPENAI_RESPONSES
    if kind in _ANTHROPIC_EVENTS or kind == "message":
        return ANTHROPIC
    if body.get("object") in ("chat.completion.chunk", "chat.completion") or "choices" in body:
        return OPENAI_CHAT
    return None


def _by_events(events: Iterable[Any]) -> str | None:
    for n, event in enumerate(events):
        if n >= SNIFF_EVENTS:
            break
        name = getattr(event, "event", "")
        data = getattr(event, "data", "")
        if not isinstance(name, str) or not isinstance(data, str):
            continue
        if name in _ANTHROPIC_EVENTS:
            return ANTHROPIC
        if name.startswith("response."):
            return OPENAI_RESPONSES
        if data.startswith("[DONE]"):
            return OPENAI_CHAT
        body, _ = j.load(data)
        if isinstance(body, dict) and (found := _by_json_type(body)):
            return found
    return None


def _by_response_body(body: bytes) -> str | None:
    value, _ = j.load(body)
    if not isinstance(value, dict):
        return None
    if value.get("type") == "error":  # Anthropic wraps errors in a typed envelope, OpenAI does not
        return ANTHROPIC
    return _by_json_type(value)


def _by_request_body(body: bytes) -> str | None:
    request, _ = j.load(body)
    if not isinstance(request, dict):
        return None
    if "anthropic_version" in request:
        return ANTHROPIC
    if "input" in request and "messages" not in request:
        return OPENAI_RESPONSES
    return None


def detect(
    request_url: str,
    request_body: bytes,
    content_type: str | None,
    first_events: Iterable[Any],
    *,
    response_body: bytes | None = None,
) -> str:
    """``"openai-chat"``, ``"openai-responses"``, ``"anthropic"`` or ``"unknown"``; never raises.

    ``content_type`` is the response's: ``first_events`` (``sse.Event``) are sniffed unless it is JSON, and
    ``response_body`` (when given) unless it is an event stream.
    """
    media = (content_type or "").partition(";")[0].strip().lower()
    found = _by_path(request_url) if isinstance(request_url, str) else None
    if found is None and not media.endswith("json"):
        found = _by_events(first_events or [])
    if found is None and response_body and media != "text/event-stream":
        found = _by_response_body(response_body)
    if found is None and request_body:
        found = _by_request_body(request_body)
    return found or UNKNOWN
