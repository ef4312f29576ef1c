"""The fast path (``analysis/fastpath.py``) gives exactly what the full SSE decoder and dict assemblers give."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import streamtape
from streamtape import faults
from streamtape.analysis import fastpath, sse
from streamtape.emulator import Scenario, anthropic_messages, openai_chat, openai_responses
from streamtape.emulator.wire import pieces
from streamtape.format.records import Chunk, End, Request, Response
from streamtape.model import Exchange

ROOT = Path(__file__).resolve().parents[1]
URLS = {
    "chat": "https://api.openai.com/v1/chat/completions",
    "responses": "https://api.openai.com/v1/responses",
    "anthropic": "https://api.anthropic.com/v1/messages",
}
GENERATORS = {
    "chat": openai_chat.stream_events,
    "responses": openai_responses.stream_events,
    "anthropic": anthropic_messages.stream_events,
}
REQUEST: dict[str, Any] = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]}


def _full_scan(chunks: list[tuple[int, bytes]]) -> fastpath.Scan:
    events, hazards = sse.decode(chunks)
    return fastpath.Scan([], events, hazards, 0)


def full_diagnose(exchange: Exchange) -> dict[str, Any]:
    """``diagnose`` with the full decoder and the dict assemblers only."""
    with mock.patch.object(fastpath, "scan", _full_scan):
        return dataclasses.asdict(streamtape.diagnose(exchange))


def assert_same(exchange: Exchange) -> fastpath.Scan:
    """Fast and full agree on the Diagnostics, the events and the hazards; the scan, for more checks."""
    assert dataclasses.asdict(streamtape.diagnose(exchange)) == full_diagnose(exchange)
    chunks = [(c.t_ns, c.data) for c in exchange.chunks]
    assert fastpath.decode(chunks) == sse.decode(chunks)
    return fastpath.scan(chunks)


def exchange_of(url: str, chunks: list[bytes], outcome: str = "complete") -> Exchange:
    request = Request(1, 0, "POST", url, [], json.dumps(REQUEST).encode())
    records = [Chunk(1, 1_000 + i * 1_000_000, d) for i, d in enumerate(chunks)]
    head = Response(1, 500, 200, "HTTP/1.1", [("content-type", "text/event-stream")])
    end_t = records[-1].t_ns + 1 if records else 2_000
    return Exchange(0, 1, request, head, records, End(1, end_t, outcome))


def emulated(provider: str, **knobs: Any) -> Exchange:
    scenario = Scenario(**knobs)
    chunks = [
        p
        for event in GENERATORS[provider](scenario, REQUEST)
        for p in pieces(event, scenario.split, scenario.split_utf8)
    ]
    return exchange_of(URLS[provider], chunks)


# -- every tape and vector we have --------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted((ROOT / "samples").glob("*.tape")), ids=lambda p: p.name)
def test_samples_diagnose_the_same(path: Path) -> None:
    for exchange in streamtape.open_tape(path).exchanges:
        assert_same(exchange)


def _readable_vectors() -> list[Path]:
    out = []
    for path in sorted((ROOT / "spec" / "vectors").glob("*.tape")):
        try:
            streamtape.open_tape(path)
        except Exception:  # a vector that is meant not to read
            continue
        out.append(path)
    return out


@pytest.mark.parametrize("path", _readable_vectors(), ids=lambda p: p.name)
def test_spec_vectors_diagnose_the_same(path: Path) -> None:
    for exchange in streamtape.open_tape(path).exchanges:
        assert_same(exchange)


KNOBS: list[dict[str, Any]] = [
    {},
    {"split": 3},
    {"split_utf8": True},
    {"unicode": True},
    {"tools": 2},
    {"tools": 1, "split": 3},
    {"error_at": 4},
    {"ping_every": 2},
    {"thinking": True},
    {"thinking": True, "tools": 2, "split_utf8": True, "ping_every": 3},
    {"drop_final": True},
]


@pytest.mark.parametrize("provider", sorted(GENERATORS))
@pytest.mark.parametrize(
    "knobs", KNOBS, ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()) or "default"
)
def test_emulator_streams_diagnose_the_same_on_the_fast_path(provider: str, knobs: dict[str, Any]) -> None:
    found = assert_same(emulated(provider, **knobs))
    assert found.handover is None and found.raw  # all of it went the fast way


def test_the_fast_path_sees_split_events_and_split_characters() -> None:
    found = assert_same(emulated("chat", split_utf8=True, split=2))
    assert found.hazards.split_events and found.hazards.split_utf8


# -- what makes it fall back ----------------------------------------------------------------------------

BASE = [
    b'data: {"choices":[{"delta":{"content":"a"}}]}\n\n',
    b'data: {"choices":[{"delta":{"content":"b"}}]}\n\n',
]
FALLBACKS = {
    "crlf": [BASE[0], BASE[1].replace(b"\n", b"\r\n")],
    "lone cr": [BASE[0], BASE[1].replace(b"\n", b"\r")],
    "comment": [BASE[0], b": keep-alive\n\n", BASE[1]],
    "bom": [b"\xef\xbb\xbf" + BASE[0], BASE[1]],
    "id": [BASE[0], b"id: 7\n" + BASE[1]],
    "retry": [BASE[0], b"retry: 100\n" + BASE[1]],
    "multi-line data": [BASE[0], b'data: {"choices":\ndata: []}\n\n', BASE[1]],
    "invalid utf-8": [BASE[0], b'data: {"choices":[{"delta":{"content":"\xff"}}]}\n\n', BASE[1]],
    "invalid utf-8 in a skipped field": [BASE[0], b'data: {"x":"\xc3","choices":[]}\n\n', BASE[1]],
    "unterminated": [BASE[0], BASE[1][:-1]],
    "extra blank line": [BASE[0], b"\n", BASE[1]],
}


@pytest.mark.parametrize("name", sorted(FALLBACKS))
def test_each_fallback_is_taken_and_gives_the_full_result(name: str) -> None:
    found = assert_same(exchange_of(URLS["chat"], FALLBACKS[name], "incomplete"))
    assert found.handover is not None  # the full decoder took over


@pytest.mark.parametrize(
    "data",
    [
        b"{not json",
        b"[1, 2]",
        b'{"choices": {"index": 0}}',
        b'{"choices":[{"index":true,"delta":{"content":"x"}}]}',
        b'{"choices":[{"delta":{"content":5}}]}',
        b'{"choices":[{"delta":{"tool_calls":[{"function":{"name":"f"}}]}}]}',
        b'{"model":7,"choices":[]}',
        b'{"error":{"type":"server_error","message":"boom"}}',
        b'{"choices":[],"x":' + b"[" * 5000 + b"]" * 5000 + b"}",
    ],
)
def test_typed_json_falls_back_to_the_dict_path(data: bytes) -> None:
    chunks = [BASE[0], b"data: " + data + b"\n\n", BASE[1], b"data: [DONE]\n\n"]
    assert_same(exchange_of(URLS["chat"], chunks))


@pytest.mark.parametrize(
    ("provider", "event"),
    [
        ("anthropic", b'event: content_block_delta\ndata: {"type":"content_block_delta","index":true}\n\n'),
        ("anthropic", b'event: content_block_delta\ndata: {"type":"ping","index":0}\n\n'),
        ("anthropic", b'event: content_block_delta\ndata: {"index":0,"delta":{"type":"text_delta"}}\n\n'),
        (
            "anthropic",
            b'event: content_block_delta\ndata: {"index":9,"delta":{"type":"input_json_delta","partial_json":"{"}}\n\n',
        ),
        (
            "responses",
            b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","delta":1}\n\n',
        ),
        ("responses", b'event: response.output_text.delta\ndata: {"item_id":"nope","delta":"x"}\n\n'),
        (
            "responses",
            b'event: response.function_call_arguments.delta\ndata: {"output_index":5,"delta":"{"}\n\n',
        ),
    ],
)
def test_odd_named_events_give_the_full_result(provider: str, event: bytes) -> None:
    events = GENERATORS[provider](Scenario(tools=1), REQUEST)
    assert_same(exchange_of(URLS[provider], [*events[:4], event, *events[4:]]))


# -- any rechunking, any line-end or field oddity ---------------------------------------------------------

TEMPLATE = streamtape.open_tape(ROOT / "samples" / "openai-complete.tape")
ODDITIES = [
    b"\r\n",
    b"\r",
    b": comment\n",
    b"\xef\xbb\xbf",
    b"data: more\n",
    b"id: 3\n",
    b"retry: 9\n",
    b"\n",
]


@settings(max_examples=150, deadline=None)
@given(
    provider=st.sampled_from(sorted(GENERATORS)),
    knobs=st.sampled_from(KNOBS),
    sizes=st.lists(st.integers(min_value=1, max_value=300), min_size=1, max_size=40),
    inserts=st.lists(st.tuples(st.integers(min_value=0), st.sampled_from(ODDITIES)), max_size=3),
    crlf=st.booleans(),
)
def test_random_rechunkings_and_oddities_diagnose_the_same(
    provider: str, knobs: dict[str, Any], sizes: list[int], inserts: list[tuple[int, bytes]], crlf: bool
) -> None:
    body = b"".join(GENERATORS[provider](Scenario(**knobs), REQUEST))
    if crlf:
        body = body.replace(b"\n", b"\r\n")
    for at, oddity in inserts:
        at %= len(body) + 1
        body = body[:at] + oddity + body[at:]
    exchange = exchange_of(URLS[provider], [body])
    total = sum(sizes)
    if total <= len(body):
        tape = dataclasses.replace(TEMPLATE, exchanges=[exchange])
        exchange = faults.rechunk(tape, sizes=sizes).exchanges[0]
    assert_same(exchange)
