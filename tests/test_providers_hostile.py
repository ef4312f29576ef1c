"""The provider assemblers on hostile input: hand-made and generated events and bodies, where nothing may
raise; what cannot be assembled is noted as a problem or an error.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamtape.analysis.providers import (
    ANTHROPIC,
    OPENAI_CHAT,
    OPENAI_RESPONSES,
    PROVIDERS,
    ToolCall,
    assemble_events,
    assemble_json,
    detect,
    new_assembler,
)
from streamtape.analysis.sse import Event

pytestmark = pytest.mark.timeout(30)


# -- hostile input: never an exception ----------------------------------------------------------------


def ev(data: str, event: str = "message", t_ns: int = 0) -> Event:
    return Event(event, data, "", None, t_ns, 0, 0)


def chat_chunk(**delta: Any) -> Event:
    return ev(json.dumps({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta}]}))


def test_openai_chat_hostile_events_are_problems_not_exceptions() -> None:
    events = [
        ev("{not json"),
        ev('{"choices": "a string"}'),
        ev('{"choices": [1, {"index": 0, "delta": []}, {"index": 0, "delta": {"content": 7}}]}'),
        ev('{"choices": [{"index": 0, "delta": {"tool_calls": [{"index": "0"}, "x", {"function": 3}]}}]}'),
        ev('{"choices": [{"index": 0, "delta": {"tool_calls": {"index": 0}}}]}'),
        ev("[1, 2, 3]"),
        ev("[" * 100_000),
        chat_chunk(content="Hel"),
        ev('{"choices": [{"index": 1, "delta": {"content": "other choice"}}]}'),
        ev('{"choices": [{"index": 0, "delta": {"content": "lo"}, "finish_reason": "stop"}]}'),
        ev("[DONE]"),
        chat_chunk(content=" after done"),
        ev("[DONE]"),
    ]
    assembly = assemble_events(OPENAI_CHAT, events)
    assert assembly.text == "Hello"  # choice 1 and everything after [DONE] are not assembled
    assert assembly.terminal and assembly.finish_reason == "stop"
    assert assembly.events == len(events)
    assert assembly.content_events == 2
    assert len(assembly.problems) >= 8
    assert "2 events after [DONE] (not assembled)" in assembly.problems
    assert assembly.errors == []


def test_openai_chat_tool_call_fragments_by_index_and_error_objects() -> None:
    events = [
        chat_chunk(
            tool_calls=[{"index": 1, "id": "call_b", "function": {"name": "second", "arguments": ""}}]
        ),
        chat_chunk(
            tool_calls=[{"index": 0, "id": "call_a", "function": {"name": "first", "arguments": '{"a"'}}]
        ),
        chat_chunk(tool_calls=[{"index": 1, "function": {"arguments": "{}"}}]),
        chat_chunk(tool_calls=[{"index": 0, "id": "call_a", "function": {"arguments": ": 1}"}}]),
        chat_chunk(refusal="I can't"),
        ev('{"error": {"message": "boom", "type": "server_error"}}'),
        ev('{"error": "plain"}'),
        ev('{"error": null, "choices": []}'),
    ]
    assembly = assemble_events(OPENAI_CHAT, events)
    assert [c.as_dict() for c in assembly.tool_calls] == [
        {"id": "call_a", "name": "first", "arguments": '{"a": 1}', "valid_json": True},
        {"id": "call_b", "name": "second", "arguments": "{}", "valid_json": True},
    ]
    assert assembly.refusal == "I can't"
    assert assembly.errors == ["server_error: boom", "error: plain"]
    assert not assembly.terminal


def test_anthropic_hostile_and_edge_events() -> None:
    def named(name: str, body: Any) -> Event:
        return ev(json.dumps(body), name)

    events = [
        named("message_start", {"type": "message_start", "message": ["not", "a", "dict"]}),
        named("content_block_start", {"type": "content_block_start", "index": "0", "content_block": {}}),
        named("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": None}),
        # a text delta for a block that never started is kept, and noted
        named("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}}),
        # a tool without arguments: its one partial_json piece is ""
        named("content_block_start", {"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "toolu_1", "name": "now", "input": {}}}),
        named("content_block_delta", {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": ""}}),
        named("content_block_delta", {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "wrong block"}}),
        named("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "x"}}),
        named("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "brand_new_delta"}}),
        named("something_new", {"type": "something_new"}),
        ev("[DONE]"),
        ev("not json at all", "error"),
        named("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
        named("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 9, "input_tokens": None}}),
        named("message_stop", {"type": "message_stop"}),
    ]  # fmt: skip
    assembly = assemble_events(ANTHROPIC, events)
    assert assembly.text == "Hi"
    (call,) = assembly.tool_calls
    assert (call.id, call.name, call.arguments, call.valid_json, call.parsed) == (
        "toolu_1",
        "now",
        "",
        True,
        {},
    )
    assert assembly.errors == ["error: not json at all", "overloaded_error: Overloaded"]
    assert assembly.usage == {"output_tokens": 9}
    assert assembly.finish_reason == "tool_use" and assembly.terminal
    assert len(assembly.problems) >= 5
    assert assembly.events == len(events)


def test_openai_responses_hostile_and_done_events() -> None:
    def typed(body: dict[str, Any]) -> Event:
        return ev(json.dumps(body), body.get("type", "message"))

    events = [
        typed({"type": "response.created", "response": "not an object"}),
        typed({"type": "response.output_text.delta", "output_index": "0", "delta": "x"}),
        typed({"type": "response.output_text.delta", "output_index": 0, "content_index": 0, "delta": 5}),
        typed({"type": "response.output_item.added", "output_index": 0, "item": {"id": "msg_1", "type": "message"}}),
        typed({"type": "response.output_text.delta", "item_id": "msg_1", "content_index": 0, "delta": "Hel"}),
        typed({"type": "response.output_text.delta", "output_index": 0, "content_index": 0, "delta": "l"}),
        # the .done text is the final word: it replaces the deltas, and the difference is noted
        typed({"type": "response.output_text.done", "output_index": 0, "content_index": 0, "text": "Hello"}),
        typed({"type": "response.function_call_arguments.delta", "output_index": 1, "delta": "{}"}),
        typed({"type": "response.output_item.added", "output_index": 2, "item": {"type": "function_call", "call_id": "call_2", "name": "f", "arguments": ""}}),
        typed({"type": "response.function_call_arguments.delta", "output_index": 2, "delta": '{"q":'}),
        typed({"type": "response.function_call_arguments.done", "output_index": 2, "arguments": '{"q":1}'}),
        typed({"type": "response.reasoning_summary_text.delta", "output_index": 3, "summary_index": 0, "delta": "hmm"}),
        typed({"type": "response.web_search_call.searching", "output_index": 4}),
        typed({"type": "error", "code": "server_error", "message": "oops"}),
        typed({"type": "error", "error": {"type": "invalid_request_error", "message": "nested"}}),
        typed({"type": "response.incomplete", "response": {"status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}, "usage": {"output_tokens": 3}}}),
    ]  # fmt: skip
    assembly = assemble_events(OPENAI_RESPONSES, events)
    assert assembly.text == "Hello"
    assert assembly.thinking == "hmm"
    assert [(c.index, c.id, c.name, c.arguments) for c in assembly.tool_calls] == [
        (0, "", "", "{}"),
        (1, "call_2", "f", '{"q":1}'),
    ]
    assert assembly.errors == ["server_error: oops", "invalid_request_error: nested"]
    assert assembly.terminal and assembly.finish_reason == "max_output_tokens"
    assert assembly.usage == {"output_tokens": 3}
    assert any("differs from its deltas" in p for p in assembly.problems)
    assert any("before its output_item.added" in p for p in assembly.problems)
    assert assembly.content_events == 6


def test_ten_thousand_events_and_unknown_formats() -> None:
    chat = [chat_chunk(content="x") for _ in range(10_000)] + [ev("[DONE]")]
    assembly = assemble_events(OPENAI_CHAT, chat)
    assert assembly.text == "x" * 10_000 and assembly.content_events == 10_000 and assembly.terminal

    garbage = [ev(f"junk {i}") for i in range(10_000)]
    for provider in (OPENAI_CHAT, OPENAI_RESPONSES, ANTHROPIC):
        result = assemble_events(provider, garbage)
        assert result.events == 10_000 and result.text == ""
        assert len(result.problems) == 101 and result.problems[-1] == "9900 more problems not listed"

    unknown = assemble_events("unknown", chat)
    assert (unknown.provider, unknown.events, unknown.text, unknown.terminal) == (
        "unknown",
        10_001,
        "",
        False,
    )
    assert detect("http://example.test/v1/embeddings", b"\xff", None, garbage) == "unknown"
    assert assemble_json("unknown", b"{}").text == ""
    with pytest.raises(ValueError, match="unknown provider 'gemini'"):
        assemble_events("gemini", [])


@pytest.mark.parametrize("provider", [OPENAI_CHAT, OPENAI_RESPONSES, ANTHROPIC])
def test_assemble_json_hostile_bodies(provider: str) -> None:
    for body in (
        b"",
        b"{",
        b"[]",
        b"null",
        b'"s"',
        b"[" * 100_000,
        b'{"choices": 1, "output": 2, "content": 3}',
    ):
        result = assemble_json(provider, body)
        assert result.text == "" and result.tool_calls == []
    openai_error = assemble_json(provider, b'{"error": {"message": "Rate limit", "type": "requests"}}')
    assert openai_error.errors == ["requests: Rate limit"] and not openai_error.terminal
    claude_error = assemble_json(
        provider, b'{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}'
    )
    assert claude_error.errors == ["overloaded_error: Overloaded"] and not claude_error.terminal


def test_tool_call_json_validity() -> None:
    assert ToolCall(0, "a", "f", "").valid_json and ToolCall(0, "a", "f", "").parsed == {}
    assert not ToolCall(0, "a", "f", " ").valid_json
    assert not ToolCall(0, "a", "f", '{"city": "Par').valid_json
    assert ToolCall(0, "a", "f", '{"city": "Paris"}').parsed == {"city": "Paris"}
    assert ToolCall(0, "a", "f", "[" * 100_000).parsed is None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
field_names = st.sampled_from(
    ["type", "index", "delta", "choices", "content", "tool_calls", "function", "arguments", "output_index",
     "item", "response", "message", "usage", "error", "content_block", "partial_json", "text", "item_id"]
)  # fmt: skip
event_names = st.sampled_from(
    ["message", "error", "ping", "message_start", "content_block_start", "content_block_delta", "message_delta",
     "message_stop", "response.output_text.delta", "response.output_item.added", "response.completed",
     "response.function_call_arguments.delta", "response.function_call_arguments.done", "response.output_text.done"]
)  # fmt: skip
shaped = st.recursive(
    json_values,
    lambda children: (
        st.dictionaries(field_names | event_names, children, max_size=5) | st.lists(children, max_size=3)
    ),
    max_leaves=20,
)
hostile_events = st.lists(
    st.builds(
        ev,
        st.one_of(shaped.map(json.dumps), st.text(max_size=20), st.just("[DONE]")),
        event_names,
        st.integers(min_value=0, max_value=10**12),
    ),
    max_size=30,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=hostile_events)
def test_generated_hostile_streams_never_raise(events: list[Event]) -> None:
    for provider in PROVIDERS:
        state = new_assembler(provider)
        for n, event in enumerate(events, 1):
            state.feed(event)
            result = state.result()  # at any point
            assert result.events == n
        json.dumps(state.result().as_dict())
        assert state.result().content_events <= len(events)
    detect("", b"", None, events)
    for body in events:
        for provider in PROVIDERS:
            assemble_json(provider, body.data.encode())
