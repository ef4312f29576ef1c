"""The SSE emulator misbehaving on purpose, as real clients see it: resets, cut bodies, stalls, split
reads, retryable error statuses, gzip, mid-stream error events, dropped final events; and stopping promptly.

No mocks: every test talks HTTP/1.1 to the emulator on 127.0.0.1.
"""

from __future__ import annotations

import threading
import time
import zlib

import anthropic
import httpx
import httpx2
import openai
import pytest
from helpers import CHAT, MESSAGES, claude, oai

from streamtape.emulator import Emulator, Scenario, anthropic_messages, expected_text, openai_chat

pytestmark = pytest.mark.timeout(30)


# -- misbehaviour -----------------------------------------------------------------------------------


def test_reset_raises_after_earlier_events(emulator: Emulator) -> None:
    events: list[str] = []
    with (
        httpx.Client(timeout=5) as client,
        client.stream("POST", emulator.url(reset_at=5) + "/v1/chat/completions", json=CHAT) as response,
    ):
        assert response.status_code == 200
        with pytest.raises(httpx.ReadError, match="reset"):  # a reset, not a clean EOF
            events.extend(line for line in response.iter_lines() if line)
    assert len(events) == 5 and all(line.startswith("data: {") for line in events)


def test_cut_raises_remote_protocol_error(emulator: Emulator) -> None:
    received = b""
    with (
        httpx2.Client(http2=False, timeout=5) as client,
        client.stream(
            "POST", emulator.url(cut_at=3) + "/v1/messages", json={"model": "claude-test", "stream": True}
        ) as response,
        pytest.raises(httpx2.RemoteProtocolError),
    ):
        for piece in response.iter_raw():
            received += piece
    assert received.count(b"\n\n") == 3 and received.startswith(b"event: message_start\n")


def test_stall_longer_than_read_timeout_raises(emulator: Emulator) -> None:
    timeout = httpx.Timeout(5, read=0.2)
    with (
        httpx.Client(timeout=timeout) as client,
        client.stream(
            "POST", emulator.url(stall_at=3, stall_s=0.5) + "/v1/chat/completions", json=CHAT
        ) as response,
        pytest.raises(httpx.ReadTimeout),
    ):
        for _ in response.iter_raw():
            pass


def test_split_makes_more_reads_than_events(emulator: Emulator) -> None:
    scenario = Scenario(split=3)
    expected = openai_chat.stream_events(scenario, CHAT)
    with (
        httpx2.Client(http2=False, timeout=5) as client,
        client.stream("POST", emulator.url(split=3) + "/v1/chat/completions", json=CHAT) as response,
    ):
        pieces = list(response.iter_raw())
    assert b"".join(pieces) == b"".join(expected)
    assert len(pieces) > len(expected)


def test_split_utf8_cuts_inside_characters(emulator: Emulator) -> None:
    request = {"model": "claude-test", "stream": True, "messages": MESSAGES}
    with (
        httpx.Client(timeout=5) as client,
        client.stream("POST", emulator.url(split_utf8=True) + "/v1/messages", json=request) as response,
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


def test_overloaded_first_attempt_is_retried(emulator: Emulator) -> None:
    client = claude(emulator, max_retries=2, status=529, fail_first=1, retry_after=0.01, events=3)
    with client.messages.stream(model="claude-test", max_tokens=100, messages=MESSAGES) as stream:
        message = stream.get_final_message()
    assert message.content[0].text == expected_text(Scenario(events=3))
    assert [r.attempt for r in emulator.requests] == [1, 2]
    assert emulator.requests[1].header("x-stainless-retry-count") == "1"


def test_every_attempt_fails_without_fail_first(emulator: Emulator) -> None:
    with pytest.raises(anthropic.OverloadedError) as caught:
        claude(emulator, max_retries=1, status=529, retry_after=0.01).messages.create(
            model="claude-test", max_tokens=100, messages=MESSAGES
        )
    assert caught.value.body["error"]["type"] == "overloaded_error"
    assert len(emulator.requests) == 2


def test_rate_limit_without_retries_raises(emulator: Emulator) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        oai(emulator, status=429, retry_after=0).chat.completions.create(
            model="gpt-test", messages=MESSAGES, stream=True
        )
    assert caught.value.response.headers["retry-after"] == "0"
    assert caught.value.code == "rate_limit_exceeded"
    assert len(emulator.requests) == 1


def test_gzip_decodes_to_the_same_events(emulator: Emulator) -> None:
    expected = openai_chat.stream_events(Scenario(gzip=True), CHAT)
    with (
        httpx.Client(timeout=5) as client,
        client.stream("POST", emulator.url(gzip=True) + "/v1/chat/completions", json=CHAT) as response,
    ):
        assert response.headers["content-encoding"] == "gzip"
        raw = list(response.iter_raw())
    assert zlib.decompressobj(wbits=31).decompress(raw[0]) == expected[0]  # flushed per event
    assert zlib.decompress(b"".join(raw), wbits=31) == b"".join(expected)
    with httpx.Client(timeout=5) as client:
        decoded = client.post(emulator.url(gzip=True) + "/v1/chat/completions", json=CHAT).content
    assert decoded == b"".join(expected)


def test_openai_error_event_raises_api_error(emulator: Emulator) -> None:
    stream = oai(emulator, error_at=4).chat.completions.create(
        model="gpt-test", messages=MESSAGES, stream=True
    )
    received = []
    with pytest.raises(openai.APIError) as caught:
        received.extend(stream)
    assert len(received) == 4
    assert not isinstance(caught.value, openai.APIConnectionError)
    assert caught.value.type == "server_error"


def test_anthropic_error_event_raises_overloaded(emulator: Emulator) -> None:
    texts: list[str] = []
    client = claude(emulator, error_at=6)
    with (
        pytest.raises(anthropic.APIStatusError) as caught,
        client.messages.stream(model="claude-test", max_tokens=100, messages=MESSAGES) as stream,
    ):
        texts.extend(stream.text_stream)
    assert caught.value.body["error"]["type"] == "overloaded_error"
    assert len(texts) == 3  # message_start, ping, block start, then 3 text deltas


def test_drop_final_ends_the_body_without_final_events(emulator: Emulator) -> None:
    with httpx.Client(timeout=5) as client:
        chat = client.post(emulator.url(drop_final=True) + "/v1/chat/completions", json=CHAT).text
        responses = client.post(
            emulator.url(drop_final=True) + "/v1/responses", json={"stream": True, "input": "x"}
        ).text
        messages = client.post(emulator.url(drop_final=True) + "/v1/messages", json={"stream": True}).text
    assert "[DONE]" not in chat and '"finish_reason":"stop"' not in chat and chat.endswith("\n\n")
    assert "response.completed" not in responses and "response.output_item.done" in responses
    assert "message_delta" not in messages and "message_stop" not in messages
    with (
        pytest.raises(RuntimeError, match=r"response\.completed"),
        oai(emulator, drop_final=True).responses.stream(model="gpt-test", input="hi") as stream,
    ):
        stream.get_final_response()


def test_stop_is_prompt_during_a_stall_and_quiet_on_disconnect(capfd: pytest.CaptureFixture[str]) -> None:
    emu = Emulator().start()
    # A client that hangs up mid-stream must not make the server print a traceback.
    with (
        httpx.Client(timeout=5) as client,
        client.stream("POST", emu.url(pace_ms=20, events=20) + "/v1/chat/completions", json=CHAT) as response,
    ):
        next(response.iter_raw())
    time.sleep(0.15)

    errors: list[BaseException] = []

    def stalled_client() -> None:
        try:
            httpx.post(emu.url(stall_at=2, stall_s=30) + "/v1/chat/completions", json=CHAT, timeout=10)
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
