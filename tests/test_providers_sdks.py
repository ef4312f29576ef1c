"""The provider assemblers against what the official SDKs assemble from the same recorded bytes.

Each test records a stream from the real emulator through an SDK (``openai``, ``anthropic``, on ``httpx2``)
with streamtape's recording transport, lets the SDK assemble it, then decodes the tape's chunks with
``streamtape.analysis.sse`` and checks that ``streamtape.analysis.providers`` assembled the same text, tool
calls, stop reason and usage; and that ``detect`` names the provider of each recording.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import openai
import pytest
from helpers import MESSAGES, only_exchange

import streamtape
import streamtape.httpx2
from streamtape.analysis.providers import (
    ANTHROPIC,
    OPENAI_CHAT,
    OPENAI_RESPONSES,
    Assembly,
    ToolCall,
    assemble_events,
    assemble_json,
    detect,
)
from streamtape.analysis.sse import Event, decode
from streamtape.emulator import Emulator, Scenario, expected_text, expected_tool_calls

pytestmark = pytest.mark.timeout(30)

UNICODE = {"events": 8, "unicode": True, "split_utf8": True}


# -- recording through the SDKs ---------------------------------------------------------------------


@contextmanager
def openai_client(emulator: Emulator, tape: Path, **knobs: Any) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        http_client=httpx2.Client(transport=streamtape.httpx2.RecordingTransport(tape)),
        base_url=emulator.url(**knobs) + "/v1",
        api_key="sk-test",
        max_retries=0,
        timeout=5,
    ) as client:
        yield client


@contextmanager
def anthropic_client(emulator: Emulator, tape: Path, **knobs: Any) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(
        http_client=httpx2.Client(transport=streamtape.httpx2.RecordingTransport(tape)),
        base_url=emulator.url(**knobs),
        api_key="sk-test",
        max_retries=0,
        timeout=5,
    ) as client:
        yield client


def events_of(exchange: streamtape.Exchange) -> list[Event]:
    events, _ = decode([(c.t_ns, c.data) for c in exchange.chunks])
    return events


def assembled(tape: Path, provider: str) -> tuple[Assembly, streamtape.Exchange, list[Event]]:
    exchange = only_exchange(tape)
    events = events_of(exchange)
    return assemble_events(provider, events), exchange, events


def content_type(exchange: streamtape.Exchange) -> str | None:
    assert exchange.response is not None
    return next((v for n, v in exchange.response.headers if n.lower() == "content-type"), None)


def assert_clean_stream(assembly: Assembly, events: list[Event], provider: str, model: str) -> None:
    assert assembly.provider == provider
    assert assembly.terminal
    assert assembly.errors == [] and assembly.problems == []
    assert assembly.events == len(events)
    assert assembly.model == model
    assert assembly.first_token_t_ns is not None
    assert events[0].t_ns <= assembly.first_token_t_ns <= events[-1].t_ns


def same_calls(calls: list[ToolCall], expected: list[tuple[str, str, Any]]) -> None:
    """``calls`` are (id, name, parsed arguments) ``expected``, indexed 0..n-1, all valid JSON."""
    assert [(c.id, c.name, c.parsed) for c in calls] == expected
    assert [c.index for c in calls] == list(range(len(expected)))
    assert all(c.valid_json for c in calls)


# -- OpenAI Chat Completions --------------------------------------------------------------------------


@pytest.mark.parametrize("include_usage", [False, True], ids=["no-usage", "include-usage"])
def test_openai_chat_text_split_utf8_matches_the_sdk(
    emulator: Emulator, tmp_path: Path, include_usage: bool
) -> None:
    options: Any = {"include_usage": True} if include_usage else openai.omit
    with (
        openai_client(emulator, tmp_path / "t.tape", **UNICODE) as client,
        client.chat.completions.stream(model="gpt-test", messages=MESSAGES, stream_options=options) as stream,
    ):
        completion = stream.get_final_completion()
    assembly, exchange, events = assembled(tmp_path / "t.tape", OPENAI_CHAT)
    _, hazards = decode([(c.t_ns, c.data) for c in exchange.chunks])
    assert hazards.split_utf8 > 0  # the bytes really did split inside characters

    choice = completion.choices[0]
    assert assembly.text == choice.message.content == expected_text(Scenario(**UNICODE))
    assert assembly.finish_reason == choice.finish_reason == "stop"
    assert assembly.refusal == "" and assembly.tool_calls == []
    assert assembly.content_events == UNICODE["events"]
    assert_clean_stream(assembly, events, OPENAI_CHAT, "gpt-test")
    if include_usage:
        assert completion.usage is not None and assembly.usage is not None
        assert assembly.usage == completion.usage.model_dump(exclude_unset=True)
        assert assembly.usage["completion_tokens"] == UNICODE["events"]
    else:
        assert assembly.usage is None is completion.usage


@pytest.mark.parametrize("tools", [1, 2])
def test_openai_chat_tool_calls_match_the_sdk(emulator: Emulator, tmp_path: Path, tools: int) -> None:
    with (
        openai_client(emulator, tmp_path / "t.tape", tools=tools, unicode=True) as client,
        client.chat.completions.stream(model="gpt-test", messages=MESSAGES) as stream,
    ):
        completion = stream.get_final_completion()
    assembly, _, events = assembled(tmp_path / "t.tape", OPENAI_CHAT)

    sdk_calls = completion.choices[0].message.tool_calls or []
    assert len(sdk_calls) == tools
    same_calls(
        assembly.tool_calls,
        [(c.id, c.function.name, json.loads(c.function.arguments)) for c in sdk_calls],
    )
    assert [c.arguments for c in assembly.tool_calls] == [c.function.arguments for c in sdk_calls]
    expected = expected_tool_calls(Scenario(tools=tools, unicode=True))
    assert [(c.name, c.parsed) for c in assembly.tool_calls] == expected
    assert assembly.finish_reason == completion.choices[0].finish_reason == "tool_calls"
    assert assembly.text == ""
    # every argument fragment is its own event, and each counts as content
    assert assembly.content_events > 4 * tools
    assert_clean_stream(assembly, events, OPENAI_CHAT, "gpt-test")


def test_openai_chat_without_done_is_not_terminal(emulator: Emulator, tmp_path: Path) -> None:
    with openai_client(emulator, tmp_path / "t.tape", events=5, drop_final=True) as client:
        chunks = list(client.chat.completions.create(model="gpt-test", messages=MESSAGES, stream=True))
    assembly, _, _ = assembled(tmp_path / "t.tape", OPENAI_CHAT)
    assert assembly.text == "".join(c.choices[0].delta.content or "" for c in chunks)
    assert assembly.text == expected_text(Scenario(events=5))
    assert not assembly.terminal
    assert assembly.finish_reason is None
    assert all(c.choices[0].finish_reason is None for c in chunks)


def test_openai_chat_error_event_is_an_error(emulator: Emulator, tmp_path: Path) -> None:
    seen: list[str] = []
    with (
        openai_client(emulator, tmp_path / "t.tape", events=6, error_at=4) as client,
        pytest.raises(openai.APIError) as raised,
    ):
        for chunk in client.chat.completions.create(model="gpt-test", messages=MESSAGES, stream=True):
            seen.append(chunk.choices[0].delta.content or "")
    assembly, _, _ = assembled(tmp_path / "t.tape", OPENAI_CHAT)
    assert assembly.errors == [f"server_error: {raised.value.message}"]
    assert not assembly.terminal and assembly.finish_reason is None
    assert assembly.text == "".join(seen) != ""
    assert expected_text(Scenario(events=6)).startswith(assembly.text)


# -- OpenAI Responses ---------------------------------------------------------------------------------


def test_openai_responses_text_matches_the_sdk(emulator: Emulator, tmp_path: Path) -> None:
    with (
        openai_client(emulator, tmp_path / "t.tape", **UNICODE) as client,
        client.responses.stream(model="gpt-test", input="hi") as stream,
    ):
        response = stream.get_final_response()
    assembly, _, events = assembled(tmp_path / "t.tape", OPENAI_RESPONSES)
    assert assembly.text == response.output_text == expected_text(Scenario(**UNICODE))
    assert assembly.finish_reason == response.status == "completed"
    assert response.usage is not None
    assert assembly.usage == response.usage.model_dump(exclude_unset=True)
    assert assembly.content_events == UNICODE["events"]
    assert_clean_stream(assembly, events, OPENAI_RESPONSES, "gpt-test")


@pytest.mark.parametrize("tools", [1, 2])
def test_openai_responses_function_calls_match_the_sdk(
    emulator: Emulator, tmp_path: Path, tools: int
) -> None:
    with (
        openai_client(emulator, tmp_path / "t.tape", tools=tools) as client,
        client.responses.stream(model="gpt-test", input="hi") as stream,
    ):
        response = stream.get_final_response()
    assembly, _, events = assembled(tmp_path / "t.tape", OPENAI_RESPONSES)
    sdk_calls = [item for item in response.output if item.type == "function_call"]
    assert len(sdk_calls) == tools
    same_calls(assembly.tool_calls, [(c.call_id, c.name, json.loads(c.arguments)) for c in sdk_calls])
    assert [(c.name, c.parsed) for c in assembly.tool_calls] == expected_tool_calls(Scenario(tools=tools))
    assert assembly.finish_reason == "completed"
    assert_clean_stream(assembly, events, OPENAI_RESPONSES, "gpt-test")


def test_openai_responses_cut_short_and_error(emulator: Emulator, tmp_path: Path) -> None:
    with openai_client(emulator, tmp_path / "drop.tape", events=4, drop_final=True) as client:
        sdk_events = list(client.responses.create(model="gpt-test", input="hi", stream=True))
    assembly, _, _ = assembled(tmp_path / "drop.tape", OPENAI_RESPONSES)
    assert sdk_events[-1].type != "response.completed"
    assert not assembly.terminal and assembly.finish_reason is None and assembly.usage is None
    assert assembly.text == expected_text(Scenario(events=4))

    with openai_client(emulator, tmp_path / "error.tape", events=4, error_at=6) as client:
        sdk_events = list(client.responses.create(model="gpt-test", input="hi", stream=True))
    (error,) = [e for e in sdk_events if e.type == "error"]
    assembly, _, _ = assembled(tmp_path / "error.tape", OPENAI_RESPONSES)
    assert assembly.errors == [f"{error.code}: {error.message}"]
    assert not assembly.terminal
    assert (
        assembly.text == "".join(e.delta for e in sdk_events if e.type == "response.output_text.delta") != ""
    )


# -- Anthropic Messages -------------------------------------------------------------------------------


def test_anthropic_text_with_pings_matches_the_sdk(emulator: Emulator, tmp_path: Path) -> None:
    with (
        anthropic_client(emulator, tmp_path / "t.tape", ping_every=2, **UNICODE) as client,
        client.messages.stream(model="claude-test", max_tokens=100, messages=MESSAGES) as stream,
    ):
        message = stream.get_final_message()
    assembly, _, events = assembled(tmp_path / "t.tape", ANTHROPIC)
    assert sum(e.event == "ping" for e in events) > 2
    assert assembly.text == message.content[0].text == expected_text(Scenario(**UNICODE))
    assert assembly.finish_reason == message.stop_reason == "end_turn"
    assert assembly.usage is not None
    assert assembly.usage["output_tokens"] == message.usage.output_tokens
    assert assembly.usage["input_tokens"] == message.usage.input_tokens
    assert assembly.content_events == UNICODE["events"]
    assert_clean_stream(assembly, events, ANTHROPIC, "claude-test")


@pytest.mark.parametrize("tools", [1, 2])
def test_anthropic_tools_and_thinking_match_the_sdk(emulator: Emulator, tmp_path: Path, tools: int) -> None:
    with (
        anthropic_client(
            emulator, tmp_path / "t.tape", tools=tools, thinking=True, text="On it ✓."
        ) as client,
        client.messages.stream(model="claude-test", max_tokens=100, messages=MESSAGES) as stream,
    ):
        message = stream.get_final_message()
    assembly, _, events = assembled(tmp_path / "t.tape", ANTHROPIC)
    blocks = message.content
    thinking = [b.thinking for b in blocks if b.type == "thinking"]
    assert thinking and assembly.thinking == thinking[0] != ""
    assert assembly.text == "".join(b.text for b in blocks if b.type == "text") == "On it ✓."
    uses = [b for b in blocks if b.type == "tool_use"]
    assert len(uses) == tools
    same_calls(assembly.tool_calls, [(b.id, b.name, b.input) for b in uses])
    assert [(c.name, c.parsed) for c in assembly.tool_calls] == expected_tool_calls(Scenario(tools=tools))
    assert assembly.finish_reason == message.stop_reason == "tool_use"
    assert assembly.usage is not None and assembly.usage["output_tokens"] == message.usage.output_tokens
    assert_clean_stream(assembly, events, ANTHROPIC, "claude-test")
    # thinking arrives first, so it is the first token
    first_thinking = next(e for e in events if '"thinking_delta"' in e.data)
    assert assembly.first_token_t_ns == first_thinking.t_ns


def test_anthropic_without_message_stop_is_not_terminal(emulator: Emulator, tmp_path: Path) -> None:
    with (
        anthropic_client(emulator, tmp_path / "t.tape", events=4, drop_final=True) as client,
        client.messages.stream(model="claude-test", max_tokens=100, messages=MESSAGES) as stream,
    ):
        message = stream.get_final_message()
    assembly, _, _ = assembled(tmp_path / "t.tape", ANTHROPIC)
    assert not assembly.terminal
    assert assembly.finish_reason is None is message.stop_reason
    assert assembly.text == message.content[0].text == expected_text(Scenario(events=4))
    # the usage of message_start is all there is
    assert assembly.usage is not None and assembly.usage["output_tokens"] == message.usage.output_tokens == 1


def test_anthropic_overloaded_error_event(emulator: Emulator, tmp_path: Path) -> None:
    with (
        anthropic_client(emulator, tmp_path / "t.tape", events=6, error_at=5) as client,
        pytest.raises(anthropic.APIStatusError, match="overloaded_error"),
        client.messages.stream(model="claude-test", max_tokens=100, messages=MESSAGES) as stream,
    ):
        stream.get_final_message()
    assembly, _, _ = assembled(tmp_path / "t.tape", ANTHROPIC)
    assert assembly.errors == ["overloaded_error: Overloaded"]
    assert not assembly.terminal and assembly.finish_reason is None
    assert assembly.text != "" and expected_text(Scenario(events=6)).startswith(assembly.text)


# -- detection and non-streaming responses ------------------------------------------------------------


def _stream_once(emulator: Emulator, tape: Path, provider: str, **knobs: Any) -> None:
    if provider == ANTHROPIC:
        with (
            anthropic_client(emulator, tape, **knobs) as client,
            client.messages.stream(model="claude-test", max_tokens=100, messages=MESSAGES) as stream,
        ):
            stream.get_final_message()
        return
    with openai_client(emulator, tape, **knobs) as client:
        if provider == OPENAI_CHAT:
            options: Any = {"include_usage": True}
            chunks = client.chat.completions.create(
                model="gpt-test", messages=MESSAGES, stream=True, stream_options=options
            )
            list(chunks)
        else:
            list(client.responses.create(model="gpt-test", input="hi", stream=True))


@pytest.mark.parametrize("provider", [OPENAI_CHAT, OPENAI_RESPONSES, ANTHROPIC])
def test_detect_from_a_recorded_exchange(emulator: Emulator, tmp_path: Path, provider: str) -> None:
    _stream_once(emulator, tmp_path / "t.tape", provider, events=3)
    exchange = only_exchange(tmp_path / "t.tape")
    events = events_of(exchange)
    request = exchange.request
    kind = content_type(exchange)
    assert kind is not None and kind.startswith("text/event-stream")
    assert detect(request.url, request.body, kind, events[:5]) == provider
    # behind a proxy whose path says nothing, the events tell
    assert detect("https://gateway.internal/llm", b"{}", kind, events[:5]) == provider
    assert detect("https://gateway.internal/llm", b"{}", kind, []) == "unknown"


@pytest.mark.parametrize("provider", [OPENAI_CHAT, OPENAI_RESPONSES, ANTHROPIC])
def test_assemble_json_equals_the_streamed_assembly(
    emulator: Emulator, tmp_path: Path, provider: str
) -> None:
    knobs: dict[str, Any] = {"events": 6, "tools": 1, "text": "Let me check ✓.", "seed": 5}
    _stream_once(emulator, tmp_path / "stream.tape", provider, **knobs)
    streamed, _, _ = assembled(tmp_path / "stream.tape", provider)

    path = tmp_path / "json.tape"
    if provider == ANTHROPIC:
        with anthropic_client(emulator, path, **knobs) as client:
            message = client.messages.create(
                model="claude-test", max_tokens=100, messages=MESSAGES, stream=False
            )
        sdk_text = "".join(b.text for b in message.content if b.type == "text")
        sdk_calls = [(b.id, b.name, b.input) for b in message.content if b.type == "tool_use"]
    elif provider == OPENAI_CHAT:
        with openai_client(emulator, path, **knobs) as client:
            completion = client.chat.completions.create(model="gpt-test", messages=MESSAGES, stream=False)
        sdk_text = completion.choices[0].message.content
        tool_calls = completion.choices[0].message.tool_calls or []
        sdk_calls = [(c.id, c.function.name, json.loads(c.function.arguments)) for c in tool_calls]
    else:
        with openai_client(emulator, path, **knobs) as client:
            response = client.responses.create(model="gpt-test", input="hi", stream=False)
        sdk_text = response.output_text
        sdk_calls = [
            (c.call_id, c.name, json.loads(c.arguments)) for c in response.output if c.type == "function_call"
        ]
    exchange = only_exchange(path)
    assert json.loads(exchange.request.body)["stream"] is False
    kind = content_type(exchange)
    assert kind == "application/json"
    assert detect("https://gateway.internal/llm", b"{}", kind, [], response_body=exchange.body) == provider

    plain = assemble_json(provider, exchange.body)
    assert plain.text == streamed.text == sdk_text == "Let me check ✓."
    same_calls(plain.tool_calls, sdk_calls)
    assert [(c.id, c.name, c.parsed) for c in plain.tool_calls] == [
        (c.id, c.name, c.parsed) for c in streamed.tool_calls
    ]
    assert plain.finish_reason == streamed.finish_reason
    assert plain.usage is not None and plain.usage == streamed.usage
    assert plain.terminal and plain.errors == [] and plain.problems == []
    assert (plain.events, plain.content_events, plain.first_token_t_ns) == (0, 0, None)
    assert plain.model == streamed.model
