"""The SSE emulator against the official SDKs: openai (Chat Completions, Responses) and anthropic (Messages),
sync and async, streaming and not, on their own httpx2 clients.

No mocks: every test talks HTTP/1.1 to the emulator on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import anthropic
import openai
import pytest
from anthropic.types import Message
from helpers import CHAT, MESSAGES, claude, oai
from openai.types.chat import ChatCompletionChunk

from streamtape.emulator import Emulator, Scenario, expected_text, expected_tool_calls, openai_chat

pytestmark = pytest.mark.timeout(30)


# -- OpenAI Chat Completions through the SDK -------------------------------------------------------


@pytest.mark.parametrize(
    "knobs", [{"events": 7}, {"text": "Hello, wörld 🌍!", "events": 5}, {"unicode": True}]
)
def test_openai_chat_text(emulator: Emulator, knobs: dict[str, Any]) -> None:
    stream = oai(emulator, **knobs).chat.completions.create(model="gpt-test", messages=MESSAGES, stream=True)
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == expected_text(Scenario(**knobs)) != ""
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert {c.model for c in chunks} == {"gpt-test"}
    assert all(c.usage is None for c in chunks)  # no usage chunk unless asked for
    assert emulator.requests[-1].path == "/v1/chat/completions"


def test_openai_chat_text_async(emulator: Emulator) -> None:
    async def run() -> tuple[str, str | None]:
        async with openai.AsyncOpenAI(
            base_url=emulator.url(events=9) + "/v1", api_key="sk-test", max_retries=0, timeout=5
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
def test_openai_chat_tool_calls(emulator: Emulator, tools: int) -> None:
    stream = oai(emulator, tools=tools, unicode=True).chat.completions.create(
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


def test_openai_chat_include_usage(emulator: Emulator) -> None:
    stream = oai(emulator, events=4).chat.completions.create(
        model="gpt-test", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 4
    assert all(c.usage is None for c in chunks[:-1])


def test_openai_chat_not_streaming(emulator: Emulator) -> None:
    completion = oai(emulator, events=6, tools=1, text="Let me check.").chat.completions.create(
        model="gpt-test", messages=MESSAGES
    )
    assert completion.choices[0].message.content == "Let me check."
    assert completion.choices[0].finish_reason == "tool_calls"
    assert (
        completion.choices[0].message.tool_calls[0].function.name
        == expected_tool_calls(Scenario(tools=1))[0][0]
    )


def test_async_sdk_drains_after_done_but_not_forever(emulator: Emulator) -> None:
    """After `[DONE]` the async SDK reads on (HTTP/1.1) for at most ~0.1 s; a stall there costs only that."""
    done_index = len(openai_chat.stream_events(Scenario(events=3), CHAT)) - 1

    async def run() -> float:
        async with openai.AsyncOpenAI(
            base_url=emulator.url(events=3, stall_at=done_index + 1, stall_s=3) + "/v1",
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


def test_openai_responses_stream(emulator: Emulator) -> None:
    client = oai(emulator, events=8, unicode=True)
    events = list(client.responses.create(model="gpt-test", input="hi", stream=True))
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert "".join(deltas) == expected_text(Scenario(events=8, unicode=True))
    assert len(deltas) == 8
    assert events[0].type == "response.created"
    assert events[-1].type == "response.completed"
    assert events[-1].response.output_text == "".join(deltas)
    assert [e.sequence_number for e in events] == list(range(len(events)))


def test_openai_responses_parallel_function_calls(emulator: Emulator) -> None:
    with oai(emulator, tools=2).responses.stream(model="gpt-test", input="hi") as stream:
        final = stream.get_final_response()
    calls = [(item.name, json.loads(item.arguments)) for item in final.output if item.type == "function_call"]
    assert calls == expected_tool_calls(Scenario(tools=2))


# -- Anthropic Messages through the SDK ------------------------------------------------------------


def test_anthropic_stream_text(emulator: Emulator) -> None:
    with claude(emulator, events=6, unicode=True, ping_every=2).messages.stream(
        model="claude-test", max_tokens=100, messages=MESSAGES
    ) as stream:
        streamed = "".join(stream.text_stream)
        message = stream.get_final_message()
        request_id = stream.response.headers["request-id"]
    assert streamed == message.content[0].text == expected_text(Scenario(events=6, unicode=True))
    assert message.stop_reason == "end_turn"
    assert message.model == "claude-test"
    assert request_id.startswith("req_")


def test_anthropic_stream_tools_and_thinking(emulator: Emulator) -> None:
    with claude(emulator, tools=2, thinking=True).messages.stream(
        model="claude-test", max_tokens=100, messages=MESSAGES
    ) as stream:
        message = stream.get_final_message()
    assert message.stop_reason == "tool_use"
    assert message.content[0].type == "thinking"
    assert message.content[0].thinking and message.content[0].signature
    uses = [(block.name, block.input) for block in message.content if block.type == "tool_use"]
    assert uses == expected_tool_calls(Scenario(tools=2))


def test_anthropic_stream_async(emulator: Emulator) -> None:
    async def run() -> Message:
        async with (
            anthropic.AsyncAnthropic(
                base_url=emulator.url(events=5, tools=1, text="On it."),
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


def test_anthropic_not_streaming(emulator: Emulator) -> None:
    message = claude(emulator, events=4).messages.create(
        model="claude-test", max_tokens=100, messages=MESSAGES
    )
    assert message.content[0].text == expected_text(Scenario(events=4))
    assert emulator.requests[-1].path == "/v1/messages"
