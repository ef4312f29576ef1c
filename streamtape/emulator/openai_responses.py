"""OpenAI Responses API (`POST /v1/responses`): the SSE events and the plain JSON body.

Follows the installed SDK's types: the event union `openai/types/responses/response_stream_event.py`
and the files it names (`response_created_event.py`, `response_output_item_added_event.py`,
`response_content_part_added_event.py`, `response_text_delta_event.py`, `response_text_done_event.py`,
`response_function_call_arguments_delta_event.py`, `response_completed_event.py`,
`response_error_event.py`, ...), the object in `response.py`, `response_output_message.py`,
`response_output_text.py`, `response_function_tool_call.py` and `response_usage.py`. Every event is
`event: <type>` + `data: {json}` with `type` repeated and a `sequence_number` counting from 0; delta
events carry `obfuscation` padding (`stream_options.include_obfuscation` in `response_create_params.py`).

Pure: no sockets and no sleeping; the server adds timing and transport faults.
"""

from __future__ import annotations

from typing import Any

from ..analysis.providers import error_bodies
from . import content
from .framing import json_body, named_event
from .scenario import Scenario

PATH = "/v1/responses"
DEFAULT_MODEL = "gpt-4.1-mini"


class _Ids:
    def __init__(self, scenario: Scenario) -> None:
        r = content.rng(scenario, "openai-responses")
        hexdigits = "0123456789abcdef"
        self.response = "resp_" + content.random_id(r, 50, hexdigits)
        self.message = "msg_" + content.random_id(r, 50, hexdigits)
        self.items = ["fc_" + content.random_id(r, 50, hexdigits) for _ in range(2)]
        self.calls = ["call_" + content.random_id(r, 24) for _ in range(2)]
        self.created = 1_700_000_000 + r.randrange(60_000_000)
        self.duration = r.randint(1, 6)


def _response(
    ids: _Ids, request: dict[str, Any], status: str, output: list[dict[str, Any]], usage: Any
) -> dict[str, Any]:
    """The `response` object as `response.created` / `response.completed` and the JSON body carry it."""
    tools = request.get("tools")
    return {
        "id": ids.response,
        "object": "response",
        "created_at": ids.created,
        "status": status,
        "background": False,
        "completed_at": ids.created + ids.duration if status == "completed" else None,
        "error": None,
        "incomplete_details": None,
        "instructions": request.get("instructions"),
        "max_output_tokens": request.get("max_output_tokens"),
        "max_tool_calls": None,
        "model": request.get("model") or DEFAULT_MODEL,
        "output": output,
        "parallel_tool_calls": request.get("parallel_tool_calls", True),
        "previous_response_id": request.get("previous_response_id"),
        "prompt_cache_key": None,
        "reasoning": {"effort": None, "summary": None},
        "safety_identifier": None,
        "service_tier": "default" if status == "completed" else "auto",
        "store": request.get("store", True),
        "temperature": request.get("temperature", 1.0),
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": request.get("tool_choice", "auto"),
        "tools": tools if isinstance(tools, list) else [],
        "top_logprobs": 0,
        "top_p": request.get("top_p", 1.0),
        "truncation": "disabled",
        "usage": usage,
        "user": None,
        "metadata": request.get("metadata") or {},
    }


def _usage(scenario: Scenario, request: dict[str, Any]) -> dict[str, Any]:
    prompt = content.prompt_tokens(request)
    output = content.output_tokens(scenario)
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": prompt + output,
    }


def _message(ids: _Ids, text: str | None) -> dict[str, Any]:
    """The assistant message item: in progress and empty (`text is None`), or completed."""
    parts = [] if text is None else [{"type": "output_text", "annotations": [], "logprobs": [], "text": text}]
    status = "in_progress" if text is None else "completed"
    return {"id": ids.message, "type": "message", "status": status, "content": parts, "role": "assistant"}


def _function_call(ids: _Ids, i: int, call: content.ToolCall, done: bool) -> dict[str, Any]:
    return {
        "id": ids.items[i],
        "type": "function_call",
        "status": "completed" if done else "in_progress",
        "arguments": call.arguments_json if done else "",
        "call_id": ids.calls[i],
        "name": call.name,
    }


def _output(scenario: Scenario, ids: _Ids) -> list[dict[str, Any]]:
    text = content.expected_text(scenario)
    calls = content.tool_calls(scenario)
    output = [_message(ids, text)] if text or not calls else []
    output.extend(_function_call(ids, i, call, done=True) for i, call in enumerate(calls))
    return output


def _events(scenario: Scenario, request: dict[str, Any], ids: _Ids) -> list[dict[str, Any]]:
    """The events without sequence numbers, final `response.completed` included."""
    options = request.get("stream_options") or {}
    obfuscate = scenario.obfuscation and options.get("include_obfuscation", True) is not False
    padding = content.rng(scenario, "openai-responses-obfuscation")
    pieces = content.text_pieces(scenario)
    calls = content.tool_calls(scenario)
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": _response(ids, request, "in_progress", [], None)},
        {"type": "response.in_progress", "response": _response(ids, request, "in_progress", [], None)},
    ]

    def delta(event: dict[str, Any]) -> dict[str, Any]:
        if obfuscate:
            event["obfuscation"] = content.obfuscation(padding)
        return event

    first_call = 0
    if pieces or not calls:
        text = "".join(pieces)
        where = {"item_id": ids.message, "output_index": 0, "content_index": 0}
        empty_part = {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}
        events.append({"type": "response.output_item.added", "output_index": 0, "item": _message(ids, None)})
        events.append({"type": "response.content_part.added", **where, "part": empty_part})
        for piece in pieces:
            events.append(
                delta({"type": "response.output_text.delta", **where, "delta": piece, "logprobs": []})
            )
        events.append({"type": "response.output_text.done", **where, "text": text, "logprobs": []})
        events.append({"type": "response.content_part.done", **where, "part": {**empty_part, "text": text}})
        events.append({"type": "response.output_item.done", "output_index": 0, "item": _message(ids, text)})
        first_call = 1
    for i, call in enumerate(calls):
        item = _function_call(ids, i, call, done=False)
        events.append({"type": "response.output_item.added", "output_index": first_call + i, "item": item})
    for i, fragment in content.interleave(calls):
        where = {"item_id": ids.items[i], "output_index": first_call + i}
        events.append(delta({"type": "response.function_call_arguments.delta", **where, "delta": fragment}))
    for i, call in enumerate(calls):
        where = {"item_id": ids.items[i], "output_index": first_call + i}
        events.append(
            {"type": "response.function_call_arguments.done", **where, "arguments": call.arguments_json}
        )
    for i, call in enumerate(calls):
        item = _function_call(ids, i, call, done=True)
        events.append({"type": "response.output_item.done", "output_index": first_call + i, "item": item})
    if not scenario.drop_final:
        final = _response(ids, request, "completed", _output(scenario, ids), _usage(scenario, request))
        events.append({"type": "response.completed", "response": final})
    return events


def stream_events(scenario: Scenario, request: dict[str, Any]) -> list[bytes]:
    """Every SSE event of the streamed answer, each complete with its blank line."""
    events = _events(scenario, request, _Ids(scenario))
    if scenario.error_at is not None:
        error = {"type": "error", "code": "server_error", "message": "An error occurred while processing."}
        events = [*events[: scenario.error_at], {**error, "param": None}]
    out = []
    for number, event in enumerate(events):
        # `type` first, `sequence_number` second, as the API orders them.
        body = {"type": event["type"], "sequence_number": number, **event}
        out.append(named_event(event["type"], body))
    return out


def response_body(scenario: Scenario, request: dict[str, Any]) -> bytes:
    """The `"stream": false` answer: the completed `response` object."""
    ids = _Ids(scenario)
    return json_body(_response(ids, request, "completed", _output(scenario, ids), _usage(scenario, request)))


def error_body(scenario: Scenario, status: int, attempt: int) -> bytes:
    return json_body(error_bodies.openai_error(status))
