"""The SSE emulator's wire formats: every event validated strictly against the SDKs' pydantic types (the SDKs
build their models without validation, so a missing required field or a wrong literal fails here only),
content determined by the seed, and the response heads.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from anthropic.types import Message, RawMessageStreamEvent
from helpers import CHAT, MESSAGES
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from streamtape.emulator import Emulator, Scenario, anthropic_messages, openai_chat, openai_responses

pytestmark = pytest.mark.timeout(30)


def sse_fields(events: list[bytes]) -> list[tuple[str | None, str]]:
    """(event name, data) of each complete event, checking the framing on the way."""
    out = []
    for raw in events:
        text = raw.decode("utf-8")
        assert text.endswith("\n\n") and "\n\n" not in text[:-2]
        name, data = None, None
        for line in text[:-2].split("\n"):
            field, _, value = line.partition(": ")
            if field == "event":
                name = value
            else:
                assert field == "data"
                data = value
        assert data is not None
        out.append((name, data))
    return out


# -- wire formats, validated strictly against the SDK types ----------------------------------------


@pytest.mark.parametrize(
    "knobs", [{}, {"tools": 1}, {"tools": 2, "text": "Hi"}, {"unicode": True, "thinking": True}]
)
def test_every_event_validates_against_the_sdk_types(knobs: dict[str, Any]) -> None:
    s = Scenario(**knobs)
    chat_request = {**CHAT, "stream_options": {"include_usage": True}}
    chat = sse_fields(openai_chat.stream_events(s, chat_request))
    assert chat[-1] == (None, "[DONE]")
    for name, data in chat[:-1]:
        assert name is None
        ChatCompletionChunk.model_validate_json(data)
    ChatCompletion.model_validate_json(openai_chat.response_body(s, chat_request))

    responses_adapter = TypeAdapter(ResponseStreamEvent)
    fields = sse_fields(
        openai_responses.stream_events(s, {"model": "gpt-test", "input": "hi", "stream": True})
    )
    for number, (name, data) in enumerate(fields):
        event = responses_adapter.validate_json(data)
        assert event.type == name and event.sequence_number == number
    Response.model_validate_json(openai_responses.response_body(s, {"model": "gpt-test", "input": "hi"}))

    anthropic_adapter = TypeAdapter(RawMessageStreamEvent)
    fields = sse_fields(anthropic_messages.stream_events(s, {"model": "claude-test", "messages": MESSAGES}))
    assert fields[1] == ("ping", '{"type": "ping"}')
    for name, data in fields:
        if name != "ping":
            assert anthropic_adapter.validate_json(data).type == name
    Message.model_validate_json(
        anthropic_messages.response_body(s, {"model": "claude-test", "messages": MESSAGES})
    )


def test_content_is_deterministic_by_seed() -> None:
    first = openai_chat.stream_events(Scenario(seed=3), CHAT)
    assert first == openai_chat.stream_events(Scenario(seed=3), CHAT)
    assert first != openai_chat.stream_events(Scenario(seed=4), CHAT)
    lengths = {len(json.loads(data).get("obfuscation", "")) for _, data in sse_fields(first)[:-1]}
    assert len(lengths) > 3  # padding of varying length


def test_unknown_path_is_a_json_404(emulator: Emulator) -> None:
    response = httpx.post(emulator.url() + "/v1/embeddings", json={})
    assert response.status_code == 404
    assert "Unknown request URL" in response.json()["error"]["message"]


def test_stream_headers(emulator: Emulator) -> None:
    with httpx.Client(timeout=5) as client:
        openai_response = client.post(emulator.url() + "/v1/responses", json={"stream": True, "input": "x"})
        anthropic_response = client.post(emulator.url() + "/v1/messages", json={"stream": False})
    assert openai_response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert openai_response.headers["transfer-encoding"] == "chunked"
    assert openai_response.headers["x-request-id"].startswith("req_")
    assert anthropic_response.headers["content-type"] == "application/json"
    assert anthropic_response.headers["request-id"].startswith("req_")
