"""Recording many streams at once, from coroutines and from threads, into one tape or one directory; and
what a tape recorded through the transports keeps when it is cut at any byte.

Every stream is HTTP/1.1 to the SSE emulator on 127.0.0.1 through a real client whose transport is a
streamtape recording transport (but for the last test, where a mock answers).
Timeouts are hang guards only; no test asserts a duration.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from helpers import CHAT, CHAT_PATH, events
from test_tape_format import _block_ends, _cuts_keeping_flushed_records

import streamtape
import streamtape.httpx
import streamtape.httpx2
from streamtape.emulator import Emulator
from streamtape.emulator import server as emulator_server
from streamtape.format.records import End, Request
from streamtape.storage.sinks import FileSink

pytestmark = pytest.mark.timeout(60)

TARGETS = pytest.mark.parametrize("into", ["one tape", "one directory"])


def body_for(name: str) -> bytes:
    """A chat request whose body names it, so its exchange can be found on any tape."""
    return json.dumps({**CHAT, "messages": [{"role": "user", "content": name}]}).encode()


def target(tmp_path: Path, into: str) -> str:
    return str(tmp_path / "run.tape") if into == "one tape" else str(tmp_path / "spool") + "/"


def recorded_exchanges(tmp_path: Path, into: str) -> list[streamtape.Exchange]:
    """Every exchange recorded into the target; each tape read must be whole (nothing left open)."""
    if into == "one tape":
        tapes = [streamtape.open_tape(tmp_path / "run.tape")]
    else:
        spool = tmp_path / "spool"
        assert not [p.name for p in spool.iterdir() if not p.name.endswith(".tape")]  # no .partial left
        tapes = [streamtape.open_tape(p) for p in sorted(spool.iterdir())]
        assert all(len(tape.exchanges) == 1 for tape in tapes)
    for tape in tapes:
        assert not tape.incomplete, (tape.path, tape.problem)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.tape" if into == "one tape" else "spool"]
    return [exchange for tape in tapes for exchange in tape.exchanges]


def assert_recorded_as_received(
    exchanges: list[streamtape.Exchange], received: dict[bytes, list[bytes]], into: str
) -> None:
    """One exchange per request, complete, holding the very pieces its client received."""
    by_body: dict[bytes, streamtape.Exchange] = {}
    for exchange in exchanges:
        assert exchange.request.body not in by_body, "one request recorded twice"
        by_body[exchange.request.body] = exchange
    assert set(by_body) == set(received)
    for body, pieces in received.items():
        exchange = by_body[body]
        assert exchange.end.outcome == "complete", exchange.end
        assert exchange.response is not None and exchange.response.status_code == 200
        assert [c.data for c in exchange.chunks] == pieces, f"{body!r}: recorded pieces differ"
    if into == "one tape":
        ids = [(e.segment, e.id) for e in exchanges]
        assert len(set(ids)) == len(ids), "two exchanges share an id"


def most_open_at_once(path: Path) -> int:
    """How many exchanges were open at once on a tape, in the order its records were written."""
    open_now: set[int] = set()
    most = 0
    for record in streamtape.iter_records(path):
        if isinstance(record, Request):
            open_now.add(record.x)
            most = max(most, len(open_now))
        elif isinstance(record, End):
            open_now.discard(record.x)
    return most


def url_for(emulator: Emulator, n: int) -> str:
    """Streams that differ (their own text), overlap (paced), and break events across sends."""
    return emulator.url(events=8, pace_ms=3, split=2, seed=n) + CHAT_PATH


# -- many streams at once -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wide_emulator() -> Iterator[Emulator]:
    """An emulator of this module's own for bursts of 50 connections (its listen backlog takes them)."""
    assert emulator_server._Server.request_queue_size >= 50
    with Emulator() as emulator:
        yield emulator
    assert emulator.errors == []


@TARGETS
def test_fifty_concurrent_async_streams_are_each_recorded_byte_for_byte(
    wide_emulator: Emulator, tmp_path: Path, into: str
) -> None:
    emulator = wide_emulator
    transport = streamtape.httpx2.AsyncRecordingTransport(target(tmp_path, into))

    async def one(client: httpx2.AsyncClient, n: int) -> tuple[bytes, list[bytes]]:
        body = body_for(f"coroutine {n}")
        async with client.stream("POST", url_for(emulator, n), content=body) as response:
            return body, [piece async for piece in response.aiter_raw()]

    async def main() -> list[tuple[bytes, list[bytes]]]:
        async with httpx2.AsyncClient(transport=transport, timeout=30) as client:
            return await asyncio.gather(*(one(client, n) for n in range(50)))

    received = dict(asyncio.run(main()))
    assert len(received) == 50
    for n in range(50):
        assert b"".join(received[body_for(f"coroutine {n}")]) == b"".join(events(events=8, split=2, seed=n))
    stats = transport.stats
    assert (stats.seen, stats.recorded, stats.dropped, stats.errors) == (50, 50, 0, {})
    assert_recorded_as_received(recorded_exchanges(tmp_path, into), received, into)
    if into == "one tape":
        assert most_open_at_once(tmp_path / "run.tape") > 10  # the streams really interleaved


@TARGETS
def test_sixteen_threads_with_their_own_clients_are_each_recorded_byte_for_byte(
    wide_emulator: Emulator, tmp_path: Path, into: str
) -> None:
    """Each thread has its own client and transport (httpx or httpx2): they share one writer."""
    emulator = wide_emulator
    where = target(tmp_path, into)
    received: dict[bytes, list[bytes]] = {}
    transports: list[Any] = []
    failures: list[BaseException] = []
    all_open = threading.Barrier(16, timeout=30)
    lock = threading.Lock()

    def work(t: int) -> None:
        try:
            lib, adapter = (httpx, streamtape.httpx) if t % 2 else (httpx2, streamtape.httpx2)
            transport = adapter.RecordingTransport(where)
            with lib.Client(transport=transport, timeout=30) as client:
                all_open.wait()  # every transport exists before any request: the streams overlap
                for k in range(3):
                    body = body_for(f"thread {t} request {k}")
                    with client.stream("POST", url_for(emulator, 3 * t + k), content=body) as response:
                        pieces = list(response.iter_raw())
                    with lock:
                        received[body] = pieces
            with lock:
                transports.append(transport)
        except BaseException as exc:
            failures.append(exc)
            all_open.abort()

    threads = [threading.Thread(target=work, args=(t,)) for t in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(45)
        assert not thread.is_alive(), "a recording thread hung"
    assert failures == []
    assert len(received) == 48
    stats = [transport.stats for transport in transports]  # all closed: the last close wrote everything
    assert sorted((s.seen, s.recorded, s.dropped) for s in stats) == [(3, 3, 0)] * 16
    assert all(s.errors == {} for s in stats)
    assert_recorded_as_received(recorded_exchanges(tmp_path, into), received, into)
    if into == "one tape":
        assert most_open_at_once(tmp_path / "run.tape") > 1  # the streams really interleaved


# -- a recorded tape, cut anywhere --------------------------------------------------------------------


def test_tape_recorded_through_the_transport_cut_at_any_byte_keeps_every_record_before_the_cut(
    emulator: Emulator, tmp_path: Path
) -> None:
    path = tmp_path / "run.tape"
    transport = streamtape.httpx2.RecordingTransport(path)
    with httpx2.Client(transport=transport, timeout=30) as client:
        client.post(emulator.url(events=3) + CHAT_PATH, content=body_for("before"))
        # A stream in many chunks, with another exchange recorded while it is open, and blocks flushed
        # in its middle (each ``flush`` makes what was recorded so far durable: a block ends there).
        with client.stream(
            "POST", emulator.url(events=24, split=3) + CHAT_PATH, content=body_for("long")
        ) as long:
            pieces = long.iter_raw()
            for n, _ in enumerate(pieces):
                if n == 5:
                    client.post(emulator.url(events=2) + CHAT_PATH, content=body_for("meanwhile"))
                if n % 10 == 0:
                    assert transport.flush()
        client.post(emulator.url(events=2, status=429) + CHAT_PATH, content=body_for("after"))

    tape = streamtape.open_tape(path)
    assert not tape.incomplete
    assert [e.request.body for e in tape.exchanges] == [
        body_for(n) for n in ("before", "long", "meanwhile", "after")
    ]
    assert len(tape.exchanges[1].chunks) > 24 * 2  # split=3: many chunks
    data = path.read_bytes()
    blocks = _block_ends(data)
    assert len(blocks) >= 8  # the header, an end per exchange, and the flushes inside the long stream

    # Every cut decodes to a prefix of the records, holding every record of each block ended before it.
    good, cuts = _cuts_keeping_flushed_records(path)
    assert good == cuts

    # And as files: each cut opens, or raises TapeError only when cut before the first block ended.
    full = list(streamtape.iter_records(path))
    cut = tmp_path / "cut.tape"
    for n in range(1, len(data)):
        cut.write_bytes(data[:n])
        try:
            records = list(streamtape.iter_records(cut))
        except streamtape.TapeError as exc:
            assert n < blocks[0], f"cut at {n}, after the first block: {exc}"
            continue
        assert records == full[: len(records)], f"cut at {n}"
        streamtape.open_tape(cut)  # the model builds from any readable prefix


# -- closing one of several clients -------------------------------------------------------------------


def test_closing_one_of_two_clients_recording_to_one_tape_writes_its_exchanges_before_close_returns(
    emulator: Emulator, tmp_path: Path
) -> None:
    """``close`` promises the tape then holds every record, even while another client keeps the tape open."""
    path = tmp_path / "run.tape"
    release = threading.Event()

    def slow_scrub(request: Any, data: bytes) -> bytes:
        release.wait(20)  # runs on the writer's thread: the writer is behind until ``release``
        return data

    other = httpx2.Client(transport=streamtape.httpx2.RecordingTransport(path), timeout=30)
    try:
        transport = streamtape.httpx2.RecordingTransport(path, before_record_chunk=slow_scrub)
        catch_up = threading.Timer(1.0, release.set)  # a correct close waits for the writer until then
        catch_up.start()
        try:
            with httpx2.Client(transport=transport, timeout=30) as client:
                got = client.post(emulator.url(events=4) + CHAT_PATH, content=body_for("first")).content
            stats = transport.stats
            (exchange,) = streamtape.open_tape(path).exchanges
        finally:
            release.set()
            catch_up.cancel()
        assert (stats.recorded, stats.dropped) == (1, 0)
        assert exchange.request.body == body_for("first")
        assert exchange.end.outcome == "complete" and exchange.body == got
    finally:
        other.close()


def test_client_opened_while_the_last_one_on_a_tape_is_still_closing_records_into_that_tape(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Client per request: the next request's client may open while the last one's tape is being closed."""
    entered, finish = threading.Event(), threading.Event()
    real_close = FileSink.close

    def slow_close(self: FileSink) -> None:  # a slow file system: closing the tape takes a while
        entered.set()
        finish.wait(20)
        real_close(self)

    monkeypatch.setattr(FileSink, "close", slow_close)
    path = tmp_path / "run.tape"
    answer = httpx2.MockTransport(lambda request: httpx2.Response(200, content=b"data: {}\n\n"))
    first = httpx2.Client(transport=streamtape.httpx2.RecordingTransport(path, transport=answer))
    first.post("http://api.test/", content=body_for("first"))
    closing = threading.Thread(target=first.close)
    closing.start()
    catch_up = threading.Timer(1.0, finish.set)  # a recorder that waits for the close waits until then
    try:
        assert entered.wait(20)
        catch_up.start()
        with caplog.at_level(logging.WARNING, logger="streamtape"):
            second = streamtape.httpx2.RecordingTransport(path, transport=answer)
            with httpx2.Client(transport=second) as client:
                client.post("http://api.test/", content=body_for("second"))
    finally:
        finish.set()
        catch_up.cancel()
        closing.join(20)
    assert [r.getMessage() for r in caplog.records if r.name == "streamtape"] == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.tape"]
    assert [e.request.body for e in streamtape.open_tape(path).exchanges] == [
        body_for("first"),
        body_for("second"),
    ]
