"""A tape deleted, renamed away, replaced or truncated while a stream is being recorded into it: the
recorder notices (at most ``CHECK_EVERY_S`` after a flush; the tests make that every flush), says so once,
and goes on in a new tape at the path, where the exchange in progress begins again with its heads and a gap
counting exactly the chunks the old file got. A directory sink's directory deleted is created again.

No mocks: a real httpx2 client streams from the SSE emulator through a recording transport; the test acts
on the file between two pieces and then waits for a flush (``transport.flush()``), so which chunks went
where is exact, never a matter of timing.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
from collections.abc import Callable
from pathlib import Path

import httpx2
import pytest
from helpers import CHAT_BODY, CHAT_PATH, only_exchange

import streamtape
import streamtape.httpx2
from streamtape.emulator import Emulator
from streamtape.storage import sinks

pytestmark = pytest.mark.timeout(30)

PACED = {"events": 30, "pace_ms": 10}  # a long paced stream: about 32 pieces, 0.3 s


@pytest.fixture(autouse=True)
def _check_every_flush(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sinks, "CHECK_EVERY_S", 0.0)


def _client(transport: streamtape.httpx2.RecordingTransport) -> httpx2.Client:
    return httpx2.Client(transport=transport, timeout=5)


def _stream_acting(client: httpx2.Client, url: str, after: int, act: Callable[[], None]) -> list[bytes]:
    """Stream ``url``; after ``after`` pieces, ``act()`` and wait for a flush; return every piece."""
    transport = client._transport
    assert isinstance(transport, streamtape.httpx2.RecordingTransport)
    pieces: list[bytes] = []
    with client.stream("POST", url, content=CHAT_BODY, headers={"content-type": "application/json"}) as r:
        for piece in r.iter_raw():
            pieces.append(piece)
            if len(pieces) == after:
                act()
                assert transport.flush()
    assert len(pieces) > after + 3, "the stream must go on after the act"
    return pieces


def _get(client: httpx2.Client, url: str) -> bytes:
    response = client.post(url, content=CHAT_BODY)
    assert response.status_code == 200
    return response.content


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "streamtape" and r.levelno >= logging.WARNING]


def test_a_tape_deleted_mid_stream_goes_on_in_a_new_file_at_its_path_with_one_log_line(
    emulator: Emulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "run.tape"
    url = emulator.url(**PACED) + CHAT_PATH
    with caplog.at_level(logging.INFO, logger="streamtape"):
        transport = streamtape.httpx2.RecordingTransport(path)
        with _client(transport) as client:
            _get(client, emulator.url(events=3) + CHAT_PATH)  # an earlier exchange: its own frame
            assert transport.flush()
            pieces = _stream_acting(client, url, 5, path.unlink)

    exchange = only_exchange(path)
    assert exchange.request.url == url and exchange.request.body == CHAT_BODY
    assert exchange.response is not None and exchange.response.status_code == 200
    assert [c.data for c in exchange.chunks] == pieces[5:]  # the rest, exactly
    assert exchange.end.outcome == "complete"
    (gap,) = exchange.gaps  # what the deleted file had: counted exactly, the exchange reads as damaged
    assert (gap.records, gap.bytes) == (5, sum(len(p) for p in pieces[:5]))
    assert "deleted" in gap.reason
    assert gap.t_ns <= exchange.chunks[0].t_ns
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    logged = _warnings(caplog)
    assert len(logged) == 1, logged
    assert str(path) in logged[0] and "deleted" in logged[0]


def test_a_tape_renamed_away_mid_stream_keeps_the_first_part_and_the_path_gets_the_rest(
    emulator: Emulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A log rotation's ``mv run.tape run.tape.1``: the old file ends on a whole frame, the new one holds
    the rest, and between them every piece the client received, once."""
    path, rotated = tmp_path / "run.tape", tmp_path / "run.tape.1"
    url = emulator.url(**PACED) + CHAT_PATH
    transport = streamtape.httpx2.RecordingTransport(path)
    with caplog.at_level(logging.INFO, logger="streamtape"), _client(transport) as client:
        pieces = _stream_acting(client, url, 4, lambda: path.rename(rotated))
        _get(client, emulator.url(events=2) + CHAT_PATH)  # after the rotation: to the new file too

    before = streamtape.open_tape(rotated)
    assert [c.data for c in before.exchanges[0].chunks] == pieces[:4]
    assert before.exchanges[0].end.outcome == "incomplete"  # (it ended in the other file)
    after = streamtape.open_tape(path)
    assert not after.incomplete, after.problem
    first, second = after.exchanges
    assert [c.data for c in first.chunks] == pieces[4:]
    assert first.gaps[0].records == 4 and "deleted" in first.gaps[0].reason  # (nothing at the path)
    assert second.end.outcome == "complete" and not second.gaps
    logged = _warnings(caplog)
    assert len(logged) == 1 and str(path) in logged[0], logged


def test_a_tape_replaced_by_another_file_mid_stream_leaves_that_file_alone_and_appends_after_it(
    emulator: Emulator, tmp_path: Path
) -> None:
    """Deleted and a tape put in its place: the recording appends a segment to that tape, never truncating it."""
    other = tmp_path / "other.tape"
    streamtape.open_tape(Path(__file__).parents[1] / "spec" / "vectors" / "complete.tape").save(other)
    path = tmp_path / "run.tape"
    url = emulator.url(**PACED) + CHAT_PATH

    def replace() -> None:
        path.unlink()
        shutil.copy(other, path)

    with _client(streamtape.httpx2.RecordingTransport(path)) as client:
        pieces = _stream_acting(client, url, 3, replace)
    tape = streamtape.open_tape(path)
    kept, resumed = tape.exchanges
    assert kept == streamtape.open_tape(other).exchanges[0]
    assert [c.data for c in resumed.chunks] == pieces[3:]


def test_a_tape_truncated_mid_stream_starts_again_from_nothing_in_place(
    emulator: Emulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """``copytruncate``: the file is cut to nothing under the writer; appending on would leave the middle of
    a frame at its start. The recorder starts a new tape in it, saying so once."""
    path = tmp_path / "run.tape"
    url = emulator.url(**PACED) + CHAT_PATH
    transport = streamtape.httpx2.RecordingTransport(path)
    with caplog.at_level(logging.INFO, logger="streamtape"), _client(transport) as client:
        pieces = _stream_acting(client, url, 6, lambda: os.truncate(path, 0))
    exchange = only_exchange(path)
    assert [c.data for c in exchange.chunks] == pieces[6:]
    (gap,) = exchange.gaps
    assert "truncated" in gap.reason and "unknown" in gap.reason
    logged = _warnings(caplog)
    assert len(logged) == 1 and "truncated" in logged[0], logged


def test_a_tape_deleted_twice_says_so_twice_and_counts_every_chunk_it_lacks(
    emulator: Emulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "run.tape"
    url = emulator.url(**PACED) + CHAT_PATH
    pieces: list[bytes] = []
    with caplog.at_level(logging.INFO, logger="streamtape"):
        transport = streamtape.httpx2.RecordingTransport(path)
        with _client(transport) as client, client.stream("POST", url, content=CHAT_BODY) as response:
            for piece in response.iter_raw():
                pieces.append(piece)
                if len(pieces) in (3, 8):
                    path.unlink()
                    assert transport.flush()
    exchange = only_exchange(path)
    assert [c.data for c in exchange.chunks] == pieces[8:]
    (gap,) = exchange.gaps
    assert (gap.records, gap.bytes) == (8, sum(len(p) for p in pieces[:8]))
    assert len(_warnings(caplog)) == 2


def test_a_symlink_planted_where_the_tape_was_deleted_is_never_followed(
    emulator: Emulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path, victim = tmp_path / "run.tape", tmp_path / "victim"
    victim.write_bytes(b"")  # empty: a writer that followed the link would make it a tape

    def plant() -> None:
        path.unlink()
        path.symlink_to(victim)

    transport = streamtape.httpx2.RecordingTransport(path)
    with caplog.at_level(logging.INFO, logger="streamtape"), _client(transport) as client:
        pieces = _stream_acting(client, emulator.url(**PACED) + CHAT_PATH, 4, plant)
    assert pieces and victim.read_bytes() == b""
    assert path.is_symlink()
    logged = _warnings(caplog)
    assert len(logged) == 1 and "cannot be created again" in logged[0], logged


def test_a_tape_whose_directory_is_deleted_mid_stream_logs_once_and_the_traffic_is_unaffected(
    emulator: Emulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = tmp_path / "tapes"
    directory.mkdir()
    path = directory / "run.tape"
    url = emulator.url(**PACED) + CHAT_PATH
    with caplog.at_level(logging.INFO, logger="streamtape"):
        transport = streamtape.httpx2.RecordingTransport(path)
        with _client(transport) as client:
            pieces = _stream_acting(client, url, 4, lambda: shutil.rmtree(directory))
            assert transport.flush()
            assert transport.stats.errors == {}
    with httpx2.Client(timeout=5) as client:
        assert b"".join(pieces) == _get(client, url)
    logged = _warnings(caplog)
    assert len(logged) == 1 and str(path) in logged[0], logged
    assert not directory.exists()


def test_a_tape_deleted_between_exchanges_is_noticed_before_the_next_one_begins(
    emulator: Emulator, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sinks, "CHECK_EVERY_S", 3600.0)  # no flush checks: the check as an exchange begins
    path = tmp_path / "run.tape"
    with caplog.at_level(logging.INFO, logger="streamtape"):
        transport = streamtape.httpx2.RecordingTransport(path)
        with _client(transport) as client:
            _get(client, emulator.url(events=2) + CHAT_PATH)
            assert transport.flush()
            path.unlink()
            body = _get(client, emulator.url(events=3) + CHAT_PATH)
    exchange = only_exchange(path)
    assert exchange.body == body and not exchange.gaps
    assert len(_warnings(caplog)) == 1


def test_a_directory_deleted_between_exchanges_is_created_again_0700_and_logged_once(
    emulator: Emulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = tmp_path / "flight"
    with caplog.at_level(logging.INFO, logger="streamtape"):
        transport = streamtape.httpx2.RecordingTransport(f"{directory}/")
        with _client(transport) as client:
            _get(client, emulator.url(events=2) + CHAT_PATH)
            assert transport.flush()
            shutil.rmtree(directory)
            for events in (3, 4):
                _get(client, emulator.url(events=events) + CHAT_PATH)
            assert transport.flush()
            stats = transport.stats
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    tapes = sorted(directory.glob("*.tape"))
    assert len(tapes) == 2, list(directory.iterdir())
    assert all(only_exchange(t).end.outcome == "complete" for t in tapes)
    logged = _warnings(caplog)
    assert len(logged) == 1 and str(directory) in logged[0], logged
    assert stats.errors == {} and stats.recorded == 3
