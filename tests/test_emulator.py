"""The SSE emulator against the real clients: openai, anthropic (both on httpx2), httpx and httpx2.

No mocks: every test talks HTTP/1.1 to the emulator on 127.0.0.1. Beyond what the SDKs accept (they
build their models without validation), the wire-format tests validate every event strictly against the
SDKs' pydantic types, so a missing required field or a wrong literal fails here.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import zlib
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import httpx2
import openai
import pytest
from anthropic.types import Message, RawMessageStreamEvent
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from streamtape.emulator import (
    Emulator,
    Scenario,
    anthropic_messages,
    expected_text,
    expected_tool_calls,
    openai_chat,
    openai_responses,
)

pytestmark = pytest.mark.timeout(30)

CHAT_REQUEST: dict[str, Any] = {
    "model": "gpt-test",
    "messages": [{"role": "user", "content": "hi"}],
    "stream": True,
}
MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def server() -> Iterator[Emulator]:
    with Emulator() as emu:
        yield emu
    assert emu.errors == []  # stop() joined the handler threads: nothing failed late


@pytest.fixture
def emu(server: Emulator) -> Iterator[Emulator]:
    assert server.errors == []  # nothing failed late in the previous test
    server.reset()
    yield server
    # Whatever the client did (resets, hang-ups, timeouts), serving must not raise.
    assert server.errors == []


def oai(emu: Emulator, **knobs: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=emu.url(**knobs) + "/v1", api_key="sk-test", max_retries=0, timeout=5)


def claude(emu: Emulator, max_retries: int = 0, **knobs: Any) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=emu.url(**knobs), api_key="sk-test", max_retries=max_retries, timeout=5
    )


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


# -- scenario encoding --------------------------------------------------------------------------------


def test_scenario_encode_decode_roundtrip() -> None:
    s = Scenario(events=3, text="a,b/c=d é 🚀", stall_at=2, stall_s=0.5, usage=False, seed=7, pace_ms=2)
    encoded = s.encode()
    assert "/" not in encoded and encoded.isascii()
    assert Scenario.decode(encoded) == s
    assert Scenario().encode() == "" and Scenario.decode("") == Scenario()
    assert Scenario(pace_ms=2).encode() == Scenario(pace_ms=2.0).encode() == "pace_ms=2"


@pytest.mark.parametrize(
    ("encoded", "message"),
    [
        ("bogus=1", "unknown scenario knob 'bogus'"),
        ("events=x", "'events'"),
        ("tools=3", "'tools'"),
        ("split", "no value"),
    ],
)
def test_scenario_decode_rejects_bad_input(encoded: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Scenario.decode(encoded)


def test_bad_scenario_in_url_is_a_400(emu: Emulator) -> None:
    response = httpx.post(f"{emu.url()}/x/nope=1/v1/chat/completions", json=CHAT_REQUEST)
    assert response.status_code == 400
    assert "unknown scenario knob 'nope'" in response.json()["error"]["message"]


# -- wire formats, validated strictly against the SDK types ----------------------------------------


@pytest.mark.parametrize(
    "knobs", [{}, {"tools": 1}, {"tools": 2, "text": "Hi"}, {"unicode": True, "thinking": True}]
)
def test_every_event_validates_against_the_sdk_types(knobs: dict[str, Any]) -> None:
    s = Scenario(**knobs)
    chat_request = {**CHAT_REQUEST, "stream_options": {"include_usage": True}}
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
    first = openai_chat.stream_events(Scenario(seed=3), CHAT_REQUEST)
    assert first == openai_chat.stream_events(Scenario(seed=3), CHAT_REQUEST)
    assert first != openai_chat.stream_events(Scenario(seed=4), CHAT_REQUEST)
    lengths = {len(json.loads(data).get("obfuscation", "")) for _, data in sse_fields(first)[:-1]}
    assert len(lengths) > 3  # padding of varying length


# -- OpenAI Chat Completions through the SDK -------------------------------------------------------


@pytest.mark.parametrize(
    "knobs", [{"events": 7}, {"text": "Hello, wörld 🌍!", "events": 5}, {"unicode": True}]
)
def test_openai_chat_text(emu: Emulator, knobs: dict[str, Any]) -> None:
    stream = oai(emu, **knobs).chat.completions.create(model="gpt-test", messages=MESSAGES, stream=True)
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == expected_text(Scenario(**knobs)) != ""
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert {c.model for c in chunks} == {"gpt-test"}
    assert all(c.usage is None for c in chunks)  # no usage chunk unless asked for
    assert emu.requests[-1].path == "/v1/chat/completions"


def test_openai_chat_text_async(emu: Emulator) -> None:
    async def run() -> tuple[str, str | None]:
        async with openai.AsyncOpenAI(
            base_url=emu.url(events=9) + "/v1", api_key="sk-test", max_retries=0, timeout=5
        ) as client:
            stream = await client.chat.completions.create(model="gpt-test", messages=MESSAGES, stream=True)
            chunks = [c async for c in stream]
        return "".join(c.choices[0].delta.content or "" for c in chunks), chunks[-1].choices[0].finish_reason

    text, finish = asyncio.run(run())
    assert text == expected_text(Scenario(events=9))
    assert finish == "stop"


def _assemble_tool_calls(chunks: list[ChatCompletionChunk]) -> dict[int, dict[str, str]]:
    calls: dict[int, dict[str, str]] = {}
    for chunk in chunks:
        for choice in chunk.choices:
            for delta in choice.delta.tool_calls or []:
                call = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
                call["id"] += delta.id or ""
                if delta.function is not None:
                    call["name"] += delta.function.name or ""
                    call["arguments"] += delta.function.arguments or ""
    return calls


@pytest.mark.parametrize("tools", [1, 2])
def test_openai_chat_tool_calls(emu: Emulator, tools: int) -> None:
    stream = oai(emu, tools=tools, unicode=True).chat.completions.create(
        model="gpt-test", messages=MESSAGES, stream=True
    )
    chunks = list(stream)
    calls = _assemble_tool_calls(chunks)
    expected = expected_tool_calls(Scenario(tools=tools, unicode=True))
    assert [(calls[i]["name"], json.loads(calls[i]["arguments"])) for i in sorted(calls)] == expected
    assert all(call["id"].startswith("call_") for call in calls.values())
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    fragments = sum(len(c.choices[0].delta.tool_calls or []) for c in chunks if c.choices)
    assert fragments > 4 * tools
    if tools == 2:  # parallel calls interleave their fragments
        order = [
            c.choices[0].delta.tool_calls[0].index
            for c in chunks
            if c.choices and c.choices[0].delta.tool_calls
        ]
        assert order.index(1) < len(order) - order[::-1].index(0) - 1


def test_openai_chat_include_usage(emu: Emulator) -> None:
    stream = oai(emu, events=4).chat.completions.create(
        model="gpt-test", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 4
    assert all(c.usage is None for c in chunks[:-1])


def test_openai_chat_not_streaming(emu: Emulator) -> None:
    completion = oai(emu, events=6, tools=1, text="Let me check.").chat.completions.create(
        model="gpt-test", messages=MESSAGES
    )
    assert completion.choices[0].message.content == "Let me check."
    assert completion.choices[0].finish_reason == "tool_calls"
    assert (
        completion.choices[0].message.tool_calls[0].function.name
        == expected_tool_calls(Scenario(tools=1))[0][0]
    )


def test_async_sdk_drains_after_done_but_not_forever(emu: Emulator) -> None:
    """After `[DONE]` the async SDK reads on (HTTP/1.1) for at most ~0.1 s; a stall there costs only that."""
    done_index = len(openai_chat.stream_events(Scenario(events=3), CHAT_REQUEST)) - 1

    async def run() -> float:
        async with openai.AsyncOpenAI(
            base_url=emu.url(events=3, stall_at=done_index + 1, stall_s=3) + "/v1",
            api_key="sk-test",
            max_retries=0,
            timeout=5,
        ) as client:
            start = time.monotonic()
            stream = await client.chat.completions.create(model="gpt-test", messages=MESSAGES, stream=True)
            assert len([c async for c in stream]) == done_index
            return time.monotonic() - start

    assert asyncio.run(run()) < 1.5


# -- OpenAI Responses through the SDK --------------------------------------------------------------


def test_openai_responses_stream(emu: Emulator) -> None:
    client = oai(emu, events=8, unicode=True)
    events = list(client.responses.create(model="gpt-test", input="hi", stream=True))
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert "".join(deltas) == expected_text(Scenario(events=8, unicode=True))
    assert len(deltas) == 8
    assert events[0].type == "response.created"
    assert events[-1].type == "response.completed"
    assert events[-1].response.output_text == "".join(deltas)
    assert [e.sequence_number for e in events] == list(range(len(events)))


def test_openai_responses_parallel_function_calls(emu: Emulator) -> None:
    with oai(emu, tools=2).responses.stream(model="gpt-test", input="hi") as stream:
        final = stream.get_final_response()
    calls = [(item.name, json.loads(item.arguments)) for item in final.output if item.type == "function_call"]
    assert calls == expected_tool_calls(Scenario(tools=2))


# -- Anthropic Messages through the SDK ------------------------------------------------------------


def test_anthropic_stream_text(emu: Emulator) -> None:
    with claude(emu, events=6, unicode=True, ping_every=2).messages.stream(
        model="claude-test", max_tokens=100, messages=MESSAGES
    ) as stream:
        streamed = "".join(stream.text_stream)
        message = stream.get_final_message()
        request_id = stream.response.headers["request-id"]
    assert streamed == message.content[0].text == expected_text(Scenario(events=6, unicode=True))
    assert message.stop_reason == "end_turn"
    assert message.model == "claude-test"
    assert request_id.startswith("req_")


def test_anthropic_stream_tools_and_thinking(emu: Emulator) -> None:
    with claude(emu, tools=2, thinking=True).messages.stream(
        model="claude-test", max_tokens=100, messages=MESSAGES
    ) as stream:
        message = stream.get_final_message()
    assert message.stop_reason == "tool_use"
    assert message.content[0].type == "thinking"
    assert message.content[0].thinking and message.content[0].signature
    uses = [(block.name, block.input) for block in message.content if block.type == "tool_use"]
    assert uses == expected_tool_calls(Scenario(tools=2))


def test_anthropic_stream_async(emu: Emulator) -> None:
    async def run() -> Message:
        async with (
            anthropic.AsyncAnthropic(
                base_url=emu.url(events=5, tools=1, text="On it."),
                api_key="sk-test",
                max_retries=0,
                timeout=5,
            ) as client,
            client.messages.stream(model="claude-test", max_tokens=100, messages=MESSAGES) as stream,
        ):
            return await stream.get_final_message()

    message = asyncio.run(run())
    assert message.content[0].text == "On it."
    assert message.content[1].input == expected_tool_calls(Scenario(tools=1))[0][1]
    assert message.stop_reason == "tool_use"


def test_anthropic_not_streaming(emu: Emulator) -> None:
    message = claude(emu, events=4).messages.create(model="claude-test", max_tokens=100, messages=MESSAGES)
    assert message.content[0].text == expected_text(Scenario(events=4))
    assert emu.requests[-1].path == "/v1/messages"


# -- misbehaviour -----------------------------------------------------------------------------------


def test_reset_raises_after_earlier_events(emu: Emulator) -> None:
    events: list[str] = []
    with (
        httpx.Client(timeout=5) as client,
        client.stream("POST", emu.url(reset_at=5) + "/v1/chat/completions", json=CHAT_REQUEST) as response,
    ):
        assert response.status_code == 200
        with pytest.raises(httpx.ReadError, match="reset"):  # a reset, not a clean EOF
            events.extend(line for line in response.iter_lines() if line)
    assert len(events) == 5 and all(line.startswith("data: {") for line in events)


def test_cut_raises_remote_protocol_error(emu: Emulator) -> None:
    received = b""
    with (
        httpx2.Client(http2=False, timeout=5) as client,
        client.stream(
            "POST", emu.url(cut_at=3) + "/v1/messages", json={"model": "claude-test", "stream": True}
        ) as response,
        pytest.raises(httpx2.RemoteProtocolError),
    ):
        for piece in response.iter_raw():
            received += piece
    assert received.count(b"\n\n") == 3 and received.startswith(b"event: message_start\n")


def test_stall_longer_than_read_timeout_raises(emu: Emulator) -> None:
    timeout = httpx.Timeout(5, read=0.2)
    with (
        httpx.Client(timeout=timeout) as client,
        client.stream(
            "POST", emu.url(stall_at=3, stall_s=0.5) + "/v1/chat/completions", json=CHAT_REQUEST
        ) as response,
        pytest.raises(httpx.ReadTimeout),
    ):
        for _ in response.iter_raw():
            pass


def test_split_makes_more_reads_than_events(emu: Emulator) -> None:
    scenario = Scenario(split=3)
    expected = openai_chat.stream_events(scenario, CHAT_REQUEST)
    with (
        httpx2.Client(http2=False, timeout=5) as client,
        client.stream("POST", emu.url(split=3) + "/v1/chat/completions", json=CHAT_REQUEST) as response,
    ):
        pieces = list(response.iter_raw())
    assert b"".join(pieces) == b"".join(expected)
    assert len(pieces) > len(expected)


def test_split_utf8_cuts_inside_characters(emu: Emulator) -> None:
    request = {"model": "claude-test", "stream": True, "messages": MESSAGES}
    with (
        httpx.Client(timeout=5) as client,
        client.stream("POST", emu.url(split_utf8=True) + "/v1/messages", json=request) as response,
    ):
        pieces = list(response.iter_raw())
    undecodable = 0
    for piece in pieces:
        try:
            piece.decode("utf-8")
        except UnicodeDecodeError:
            undecodable += 1
    assert undecodable >= 1
    body = b"".join(pieces)
    assert body == b"".join(anthropic_messages.stream_events(Scenario(split_utf8=True), request))
    body.decode("utf-8")


def test_overloaded_first_attempt_is_retried(emu: Emulator) -> None:
    client = claude(emu, max_retries=2, status=529, fail_first=1, retry_after=0.01, events=3)
    with client.messages.stream(model="claude-test", max_tokens=100, messages=MESSAGES) as stream:
        message = stream.get_final_message()
    assert message.content[0].text == expected_text(Scenario(events=3))
    assert [r.attempt for r in emu.requests] == [1, 2]
    assert emu.requests[1].header("x-stainless-retry-count") == "1"


def test_every_attempt_fails_without_fail_first(emu: Emulator) -> None:
    with pytest.raises(anthropic.OverloadedError) as caught:
        claude(emu, max_retries=1, status=529, retry_after=0.01).messages.create(
            model="claude-test", max_tokens=100, messages=MESSAGES
        )
    assert caught.value.body["error"]["type"] == "overloaded_error"
    assert len(emu.requests) == 2


def test_rate_limit_without_retries_raises(emu: Emulator) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        oai(emu, status=429, retry_after=0).chat.completions.create(
            model="gpt-test", messages=MESSAGES, stream=True
        )
    assert caught.value.response.headers["retry-after"] == "0"
    assert caught.value.code == "rate_limit_exceeded"
    assert len(emu.requests) == 1


def test_gzip_decodes_to_the_same_events(emu: Emulator) -> None:
    expected = openai_chat.stream_events(Scenario(gzip=True), CHAT_REQUEST)
    with (
        httpx.Client(timeout=5) as client,
        client.stream("POST", emu.url(gzip=True) + "/v1/chat/completions", json=CHAT_REQUEST) as response,
    ):
        assert response.headers["content-encoding"] == "gzip"
        raw = list(response.iter_raw())
    assert zlib.decompressobj(wbits=31).decompress(raw[0]) == expected[0]  # flushed per event
    assert zlib.decompress(b"".join(raw), wbits=31) == b"".join(expected)
    with httpx.Client(timeout=5) as client:
        decoded = client.post(emu.url(gzip=True) + "/v1/chat/completions", json=CHAT_REQUEST).content
    assert decoded == b"".join(expected)


def test_openai_error_event_raises_api_error(emu: Emulator) -> None:
    stream = oai(emu, error_at=4).chat.completions.create(model="gpt-test", messages=MESSAGES, stream=True)
    received = []
    with pytest.raises(openai.APIError) as caught:
        received.extend(stream)
    assert len(received) == 4
    assert not isinstance(caught.value, openai.APIConnectionError)
    assert caught.value.type == "server_error"


def test_anthropic_error_event_raises_overloaded(emu: Emulator) -> None:
    texts: list[str] = []
    client = claude(emu, error_at=6)
    with (
        pytest.raises(anthropic.APIStatusError) as caught,
        client.messages.stream(model="claude-test", max_tokens=100, messages=MESSAGES) as stream,
    ):
        texts.extend(stream.text_stream)
    assert caught.value.body["error"]["type"] == "overloaded_error"
    assert len(texts) == 3  # message_start, ping, block start, then 3 text deltas


def test_drop_final_ends_the_body_without_final_events(emu: Emulator) -> None:
    with httpx.Client(timeout=5) as client:
        chat = client.post(emu.url(drop_final=True) + "/v1/chat/completions", json=CHAT_REQUEST).text
        responses = client.post(
            emu.url(drop_final=True) + "/v1/responses", json={"stream": True, "input": "x"}
        ).text
        messages = client.post(emu.url(drop_final=True) + "/v1/messages", json={"stream": True}).text
    assert "[DONE]" not in chat and '"finish_reason":"stop"' not in chat and chat.endswith("\n\n")
    assert "response.completed" not in responses and "response.output_item.done" in responses
    assert "message_delta" not in messages and "message_stop" not in messages
    with (
        pytest.raises(RuntimeError, match=r"response\.completed"),
        oai(emu, drop_final=True).responses.stream(model="gpt-test", input="hi") as stream,
    ):
        stream.get_final_response()


def test_scenario_header_overrides_the_path(emu: Emulator) -> None:
    response = httpx.post(
        emu.url(events=2) + "/v1/chat/completions",
        json=CHAT_REQUEST,
        headers={"x-emulator-scenario": Scenario(status=503).encode()},
    )
    assert response.status_code == 503
    assert response.json()["error"]["type"] == "server_error"
    assert emu.requests[-1].scenario == Scenario(status=503)


def test_unknown_path_is_a_json_404(emu: Emulator) -> None:
    response = httpx.post(emu.url() + "/v1/embeddings", json={})
    assert response.status_code == 404
    assert "Unknown request URL" in response.json()["error"]["message"]


def test_stream_headers(emu: Emulator) -> None:
    with httpx.Client(timeout=5) as client:
        openai_response = client.post(emu.url() + "/v1/responses", json={"stream": True, "input": "x"})
        anthropic_response = client.post(emu.url() + "/v1/messages", json={"stream": False})
    assert openai_response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert openai_response.headers["transfer-encoding"] == "chunked"
    assert openai_response.headers["x-request-id"].startswith("req_")
    assert anthropic_response.headers["content-type"] == "application/json"
    assert anthropic_response.headers["request-id"].startswith("req_")


def test_stop_is_prompt_during_a_stall_and_quiet_on_disconnect(capfd: pytest.CaptureFixture[str]) -> None:
    emu = Emulator().start()
    # A client that hangs up mid-stream must not make the server print a traceback.
    with (
        httpx.Client(timeout=5) as client,
        client.stream(
            "POST", emu.url(pace_ms=20, events=20) + "/v1/chat/completions", json=CHAT_REQUEST
        ) as response,
    ):
        next(response.iter_raw())
    time.sleep(0.15)

    errors: list[BaseException] = []

    def stalled_client() -> None:
        try:
            httpx.post(
                emu.url(stall_at=2, stall_s=30) + "/v1/chat/completions", json=CHAT_REQUEST, timeout=10
            )
        except httpx.HTTPError as err:
            errors.append(err)

    thread = threading.Thread(target=stalled_client)
    thread.start()
    deadline = time.monotonic() + 5
    while len(emu.requests) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    start = time.monotonic()
    emu.stop()
    assert time.monotonic() - start < 1.5
    thread.join(5)
    assert not thread.is_alive() and errors
    assert capfd.readouterr().err == ""
