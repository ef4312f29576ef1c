"""Recording the OpenAI and Anthropic SDKs (both on httpx2), sync and async, against the real emulator.

The SDKs get a real ``httpx2`` client whose transport is streamtape's recording transport; the tests then
compare what the SDK assembled with what the tape's raw bytes say, parsed here by hand.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import openai
import pytest
from helpers import MESSAGES, decompressed, only_exchange

import streamtape
import streamtape.httpx2
from streamtape.emulator import Emulator, Scenario, expected_text, expected_tool_calls
from streamtape.record.redact import Redactor

pytestmark = pytest.mark.timeout(30)

OPENAI_KEY = "sk-proj-SECRET-openai-7f3a9c2e"
ANTHROPIC_KEY = "sk-ant-api03-SECRET-anthropic-1b2c3d"


def sse_events(body: bytes) -> list[tuple[str | None, str]]:
    """(event name, data) of each event in a whole SSE body; decoded only once the pieces are joined."""
    out = []
    for block in body.decode("utf-8").split("\n\n"):
        if not block:
            continue
        name, data = None, []
        for line in block.split("\n"):
            key, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if key == "event":
                name = value
            elif key == "data":
                data.append(value)
        out.append((name, "\n".join(data)))
    return out


def openai_text_from_tape(body: bytes) -> str:
    text = []
    for _, data in sse_events(body):
        if data == "[DONE]":
            break
        for choice in json.loads(data)["choices"]:
            text.append(choice["delta"].get("content") or "")
    return "".join(text)


def header(exchange: streamtape.Exchange, name: str) -> str:
    """A recorded request header's value, its name matched case-insensitively (the tape keeps the case)."""
    (value,) = [v for n, v in exchange.request.headers if n.lower() == name]
    return value


# -- OpenAI -------------------------------------------------------------------------------------------


def openai_sync(
    emulator: Emulator, tape: Path, *, api_key: str = "sk-test", redact: Any = True, **knobs: Any
) -> str:
    with openai.OpenAI(
        http_client=httpx2.Client(transport=streamtape.httpx2.RecordingTransport(tape, redact=redact)),
        base_url=emulator.url(**knobs) + "/v1",
        api_key=api_key,
        max_retries=0,
        timeout=5,
    ) as client:
        stream = client.chat.completions.create(model="gpt-test", messages=MESSAGES, stream=True)
        return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)


def openai_async(emulator: Emulator, tape: Path, *, api_key: str = "sk-test", **knobs: Any) -> str:
    async def run() -> str:
        async with openai.AsyncOpenAI(
            http_client=httpx2.AsyncClient(transport=streamtape.httpx2.AsyncRecordingTransport(tape)),
            base_url=emulator.url(**knobs) + "/v1",
            api_key=api_key,
            max_retries=0,
            timeout=5,
        ) as client:
            stream = await client.chat.completions.create(model="gpt-test", messages=MESSAGES, stream=True)
            return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    return asyncio.run(run())


KNOBS = {"events": 8, "unicode": True, "split_utf8": True}


def _assert_openai_tape(emulator: Emulator, tape: Path, sdk_text: str) -> streamtape.Exchange:
    exchange = only_exchange(tape)
    assert exchange.request.body == emulator.requests[0].body
    assert json.loads(exchange.request.body)["stream"] is True
    assert exchange.response is not None and exchange.response.status_code == 200
    assert b"data: [DONE]\n\n" in exchange.body
    assert openai_text_from_tape(exchange.body) == sdk_text == expected_text(Scenario(**KNOBS))
    return exchange


def test_openai_sync_stops_at_done_so_the_tape_ends_client_closed_with_done_recorded(
    emulator: Emulator, tmp_path: Path
) -> None:
    """The sync SDK breaks out of the SSE loop at ``[DONE]`` and closes the response before the body's end."""
    text = openai_sync(emulator, tmp_path / "run.tape", **KNOBS)
    exchange = _assert_openai_tape(emulator, tmp_path / "run.tape", text)
    assert exchange.end.outcome == "client_closed"
    assert exchange.end.error_type is None


def test_openai_async_drains_after_done_so_the_tape_ends_complete(emulator: Emulator, tmp_path: Path) -> None:
    """The async SDK drains an HTTP/1.1 body after ``[DONE]`` (``openai._streaming_cleanup``): it reads the end."""
    text = openai_async(emulator, tmp_path / "run.tape", **KNOBS)
    exchange = _assert_openai_tape(emulator, tmp_path / "run.tape", text)
    assert exchange.end.outcome == "complete"
    assert exchange.body.endswith(b"data: [DONE]\n\n")


# -- Anthropic ----------------------------------------------------------------------------------------


def anthropic_message(
    emulator: Emulator,
    tape: Path,
    *,
    is_async: bool,
    api_key: str = "sk-test",
    max_retries: int = 0,
    **knobs: Any,
) -> anthropic.types.Message:
    request = {"model": "claude-test", "max_tokens": 100, "messages": MESSAGES}
    if not is_async:
        with (
            anthropic.Anthropic(
                http_client=httpx2.Client(transport=streamtape.httpx2.RecordingTransport(tape)),
                base_url=emulator.url(**knobs),
                api_key=api_key,
                max_retries=max_retries,
                timeout=5,
            ) as client,
            client.messages.stream(**request) as stream,
        ):
            return stream.get_final_message()

    async def run() -> anthropic.types.Message:
        async with (
            anthropic.AsyncAnthropic(
                http_client=httpx2.AsyncClient(transport=streamtape.httpx2.AsyncRecordingTransport(tape)),
                base_url=emulator.url(**knobs),
                api_key=api_key,
                max_retries=max_retries,
                timeout=5,
            ) as client,
            client.messages.stream(**request) as stream,
        ):
            return await stream.get_final_message()

    return asyncio.run(run())


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_anthropic_stream_with_tool_use_is_recorded_complete(
    emulator: Emulator, tmp_path: Path, is_async: bool
) -> None:
    knobs = {"events": 5, "tools": 1, "unicode": True, "text": "Let me check ✓."}
    message = anthropic_message(emulator, tmp_path / "run.tape", is_async=is_async, **knobs)
    assert message.stop_reason == "tool_use"

    exchange = only_exchange(tmp_path / "run.tape")
    assert exchange.end.outcome == "complete"
    assert exchange.response is not None and exchange.response.status_code == 200
    events = sse_events(exchange.body)
    assert events[-1][0] == "message_stop"
    deltas = [json.loads(data)["delta"] for name, data in events if name == "content_block_delta"]
    text = "".join(d["text"] for d in deltas if d["type"] == "text_delta")
    arguments = "".join(d["partial_json"] for d in deltas if d["type"] == "input_json_delta")
    blocks = {block.type: block for block in message.content}
    assert text == blocks["text"].text == "Let me check ✓."
    assert json.loads(arguments) == blocks["tool_use"].input == expected_tool_calls(Scenario(**knobs))[0][1]


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_anthropic_retry_after_529_is_recorded_as_two_exchanges(
    emulator: Emulator, tmp_path: Path, is_async: bool
) -> None:
    knobs = {"status": 529, "fail_first": 1, "retry_after": 0.01, "events": 3}
    message = anthropic_message(emulator, tmp_path / "run.tape", is_async=is_async, max_retries=2, **knobs)
    assert message.content[0].text == expected_text(Scenario(**knobs))

    tape = streamtape.open_tape(tmp_path / "run.tape")
    assert not tape.incomplete
    failed, retried = tape.exchanges
    assert failed.id != retried.id
    assert failed.response is not None and failed.response.status_code == 529
    assert failed.response.reason == "Overloaded"
    # The SDK closes a response it will retry without reading its body (anthropic/_base_client.py).
    assert failed.end.outcome == "client_closed"
    assert failed.chunks == []
    assert retried.response is not None and retried.response.status_code == 200
    assert retried.end.outcome == "complete"
    assert header(retried, "x-stainless-retry-count") == "1"
    assert retried.request.t_ns > failed.request.t_ns


# -- redaction of the SDKs' API keys ----------------------------------------------------------------


def test_openai_api_key_never_reaches_the_tape(emulator: Emulator, tmp_path: Path) -> None:
    path = tmp_path / "run.tape"
    openai_sync(emulator, path, api_key=OPENAI_KEY, events=3)
    content = decompressed(path)
    for secret in (OPENAI_KEY, "SECRET"):
        assert secret.encode() not in content
        assert secret.encode() not in path.read_bytes()
    assert b"authorization" in content and b"Bearer REDACTED:" in content
    fingerprint = Redactor().fingerprint(OPENAI_KEY)  # the key is $STREAMTAPE_REDACT_KEY (conftest)
    assert header(only_exchange(path), "authorization") == f"Bearer {fingerprint}"


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_anthropic_api_key_never_reaches_the_tape(emulator: Emulator, tmp_path: Path, is_async: bool) -> None:
    path = tmp_path / "run.tape"
    anthropic_message(emulator, path, is_async=is_async, api_key=ANTHROPIC_KEY, events=3)
    content = decompressed(path)
    for secret in (ANTHROPIC_KEY, "SECRET"):
        assert secret.encode() not in content
        assert secret.encode() not in path.read_bytes()
    assert b"REDACTED:" in content
    # Whichever header this SDK version carries the key in (x-api-key, or Authorization: Bearer), the tape
    # holds that header with the key replaced by its fingerprint and everything else kept.
    carried = [(n, v) for n, v in emulator.requests[0].headers if ANTHROPIC_KEY in v]
    assert carried
    fingerprint = Redactor().fingerprint(ANTHROPIC_KEY)
    exchange = only_exchange(path)
    for name, value in carried:
        assert header(exchange, name.lower()) == value.replace(ANTHROPIC_KEY, fingerprint)


def test_same_api_key_in_two_tapes_has_the_same_fingerprint(emulator: Emulator, tmp_path: Path) -> None:
    one, two, other = tmp_path / "one.tape", tmp_path / "two.tape", tmp_path / "other.tape"
    openai_sync(emulator, one, api_key=OPENAI_KEY, events=2)
    openai_async(emulator, two, api_key=OPENAI_KEY, events=2)
    openai_sync(emulator, other, api_key=OPENAI_KEY + "-other", events=2)
    auth = [header(only_exchange(p), "authorization") for p in (one, two, other)]
    assert auth[0] == auth[1] != auth[2]
    assert auth[0].startswith("Bearer REDACTED:")
    key_ids = {streamtape.open_tape(p).header.redaction.key_id for p in (one, two, other)}
    assert len(key_ids) == 1


def test_openai_api_key_is_kept_when_redaction_is_off(emulator: Emulator, tmp_path: Path) -> None:
    path = tmp_path / "run.tape"
    openai_sync(emulator, path, api_key=OPENAI_KEY, redact=False, events=2)
    assert f"Bearer {OPENAI_KEY}".encode() in decompressed(path)
    assert header(only_exchange(path), "authorization") == f"Bearer {OPENAI_KEY}"
