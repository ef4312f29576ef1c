"""Anthropic Messages (`POST /v1/messages`): the SSE events and the plain JSON body.

Follows the installed SDK's types and reader: `anthropic/types/raw_message_stream_event.py` and the
`raw_message_start_event.py`, `raw_content_block_start_event.py`, `raw_content_block_delta_event.py`,
`raw_content_block_stop_event.py`, `raw_message_delta_event.py`, `raw_message_stop_event.py` beside it;
the deltas `text_delta.py`, `input_json_delta.py`, `thinking_delta.py`, `signature_delta.py`; the blocks
`text_block.py`, `tool_use_block.py`, `thinking_block.py`; `message.py`, `usage.py`,
`message_delta_usage.py`; and `anthropic/_streaming.py` (skips `ping`, raises on `event: error`).

`ping` data is written `{"type": "ping"}` with a space, as the real API sends it (so readers must not
assume compact JSON). Pure: no sockets and no sleeping.
"""

from __future__ import annotations

from typing import Any

from ..analysis.providers import error_bodies
from . import content
from .framing import json_body, named_event
from .headers import anthropic_request_id
from .scenario import Scenario

PATH = "/v1/messages"
DEFAULT_MODEL = "claude-sonnet-4-5"
PING = b'event: ping\ndata: {"type": "ping"}\n\n'


class _Ids:
    def __init__(self, scenario: Scenario) -> None:
        r = content.rng(scenario, "anthropic")
        self.message = "msg_01" + content.random_id(r, 22)
        self.tools = ["toolu_01" + content.random_id(r, 22) for _ in range(2)]


def _thinking(scenario: Scenario, request: dict[str, Any]) -> bool:
    """The knob forces a thinking block; a request that enables thinking gets one too."""
    asked = request.get("thinking")
    return scenario.thinking or (isinstance(asked, dict) and asked.get("type") in ("enabled", "adaptive"))


def _usage(scenario: Scenario, request: dict[str, Any], output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": content.prompt_tokens(request),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }


def _blocks(scenario: Scenario, request: dict[str, Any], ids: _Ids) -> list[dict[str, Any]]:
    """The finished content blocks, in index order."""
    blocks: list[dict[str, Any]] = []
    if _thinking(scenario, request):
        thinking = "".join(content.thinking_pieces(scenario))
        blocks.append(
            {"type": "thinking", "thinking": thinking, "signature": content.thinking_signature(scenario)}
        )
    text = content.expected_text(scenario)
    calls = content.tool_calls(scenario)
    if text or not calls:
        blocks.append({"type": "text", "text": text})
    for i, call in enumerate(calls):
        blocks.append({"type": "tool_use", "id": ids.tools[i], "name": call.name, "input": call.arguments})
    return blocks


def _message(
    scenario: Scenario, request: dict[str, Any], ids: _Ids, blocks: list[dict[str, Any]], done: bool
) -> dict[str, Any]:
    stop = ("tool_use" if scenario.tools else "end_turn") if done else None
    return {
        "id": ids.message,
        "type": "message",
        "role": "assistant",
        "model": request.get("model") or DEFAULT_MODEL,
        "content": blocks,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": _usage(scenario, request, content.output_tokens(scenario) if done else 1),
    }


def _block_events(scenario: Scenario, request: dict[str, Any], ids: _Ids) -> list[tuple[str, dict[str, Any]]]:
    """content_block_start / _delta / _stop for every block; parallel tool_use blocks interleave."""
    events: list[tuple[str, dict[str, Any]]] = []

    def start(index: int, block: dict[str, Any]) -> None:
        events.append(("content_block_start", {"index": index, "content_block": block}))

    def delta(index: int, body: dict[str, Any]) -> None:
        events.append(("content_block_delta", {"index": index, "delta": body}))

    def stop(index: int) -> None:
        events.append(("content_block_stop", {"index": index}))

    index = 0
    if _thinking(scenario, request):
        start(index, {"type": "thinking", "thinking": "", "signature": ""})
        for piece in content.thinking_pieces(scenario):
            delta(index, {"type": "thinking_delta", "thinking": piece})
        delta(index, {"type": "signature_delta", "signature": content.thinking_signature(scenario)})
        stop(index)
        index += 1
    pieces = content.text_pieces(scenario)
    calls = content.tool_calls(scenario)
    if pieces or not calls:
        start(index, {"type": "text", "text": ""})
        for piece in pieces:
            delta(index, {"type": "text_delta", "text": piece})
        stop(index)
        index += 1
    for i, call in enumerate(calls):
        start(index + i, {"type": "tool_use", "id": ids.tools[i], "name": call.name, "input": {}})
    for i, fragment in content.interleave(calls):
        delta(index + i, {"type": "input_json_delta", "partial_json": fragment})
    for i in range(len(calls)):
        stop(index + i)
    return events


def stream_events(scenario: Scenario, request: dict[str, Any]) -> list[bytes]:
    """Every SSE event of the streamed answer, each complete with its blank line."""
    ids = _Ids(scenario)
    body: list[bytes] = [named_event(n, {"type": n, **b}) for n, b in _block_events(scenario, request, ids)]
    if not scenario.drop_final:
        stop_reason = "tool_use" if scenario.tools else "end_turn"
        usage = _usage(scenario, request, content.output_tokens(scenario))
        del usage["cache_creation"], usage["service_tier"]
        delta = {"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": None}}
        body.append(named_event("message_delta", {**delta, "usage": usage}))
        body.append(named_event("message_stop", {"type": "message_stop"}))
    if scenario.ping_every:
        spaced: list[bytes] = []
        for i, event in enumerate(body):
            if i and i % scenario.ping_every == 0:
                spaced.append(PING)
            spaced.append(event)
        body = spaced
    start = named_event(
        "message_start", {"type": "message_start", "message": _message(scenario, request, ids, [], False)}
    )
    events = [start, PING, *body]
    if scenario.error_at is not None:
        events = [*events[: scenario.error_at], named_event("error", error_bodies.anthropic_stream_error())]
    return events


def response_body(scenario: Scenario, request: dict[str, Any]) -> bytes:
    """The `"stream": false` answer: one `message` object."""
    ids = _Ids(scenario)
    return json_body(_message(scenario, request, ids, _blocks(scenario, request, ids), True))


def error_body(scenario: Scenario, status: int, attempt: int) -> bytes:
    return json_body(error_bodies.anthropic_error(status, anthropic_request_id(scenario, attempt)))
