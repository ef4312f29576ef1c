"""OpenAI Chat Completions (`POST /v1/chat/completions`): the SSE events and the plain JSON body.

Follows the installed SDK's types and reader: `openai/types/chat/chat_completion_chunk.py` (the chunks),
`openai/types/chat/chat_completion.py` and `chat_completion_message.py` (the non-streaming body),
`openai/types/completion_usage.py` (usage), and `openai/_streaming.py` (`data:` events without an
`event:` line, `data: [DONE]` to end, a JSON `error` object mid-stream raising `APIError`).

Pure: no sockets and no sleeping; the server adds timing and transport faults.
"""

from __future__ import annotations

from typing import Any

from ..analysis.providers import error_bodies
from . import content
from .framing import DONE, data_event, json_body
from .scenario import Scenario

PATH = "/v1/chat/completions"
DEFAULT_MODEL = "gpt-4o-mini"


class _Ids:
    """The ids and timestamps one completion repeats in every chunk."""

    def __init__(self, scenario: Scenario) -> None:
        r = content.rng(scenario, "openai-chat")
        self.completion = "chatcmpl-" + content.random_id(r, 29)
        self.created = 1_700_000_000 + r.randrange(60_000_000)
        self.fingerprint = "fp_" + content.random_id(r, 10, "0123456789abcdef")
        self.calls = ["call_" + content.random_id(r, 24) for _ in range(2)]


def _usage(scenario: Scenario, request: dict[str, Any]) -> dict[str, Any]:
    prompt = content.prompt_tokens(request)
    completion = content.output_tokens(scenario)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _deltas(scenario: Scenario, ids: _Ids) -> list[dict[str, Any]]:
    """The choice deltas in order: role, text pieces, tool-call starts and argument fragments."""
    pieces = content.text_pieces(scenario)
    calls = content.tool_calls(scenario)
    starts = [
        {
            "index": i,
            "id": ids.calls[i],
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        for i, call in enumerate(calls)
    ]
    deltas: list[dict[str, Any]] = []
    if pieces or not calls:
        deltas.append({"role": "assistant", "content": "", "refusal": None})
        deltas.extend({"content": piece} for piece in pieces)
        deltas.extend({"tool_calls": [start]} for start in starts)
    else:
        # A tool-only answer opens with the role and the first call's header in one delta.
        deltas.append({"role": "assistant", "content": None, "tool_calls": [starts[0]], "refusal": None})
        deltas.extend({"tool_calls": [start]} for start in starts[1:])
    for index, fragment in content.interleave(calls):
        deltas.append({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]})
    return deltas


def _options(scenario: Scenario, request: dict[str, Any]) -> tuple[bool, bool]:
    """(include usage, include obfuscation) from the knobs and the request's `stream_options`."""
    options = request.get("stream_options") or {}
    usage = bool(options.get("include_usage")) if scenario.usage is None else scenario.usage
    obfuscate = scenario.obfuscation and options.get("include_obfuscation", True) is not False
    return usage, obfuscate


def stream_events(scenario: Scenario, request: dict[str, Any]) -> list[bytes]:
    """Every SSE event of the streamed answer, each complete with its blank line."""
    ids = _Ids(scenario)
    include_usage, obfuscate = _options(scenario, request)
    padding = content.rng(scenario, "openai-chat-obfuscation")
    head = {
        "id": ids.completion,
        "object": "chat.completion.chunk",
        "created": ids.created,
        "model": request.get("model") or DEFAULT_MODEL,
        "service_tier": "default",
        "system_fingerprint": ids.fingerprint,
    }

    def chunk(choices: list[dict[str, Any]], usage: dict[str, Any] | None = None) -> dict[str, Any]:
        body = {**head, "choices": choices}
        if include_usage:
            body["usage"] = usage
        if obfuscate:
            body["obfuscation"] = content.obfuscation(padding)
        return body

    def choice(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}

    events = [data_event(chunk([choice(delta)])) for delta in _deltas(scenario, ids)]
    if not scenario.drop_final:
        finish = "tool_calls" if scenario.tools else "stop"
        events.append(data_event(chunk([choice({}, finish)])))
        if include_usage:
            events.append(data_event(chunk([], _usage(scenario, request))))
        events.append(DONE)
    if scenario.error_at is not None:
        events = [*events[: scenario.error_at], data_event(error_bodies.openai_stream_error())]
    return events


def response_body(scenario: Scenario, request: dict[str, Any]) -> bytes:
    """The `"stream": false` answer: one `chat.completion` object."""
    ids = _Ids(scenario)
    calls = content.tool_calls(scenario)
    message: dict[str, Any] = {
        "role": "assistant",
        "content": content.expected_text(scenario) or None,
        "refusal": None,
        "annotations": [],
    }
    if calls:
        message["tool_calls"] = [
            {
                "id": ids.calls[i],
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments_json},
            }
            for i, call in enumerate(calls)
        ]
    return json_body(
        {
            "id": ids.completion,
            "object": "chat.completion",
            "created": ids.created,
            "model": request.get("model") or DEFAULT_MODEL,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": "tool_calls" if calls else "stop",
                }
            ],
            "usage": _usage(scenario, request),
            "service_tier": "default",
            "system_fingerprint": ids.fingerprint,
        }
    )


def error_body(scenario: Scenario, status: int, attempt: int) -> bytes:
    return json_body(error_bodies.openai_error(status))
