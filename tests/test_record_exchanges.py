"""What recording through the four transport shells (httpx / httpx2, sync / async) puts on the tape: the
pieces the client got, byte for byte and boundary for boundary, the request and response heads, and one
exchange per stream when several run at once.

No mocks: every test talks HTTP/1.1 to the SSE emulator on 127.0.0.1 through a real client whose transport
is a streamtape recording transport, then reads the tape back with ``open_tape``.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from helpers import CHAT_BODY, CHAT_PATH, events, only_exchange, stream
from shells import ASYNC_SHELLS, SHELLS, Shell

import streamtape
from streamtape.emulator import Emulator

pytestmark = pytest.mark.timeout(30)


def latin1(pairs: Iterable[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    return [(name.decode("latin-1"), value.decode("latin-1")) for name, value in pairs]


# -- what the client sees, and what the tape holds --------------------------------------------------


@SHELLS
def test_recorder_hands_the_client_the_same_pieces_it_records(
    shell: Shell, emulator: Emulator, tmp_path: Path
) -> None:
    url = emulator.url(split=3) + CHAT_PATH
    plain = stream(shell, url)
    recorded = stream(shell, url, tape=tmp_path / "run.tape")
    assert plain.error is None and recorded.error is None
    assert recorded.body == plain.body == b"".join(events(split=3))
    exchange = only_exchange(tmp_path / "run.tape")
    # Same bytes AND the same boundaries, piece for piece.
    assert [c.data for c in exchange.chunks] == recorded.pieces
    assert len(recorded.pieces) > len(events(split=3))  # split=3: boundaries fall inside events


@SHELLS
def test_tape_holds_request_and_response_head_byte_exact(
    shell: Shell, emulator: Emulator, tmp_path: Path
) -> None:
    url = emulator.url(events=4, pace_ms=2) + CHAT_PATH + "?trace=a%20b&x=1"
    got = stream(shell, url, tape=tmp_path / "run.tape", headers={"X-Note": "café".encode("latin-1")})
    assert got.error is None
    tape = streamtape.open_tape(tmp_path / "run.tape")
    assert not tape.incomplete and tape.header.magic == "streamtape"
    (exchange,) = tape.exchanges

    sent = got.response.request
    assert exchange.request.method == "POST"
    assert exchange.request.url == str(sent.url)
    assert exchange.request.url.endswith(f"{CHAT_PATH}?trace=a%20b&x=1")
    assert exchange.request.body == CHAT_BODY == emulator.requests[0].body
    assert exchange.request.body_size is None
    assert exchange.request.headers == latin1(sent.headers.raw)
    assert ("X-Note", "café") in exchange.request.headers

    response = exchange.response
    assert response is not None
    assert response.status_code == 200
    assert response.http_version == "HTTP/1.1"
    assert response.reason == "OK"
    assert response.headers == latin1(got.response.headers.raw)
    assert ("Content-Type", "text/event-stream; charset=utf-8") in response.headers

    times = [c.t_ns for c in exchange.chunks]
    assert times == sorted(times)
    assert response.t_ns >= 0 and times[0] >= response.t_ns
    assert exchange.end.t_ns >= times[-1]
    assert exchange.end.outcome == "complete"
    assert exchange.end.error_type is None
    assert exchange.body == got.body == b"".join(events(events=4))


@SHELLS
def test_non_streamed_request_read_whole_is_recorded_complete(
    shell: Shell, emulator: Emulator, tmp_path: Path
) -> None:
    url = emulator.url(events=3) + CHAT_PATH

    async def run_async() -> Any:
        async with shell.lib.AsyncClient(transport=shell.recording(tmp_path / "run.tape")) as client:
            return await client.post(url, content=CHAT_BODY)

    if shell.is_async:
        response = asyncio.run(run_async())
    else:
        with shell.lib.Client(transport=shell.recording(tmp_path / "run.tape")) as client:
            response = client.post(url, content=CHAT_BODY)
    exchange = only_exchange(tmp_path / "run.tape")
    assert exchange.end.outcome == "complete"
    assert exchange.body == response.content == b"".join(events(events=3))


@SHELLS
def test_gzip_stream_is_recorded_still_compressed_as_the_network_sent_it(
    shell: Shell, emulator: Emulator, tmp_path: Path
) -> None:
    got = stream(shell, emulator.url(gzip=True, events=5) + CHAT_PATH, tape=tmp_path / "run.tape")
    assert got.error is None
    exchange = only_exchange(tmp_path / "run.tape")
    assert [c.data for c in exchange.chunks] == got.pieces
    assert ("Content-Encoding", "gzip") in exchange.response.headers
    assert zlib.decompress(exchange.body, wbits=31) == b"".join(events(gzip=True, events=5))


# -- concurrency --------------------------------------------------------------------------------------


@ASYNC_SHELLS
def test_concurrent_streams_on_one_async_transport_get_their_own_exchanges(
    shell: Shell, emulator: Emulator, tmp_path: Path
) -> None:
    path = tmp_path / "run.tape"
    urls = [emulator.url(events=n, pace_ms=3, seed=n) + CHAT_PATH for n in (3, 5, 7)]

    async def one(client: Any, url: str) -> list[bytes]:
        async with client.stream("POST", url, content=CHAT_BODY) as response:
            return [piece async for piece in response.aiter_raw()]

    async def run() -> list[list[bytes]]:
        async with shell.lib.AsyncClient(transport=shell.recording(path), timeout=5) as client:
            return await asyncio.gather(*(one(client, url) for url in urls))

    received = dict(zip(urls, asyncio.run(run()), strict=True))
    tape = streamtape.open_tape(path)
    assert len(tape.exchanges) == 3
    assert len({e.id for e in tape.exchanges}) == 3
    for exchange in tape.exchanges:
        pieces = received[exchange.request.url]
        assert [c.data for c in exchange.chunks] == pieces
        times = [c.t_ns for c in exchange.chunks]
        assert times == sorted(times)
        assert exchange.end.outcome == "complete"
    for n, url in zip((3, 5, 7), urls, strict=True):
        assert b"".join(received[url]) == b"".join(events(events=n, pace_ms=3, seed=n))
