"""The fast path (``analysis/fastpath.py``) gives exactly what the full SSE decoder and dict assemblers give,
wherever its windows fall and wherever the full decoder reads the unusual parts, reads the usual events
around those itself, and holds a bounded part of the body however long the stream."""

from __future__ import annotations

import dataclasses
import json
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import streamtape
from streamtape import faults
from streamtape.analysis import fastpath, sse
from streamtape.analysis.diagnose import decoded_chunks
from streamtape.analysis.providers import Assembly, assemble_events, detect
from streamtape.analysis.providers.assembly import JOIN_EVERY, Pieces
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
#: Window sizes that put window ends everywhere: inside "data: ", inside "\n\n", inside a character.
SMALL_WINDOWS = (1, 2, 3, 5, 8, 13, 64)


class FullScanner:
    """The reference ``BodyScanner``: the whole body through ``sse.decode``, ``detect`` and the dict
    assemblers (``feed`` only)."""

    def __init__(self, url: str, request_body: bytes, content_type: str) -> None:
        self.args = url, request_body, content_type
        self.chunks: list[tuple[int, bytes]] = []

    def feed(self, t_ns: int, data: bytes) -> None:
        self.chunks.append((t_ns, data))

    def finish(self) -> tuple[Assembly, list[str]]:
        events, hazards = sse.decode(self.chunks)
        url, request_body, content_type = self.args
        provider = detect(url, request_body, content_type, events[: fastpath.SNIFF])
        return assemble_events(provider, events), hazards.as_list()


@contextmanager
def scanner(factory: Any) -> Iterator[None]:
    with mock.patch.object(fastpath, "BodyScanner", factory):
        yield


def diagnosed(exchange: Exchange, factory: Any = None) -> dict[str, Any]:
    if factory is None:
        return dataclasses.asdict(streamtape.diagnose(exchange))
    with scanner(factory):
        return dataclasses.asdict(streamtape.diagnose(exchange))


def scan(exchange: Exchange, window: int = fastpath.WINDOW) -> fastpath.BodyScanner:
    """A finished ``BodyScanner`` over the exchange's (content-decoded) body."""
    found = fastpath.BodyScanner(
        exchange.request.url, exchange.request.body, "text/event-stream", window=window
    )
    for t_ns, data in decoded_chunks(exchange, []):
        found.feed(t_ns, data)
    found.finish()
    return found


def assert_same(exchange: Exchange, windows: tuple[int, ...] = SMALL_WINDOWS) -> fastpath.BodyScanner:
    """Fast and full agree on the Diagnostics, the events and the hazards, with the default window and with
    each of ``windows``; the default scanner, for more checks."""
    expected = diagnosed(exchange, FullScanner)
    assert diagnosed(exchange) == expected
    chunks = decoded_chunks(exchange, [])
    reference = sse.decode(chunks)
    assert fastpath.decode(chunks) == reference
    for window in windows:
        assert fastpath.decode(chunks, window=window) == reference, window
        assert diagnosed(exchange, partial(fastpath.BodyScanner, window=window)) == expected, window
    return scan(exchange)


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

SAMPLES = sorted((ROOT / "samples").glob("*.tape"))


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
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


@pytest.mark.parametrize("path", [p for p in SAMPLES if "complete" in p.name or "tool" in p.name], ids=str)
def test_the_fault_matrix_of_the_samples_diagnoses_the_same(path: Path) -> None:
    """Re-chunkings down to single bytes, cuts after and inside every event (the variants the peer SSE
    readers are checked against in test_faults_clients)."""
    for variant in faults.matrix(streamtape.open_tape(path)):
        for exchange in variant.tape.exchanges:
            assert_same(exchange, windows=(1, 13))


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
    assert found.handover is None  # all of it went the fast way
    for window in SMALL_WINDOWS:
        assert scan(emulated(provider, **knobs), window).handover is None


def test_the_fast_path_sees_split_events_and_split_characters() -> None:
    found = assert_same(emulated("chat", split_utf8=True, split=2))
    assert found.hazards.split_events and found.hazards.split_utf8


# -- the peer SSE cases: the WHATWG rules, every rechunking ----------------------------------------------

PEER = (  # as in test_analysis: a BOM, comments, CRLF and lone CR, multi-line data, id and retry
    b"\xef\xbb\xbf: a comment\r\n"
    b"event: greeting\r\ndata: caf\xc3\xa9\r\ndata:second line\r\nid: 7\r\nretry: 1500\r\n\r\n"
    b'data: {"x": 1}\n\n'
    b"data: lone cr\rdata: same event\r\r"
    b"event: empty-data-is-not-dispatched\n\n"
    b"data:  two spaces\nid: bad\x00id\n\n"
)
CLEAN_THEN_PEER = b'data: {"a": 1}\n\nevent: e\ndata: caf\xc3\xa9\n\n' + PEER[3:]


@pytest.mark.parametrize("body", [PEER, CLEAN_THEN_PEER], ids=["peer", "clean-then-peer"])
def test_the_peer_stream_decodes_the_same_at_every_cut_and_window(body: bytes) -> None:
    for cut in range(len(body) + 1):
        chunks = [(1, body[:cut]), (2, body[cut:])]
        reference = sse.decode(chunks)
        for window in (1, 4, 16, 64, fastpath.WINDOW):
            assert fastpath.decode(chunks, window=window) == reference, (cut, window)


@settings(max_examples=200, deadline=None)
@given(
    body=st.sampled_from([PEER, CLEAN_THEN_PEER]),
    cuts=st.lists(st.integers(min_value=0, max_value=len(CLEAN_THEN_PEER)), max_size=25),
    window=st.integers(min_value=1, max_value=64),
)
def test_the_peer_stream_decodes_the_same_for_every_rechunking(
    body: bytes, cuts: list[int], window: int
) -> None:
    points = sorted({min(c, len(body)) for c in cuts})
    chunks = [(i, body[a:b]) for i, (a, b) in enumerate(zip([0, *points], [*points, len(body)], strict=True))]
    assert fastpath.decode(chunks, window=window) == sse.decode(chunks)


# -- what the full decoder reads, and where the fast path resumes ------------------------------------------

BASE = [
    b'data: {"choices":[{"delta":{"content":"a"}}]}\n\n',
    b'data: {"choices":[{"delta":{"content":"b"}}]}\n\n',
]
FALLBACKS = {
    "lone cr": [BASE[0], BASE[1].replace(b"\n", b"\r")],
    "comment": [BASE[0], b": keep-alive\n\n", BASE[1]],
    "bom": [b"\xef\xbb\xbf" + BASE[0], BASE[1]],
    "split bom": [b"\xef", b"\xbb", b"\xbf" + BASE[0], BASE[1]],
    "id": [BASE[0], b"id: 7\n" + BASE[1]],
    "retry": [BASE[0], b"retry: 100\n" + BASE[1]],
    "multi-line data": [BASE[0], b'data: {"choices":\ndata: []}\n\n', BASE[1]],
    "invalid utf-8": [BASE[0], b'data: {"choices":[{"delta":{"content":"\xff"}}]}\n\n', BASE[1]],
    "invalid utf-8 in a skipped field": [BASE[0], b'data: {"x":"\xc3","choices":[]}\n\n', BASE[1]],
    "invalid utf-8 in a name": [BASE[0], b"event: \xc3\ndata: {}\n\n", BASE[1]],
    "unterminated": [BASE[0], BASE[1][:-1]],
    "extra blank line": [BASE[0], b"\n", BASE[1]],
    "no space after the colon": [BASE[0], b"data:{}\n\n", BASE[1]],
    "a field without a value": [BASE[0], b"event\ndata: {}\n\n", BASE[1]],
}


@pytest.mark.parametrize("name", sorted(FALLBACKS))
def test_each_fallback_is_taken_and_gives_the_full_result(name: str) -> None:
    found = assert_same(exchange_of(URLS["chat"], FALLBACKS[name], "incomplete"))
    assert found.handover is not None  # the full decoder took over


@pytest.mark.parametrize("name", sorted(n for n in FALLBACKS if "bom" not in n))
def test_each_fallback_after_a_long_clean_stretch_gives_the_full_result(name: str) -> None:
    """Windows of clean events before the oddity: the handover happens in a later window, mid-stream."""
    clean = [BASE[i % 2] for i in range(8000)]
    exchange = exchange_of(URLS["chat"], [*clean, *FALLBACKS[name][1:]], "incomplete")
    found = assert_same(exchange, windows=(64,))
    assert found.handover is not None and found.handover >= sum(map(len, clean))


@pytest.mark.parametrize("name", sorted(n for n in FALLBACKS if "bom" not in n and n != "unterminated"))
def test_the_fast_path_resumes_after_each_fallback(name: str) -> None:
    """Clean windows before and after the oddity: the full decoder reads the unusual event (and the next one
    when that holds the blank line that ends it), the fast path all the rest."""
    clean = [BASE[i % 2] for i in range(4000)]
    odd = FALLBACKS[name][1:]
    exchange = exchange_of(URLS["chat"], [*clean, *odd, *clean])
    found = assert_same(exchange, windows=(64,))
    total = sum(map(len, exchange.chunks.datas()))
    assert found.handover is not None and total - found.fast <= sum(map(len, odd)) + len(BASE[0])


def test_crlf_line_ends_stay_on_the_fast_path() -> None:
    for chunks in (
        [BASE[0], BASE[1].replace(b"\n", b"\r\n")],
        [b.replace(b"\n", b"\r\n") for b in BASE * 50],
    ):
        found = assert_same(exchange_of(URLS["chat"], chunks))
        assert found.handover is None


def test_mixed_shapes_in_one_window_stay_on_the_fast_path() -> None:
    events = [BASE[0], b'event: message\ndata: {"choices":[]}\n\n', b"event: \ndata: {}\n\n", BASE[1]] * 50
    found = assert_same(exchange_of(URLS["chat"], [*events, b"data: [DONE]\n\n"]))
    assert found.handover is None


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
    chunks = [BASE[0], b"data: " + data + b"\n\n", BASE[1], b"data: [DONE]\n\n", BASE[0]]
    assert_same(exchange_of(URLS["chat"], chunks))


@pytest.mark.parametrize(
    ("provider", "event"),
    [
        ("anthropic", b'event: content_block_delta\ndata: {"type":"content_block_delta","index":true}\n\n'),
        ("anthropic", b'event: content_block_delta\ndata: {"type":"ping","index":0}\n\n'),
        ("anthropic", b'event: content_block_delta\ndata: {"index":0,"delta":{"type":"text_delta"}}\n\n'),
        ("anthropic", b'event: content_block_delta\ndata: {"index":0,"delta":null}\n\n'),
        (
            "anthropic",
            b'event: content_block_delta\ndata: {"index":0,"delta":{"type":"signature_delta"}}\n\n',
        ),
        (
            "anthropic",
            b'event: content_block_delta\ndata: {"index":0,"delta":{"type":"thinking_delta","thinking":"x"}}\n\n',
        ),
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
            b'event: response.output_text.delta\ndata: {"type":"response.created","delta":"x"}\n\n',
        ),
        ("responses", b'event: response.refusal.delta\ndata: {"output_index":0,"delta":""}\n\n'),
        (
            "responses",
            b'event: response.function_call_arguments.delta\ndata: {"output_index":5,"delta":"{"}\n\n',
        ),
    ],
)
def test_odd_named_events_give_the_full_result(provider: str, event: bytes) -> None:
    events = GENERATORS[provider](Scenario(tools=1), REQUEST)
    assert_same(exchange_of(URLS[provider], [*events[:4], event, *events[4:]]))


# -- unusual here and there: the full decoder reads those events, the fast path the rest --------------------


def crlf(block: bytes) -> bytes:
    return block.replace(b"\n", b"\r\n")


def lone_cr(block: bytes) -> bytes:
    return block.replace(b"\n", b"\r")


def mixed_streams(events: list[bytes]) -> dict[str, list[bytes]]:
    """Streams of ``events`` (one a chunk unless said) with unusual parts here and there or throughout."""
    n = len(events)

    def every(k: int, make: Any) -> list[bytes]:
        return [make(e) if i % k == k - 1 else e for i, e in enumerate(events)]

    def halves(blocks: list[bytes]) -> list[bytes]:
        """Each block cut in two, at a point that moves along (so some cuts fall in line ends)."""
        cuts = [i * 7 % len(b) for i, b in enumerate(blocks)]
        return [part for b, c in zip(blocks, cuts, strict=True) for part in (b[:c], b[c:])]

    crlf_body = crlf(b"".join(events))
    after_cr = [at + 1 for at in range(len(crlf_body)) if crlf_body[at] == 13][::3]
    head = b"".join(every(2, lambda e: b": p\n\n" + e)[:6])

    def odd_line(end: bytes) -> bytes:
        """The next event with CRLF line ends, but ``end`` inside its data."""
        return crlf(events[4]).replace(b"{", b"{" + end, 1)

    return {
        "a comment after every event": [p for e in events for p in (e, b": ping\n\n")],
        "a comment every 7 events": every(7, lambda e: b": ping\n\n" + e),
        "a comment block of several lines": every(9, lambda e: b": a\n: b\n\n" + e),
        "a comment line inside events": every(5, lambda e: b": note\n" + e),
        "a leading comment": [b": OPENROUTER PROCESSING\n\n", *events],
        "a leading comment with the first event": [b": OPENROUTER PROCESSING\n\n" + events[0], *events[1:]],
        "an id on every event": [b"id: %d\n" % i + e for i, e in enumerate(events)],
        "an id after every event's data": [e[:-1] + b"id: %d\n\n" % i for i, e in enumerate(events)],
        "an id once": [*events[:3], b"id: 42\n" + events[3], *events[4:]],
        "an id-only block once": [*events[:3], b"id: 42\n\n", *events[3:]],
        "an id with a NUL once": [*events[:3], b"id: 4\x002\n" + events[3], *events[4:]],
        "an id then an empty id": [
            *events[:3],
            b"id: 9\n" + events[3],
            *events[4:9],
            b"id\n" + events[9],
            *events[10:],
        ],
        "a retry once": [*events[:2], b"retry: 1500\n" + events[2], *events[3:]],
        "a bad retry once": [*events[:2], b"retry: 15x\n" + events[2], *events[3:]],
        "crlf throughout": [crlf(e) for e in events],
        "crlf throughout with comments": [crlf(e) for e in every(6, lambda e: b": ping\n\n" + e)],
        "crlf throughout, cut in halves": halves([crlf(e) for e in events]),
        "crlf throughout, cut after CRs": [
            crlf_body[a:b] for a, b in zip([0, *after_cr], [*after_cr, None], strict=True)
        ],
        "crlf in one event": [*events[:4], crlf(events[4]), *events[5:]],
        "a lone cr in a line of a crlf stream": [
            *map(crlf, events[:4]),
            odd_line(b"\r"),
            *map(crlf, events[4:]),
        ],
        "a lone lf in a line of a crlf stream": [
            *map(crlf, events[:4]),
            odd_line(b"\n"),
            *map(crlf, events[4:]),
        ],
        "lf in one event of a crlf stream": [*map(crlf, events[:4]), events[4], *map(crlf, events[5:])],
        "crlf then lf": [*map(crlf, events[: n // 2]), *events[n // 2 :]],
        "a lone cr event": [*events[:4], lone_cr(events[4]), *events[5:]],
        "a lone cr line end": [*events[:4], events[4][:-2] + b"\r\n", *events[5:]],
        "lone cr throughout": [lone_cr(e) for e in events],
        "a cr before the blank line": [*events[:4], events[4][:-1] + b"\r\n", *events[5:]],
        "a lone cr event ending a chunk, then a blank line": [
            *events[:3],
            lone_cr(events[3]),
            events[4],
            b"\n",
            *events[5:],
        ],
        "fields in chunks after a lone cr": [
            *events[:2],
            b"event: x\r",
            b"id: 5\n",
            b"data: {}\n\n",
            *events[2:],
        ],
        "a bom": [b"\xef\xbb\xbf" + events[0], *events[1:]],
        "a bom alone": [b"\xef\xbb\xbf", *events],
        "a bom split": [b"\xef", b"\xbb\xbf" + events[0], *events[1:]],
        "bom bytes in the middle": [*events[:4], b"\xef\xbb\xbf" + events[4], *events[5:]],
        "multi-line data in the middle": [*events[:4], b"data: {\ndata: }\n\n", *events[4:]],
        "extra blank lines in the middle": [*events[:4], b"\n\n\n", *events[4:]],
        "invalid utf-8 in the middle": [*events[:4], b"data: \xff\xfe\n\n", *events[4:]],
        "split at a resume point": halves(every(5, lambda e: b": ping\n\n" + e)),
        "an event split right after a comment": [
            p for e in events for p in (b": ping\n\n" + e[: len(e) // 2], e[len(e) // 2 :])
        ],
        "a chunk ending at a resume point": [p for e in events for p in (e[:5], e[5:] + b": ping\n\n")],
        "a cr ending a chunk, its lf the next": [
            *events[:3],
            crlf(events[3])[:-3],  # ...\r | \n\r | \n
            crlf(events[3])[-3:-1],
            b"\n",
            *events[4:],
        ],
        "a cr ending a chunk before an empty chunk": [
            *map(crlf, events[:3]),
            b"data: x\r",
            b"",
            b"\n\r\n",
            *events[3:],
        ],
        "an unterminated tail after a comment": [*events, b": ping\n\n", b"data: {"],
        "a comment at the end": [*events, b": bye"],
        "comments and events one byte a chunk": [
            *(head[i : i + 1] for i in range(len(head))),
            *events[6:],
        ],
    }


CHAT_EVENTS = GENERATORS["chat"](Scenario(events=40, unicode=True), REQUEST)
ANTHROPIC_EVENTS = GENERATORS["anthropic"](Scenario(events=12, unicode=True, tools=1), REQUEST)
MIXED = {
    (provider, name): chunks
    for provider, events in (("chat", CHAT_EVENTS), ("anthropic", ANTHROPIC_EVENTS))
    for name, chunks in mixed_streams(events).items()
}


class Checked(fastpath.EventScanner):
    """``fastpath.decode``'s scanner, which also checks that each batch's ``time`` is its events' time."""

    def __init__(self, *, window: int) -> None:
        super().__init__(window=window)
        self.events: list[sse.Event] = []

    def _batch(self, batch: fastpath.Batch) -> None:
        events = list(map(batch.event, range(len(batch.datas))))
        assert [e.t_ns for e in events] == list(map(batch.time, range(len(events))))
        self.events += events

    def _events(self, events: list[sse.Event]) -> None:
        self.events += events


def same_at_every_window(chunks: list[bytes]) -> None:
    """The scanner gives ``sse.decode``'s events and hazards (first-seen chunks included) with every window
    of 1 to 64 bytes and the default one."""
    timed = [(1_000 + i * 7, data) for i, data in enumerate(chunks)]
    reference = sse.decode(timed)
    assert fastpath.decode(timed) == reference
    for window in (*range(1, 65), fastpath.WINDOW):
        found = Checked(window=window)
        for t_ns, data in timed:
            found.feed(t_ns, data)
        found.end()
        assert (found.events, found.hazards) == reference, window


@pytest.mark.parametrize(("provider", "name"), sorted(MIXED), ids=lambda key: str(key))
def test_mixed_streams_decode_and_diagnose_the_same(provider: str, name: str) -> None:
    chunks = MIXED[provider, name]
    same_at_every_window(chunks)
    assert_same(exchange_of(URLS[provider], chunks), windows=(1, 7, 64))


@pytest.mark.parametrize(
    "name",
    [
        "a comment every 7 events",
        "a comment line inside events",
        "a leading comment",
        "an id once",
        "an id-only block once",
        "a retry once",
        "crlf throughout",
        "crlf throughout with comments",
        "crlf throughout, cut after CRs",
        "crlf then lf",
        "a lone cr event",
        "a bom",
        "multi-line data in the middle",
        "split at a resume point",
    ],
)
def test_the_fast_path_reads_the_usual_events_of_a_mixed_stream(name: str) -> None:
    """The full decoder read a quarter of the bytes at most (a fifth of the events are unusual, at most)."""
    for provider, events in (("chat", CHAT_EVENTS), ("anthropic", ANTHROPIC_EVENTS)):
        chunks = mixed_streams(events * 20)[name]
        found = scan(exchange_of(URLS[provider], chunks))
        assert found.fast > 0.75 * sum(map(len, chunks)), (provider, found.fast)


def test_events_after_an_id_carry_it() -> None:
    chunks = mixed_streams(CHAT_EVENTS)["an id once"]
    events, _ = fastpath.decode([(i, data) for i, data in enumerate(chunks)])
    assert [e.id for e in events] == [""] * 3 + ["42"] * (len(CHAT_EVENTS) - 3)
    found = scan(exchange_of(URLS["chat"], chunks))
    assert found.fast > 0.8 * sum(map(len, chunks))


def test_dense_unusual_events_go_to_the_full_decoder_in_bulk() -> None:
    """An id on every event: a few are read one by one, then the decoder reads on (each a waste of a cut)."""
    chunks = mixed_streams(CHAT_EVENTS * 50)["an id on every event"]
    found = scan(exchange_of(URLS["chat"], chunks))
    assert found.handover == 0 and found.fast == 0 and not found._slow
    assert_same(exchange_of(URLS["chat"], chunks), windows=())


BLOCKS = [  # what each event of a generated stream turns into (most stay usual)
    lambda e: e,
    lambda e: e,
    lambda e: e,
    lambda e: b": ping\n\n" + e,
    lambda e: b": note\n" + e,
    lambda e: b"id: 7\n" + e,
    lambda e: e[:-1] + b"id: 8\n\n",
    lambda e: b"id\n\n" + e,
    lambda e: b"retry: 300\n" + e,
    crlf,
    lone_cr,
    lambda e: e[:-1] + b"\r\n",
    lambda e: e + b"\n",
    lambda e: e[:-2] + b"\ndata: more\n\n",
    lambda e: e[:9] + b"\xff" + e[9:],
    lambda e: e[:9] + b"\xc3" + e[9:],
    lambda e: b"event: \xc3\n" + e,
    lambda e: b"data:" + e[6:] if e.startswith(b"data: ") else e,
]


@settings(max_examples=200, deadline=None)
@given(
    provider=st.sampled_from(["chat", "anthropic"]),
    kinds=st.lists(st.integers(min_value=0, max_value=len(BLOCKS) - 1), min_size=1, max_size=40),
    throughout=st.sampled_from([None, crlf, lone_cr]),
    bom=st.booleans(),
    cuts=st.lists(st.integers(min_value=0), max_size=40),
    window=st.one_of(st.integers(min_value=1, max_value=64), st.just(fastpath.WINDOW)),
)
def test_generated_mixtures_decode_and_diagnose_the_same(
    provider: str,
    kinds: list[int],
    throughout: Any,
    bom: bool,
    cuts: list[int],
    window: int,
) -> None:
    """Usual and unusual events in any order, CRLF or lone CR line ends throughout or not, any chunking."""
    events = CHAT_EVENTS if provider == "chat" else ANTHROPIC_EVENTS
    body = b"".join(BLOCKS[kind](events[i % len(events)]) for i, kind in enumerate(kinds))
    if throughout is not None:
        body = throughout(body)
    if bom:
        body = b"\xef\xbb\xbf" + body
    points = sorted({cut % (len(body) + 1) for cut in cuts})
    chunks = [body[a:b] for a, b in zip([0, *points], [*points, len(body)], strict=True)]
    timed = [(i, data) for i, data in enumerate(chunks)]
    assert fastpath.decode(timed, window=window) == sse.decode(timed)
    assert_same(exchange_of(URLS[provider], chunks), windows=(window,))


# -- any rechunking, any line-end or field oddity, any window ----------------------------------------------

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
    b"\xff",
    b"\xc3",
]


@settings(max_examples=150, deadline=None)
@given(
    provider=st.sampled_from(sorted(GENERATORS)),
    knobs=st.sampled_from(KNOBS),
    sizes=st.lists(st.integers(min_value=1, max_value=300), min_size=1, max_size=40),
    inserts=st.lists(st.tuples(st.integers(min_value=0), st.sampled_from(ODDITIES)), max_size=3),
    crlf=st.booleans(),
    window=st.one_of(st.integers(min_value=1, max_value=64), st.just(fastpath.WINDOW)),
)
def test_random_rechunkings_and_oddities_diagnose_the_same(
    provider: str,
    knobs: dict[str, Any],
    sizes: list[int],
    inserts: list[tuple[int, bytes]],
    crlf: bool,
    window: int,
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
    assert_same(exchange, windows=(window,))


# -- memory: bounded by the window and the longest event, never by the body --------------------------------


def _chat_body(events: int) -> Iterator[bytes]:
    """A long chat stream's events, one 1-3 event read at a time, some events split across reads."""
    pending = b""
    for i in range(events):
        event = b'data: {"choices":[{"index":0,"delta":{"content":"%d "}}],"obfuscation":"%s"}\n\n' % (
            i,
            b"x" * (i % 200),
        )
        if i % 3 == 0:
            pending += event[:40]
            yield pending
            pending = event[40:]
        elif i % 3 == 1:
            pending += event
        else:
            yield pending + event
            pending = b""
    yield pending + b"data: [DONE]\n\n"


def test_a_long_stream_is_read_in_bounded_memory() -> None:
    window = 64 << 10
    found = fastpath.BodyScanner(URLS["chat"], b"", "text/event-stream", window=window)
    fed = held = 0
    for i, data in enumerate(_chat_body(250_000)):  # about 40 MB
        found.feed(i, data)
        fed += len(data)
        held = max(held, found.held)
        assert len(found._datas) == len(found._times) and not found._head
    assembly, hazards = found.finish()
    assert fed > 35_000_000 and assembly.terminal and assembly.events == 250_001
    assert found.handover is None and hazards == ["83334 events split across chunks"]
    assert held < window + 1000  # the window, and one read past it


@pytest.mark.parametrize(
    "name", ["crlf throughout", "lone cr throughout", "a comment after every event", "an id on every event"]
)
def test_unusual_streams_are_read_in_bounded_memory(name: str) -> None:
    """The full decoder's parts are not held either: a window and a read past it, however long the stream."""
    window = 4096
    chunks = mixed_streams(CHAT_EVENTS * 100)[name]
    found = fastpath.BodyScanner(URLS["chat"], b"", "text/event-stream", window=window)
    held = 0
    for i, data in enumerate(chunks):
        found.feed(i, data)
        held = max(held, found.held)
    found.finish()
    assert sum(map(len, chunks)) > 100 * window and held < window + max(map(len, chunks))


def test_diagnose_memory_grows_with_the_text_not_the_body() -> None:
    """tracemalloc's peak while a BodyScanner reads 40 MB: the assembled text (joined as it grows, not a
    str object a piece) and a few windows, not the body (the whole-body scan peaked at several times it)."""
    found = fastpath.BodyScanner(URLS["chat"], b"", "text/event-stream")
    tracemalloc.start()
    try:
        fed = 0
        for i, data in enumerate(_chat_body(250_000)):
            found.feed(i, data)
            fed += len(data)
        assembly, _ = found.finish()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    text = len(assembly.text)
    assert fed > 35_000_000 and 1_500_000 < text < 2_000_000
    assert peak < 2 * text + 4 * fastpath.WINDOW, (peak, text, fed)


def test_one_event_longer_than_the_window_is_read_in_linear_time_and_memory() -> None:
    data = b"x" * 3_000_000
    found = fastpath.BodyScanner(URLS["chat"], b"", "text/event-stream", window=1024)
    for i in range(0, len(data), 1000):
        found.feed(i, (b"data: " if i == 0 else b"") + data[i : i + 1000])
        assert found.held < 2.1 * max(i, 1024) + 2000
        assert found._threshold <= 2 * found._pending + 1024
    found.feed(len(data), b"\n\n")
    assembly, hazards = found.finish()
    assert assembly.events == 1 and hazards == ["1 event split across chunks"]


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["add", "append", "compact", "text"]), st.text(max_size=3)), max_size=3000
    )
)
def test_pieces_join_in_place_to_the_same_text(steps: list[tuple[str, str]]) -> None:
    pieces, expected = Pieces(), []
    for step, piece in steps:
        if step in ("add", "append"):
            getattr(pieces, step)(piece)
            expected.append(piece)
        else:
            getattr(pieces, step)()
        if step == "add":
            assert len(pieces) < JOIN_EVERY
    assert pieces.text() == "".join(expected) and len(pieces) <= 1
