"""Replaying recorded errors and incomplete tapes through the four transport shells.

A recorded error comes back as the client's own library's exception, after the bytes that came before it; a
tape whose exchange has no end (a cut file, a process killed mid-stream, an edited ``Tape``) replays what it
holds and then raises ``RemoteProtocolError``, as a connection closed mid-body would.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from helpers import VECTORS, assert_library_error, events, fetch, read_timeout
from replay_cases import Recorded, Recordings, assert_same_view
from shells import SHELLS, Shell

import streamtape
from streamtape.format.codec import compress_frame, encode_record, new_compressor

pytestmark = pytest.mark.timeout(30)

# -- recorded errors ---------------------------------------------------------------------------------


@SHELLS
def test_recorded_read_timeout_replayed_under_a_longer_timeout_raises_the_recorded_error(
    shell: Shell, recordings: Recordings
) -> None:
    rec = recordings.get(shell, "read-timeout")
    replayed = fetch(shell, shell.replay(rec.path, speed=math.inf), rec.url, timeout=read_timeout(shell, 5.0))
    assert_same_view(shell, replayed, rec.seen)  # message too: the tape's own ReadTimeout
    assert rec.exchange.end.error_type == "ReadTimeout"
    assert replayed.body == b"".join(events(stall_at=2, stall_s=0.3)[:2])


@SHELLS
def test_connection_refused_replays_as_connect_error_at_request_time(
    shell: Shell, recordings: Recordings
) -> None:
    rec = recordings.get(shell, "refused")
    assert rec.exchange.response is None
    replayed = fetch(shell, shell.replay(rec.path, speed=math.inf), rec.url)
    assert replayed.head is None and replayed.pieces == []
    assert_library_error(shell, replayed.error, "ConnectError")
    assert str(replayed.error) == str(rec.seen.error) == rec.exchange.end.message


# -- incomplete tapes --------------------------------------------------------------------------------


@SHELLS
def test_spec_vector_cut_short_replays_what_it_holds_then_raises_remote_protocol_error(shell: Shell) -> None:
    tape = streamtape.open_tape(VECTORS / "cut.tape")
    assert tape.incomplete
    (exchange,) = tape.exchanges
    assert exchange.end.outcome == "incomplete"
    replayed = fetch(
        shell,
        shell.replay(VECTORS / "cut.tape", speed=math.inf),
        exchange.request.url,
        body=exchange.request.body,
    )
    assert replayed.head is not None and replayed.head[0] == exchange.response.status_code
    assert replayed.pieces == [c.data for c in exchange.chunks]
    assert_library_error(shell, replayed.error, "RemoteProtocolError")


def _frames(path: Path, frames: list[list[Any]]) -> None:
    compressor = new_compressor()
    out = bytearray()
    for frame in frames:
        buf = bytearray()
        for record_ in frame:
            encode_record(record_, buf)
        out += compress_frame(compressor, buf)
    path.write_bytes(bytes(out))


@SHELLS
def test_recording_whose_last_frame_was_cut_replays_its_chunks_then_raises_remote_protocol_error(
    shell: Shell, paced: Recorded, tmp_path: Path
) -> None:
    """A real recording rewritten as two frames (as a writer flushes mid-stream), the second cut in half."""
    tape = streamtape.open_tape(paced.path)
    (exchange,) = tape.exchanges
    kept = 4
    first = [tape.header, exchange.request, exchange.response, *exchange.chunks[:kept]]
    rest = [*exchange.chunks[kept:], exchange.end]
    whole, head = tmp_path / "whole.tape", tmp_path / "head.tape"
    _frames(whole, [first, rest])
    _frames(head, [first])
    cut = tmp_path / "cut.tape"
    data, keep = whole.read_bytes(), head.stat().st_size
    cut.write_bytes(data[: keep + (len(data) - keep) // 2])

    reopened = streamtape.open_tape(cut)
    assert reopened.incomplete
    assert reopened.exchanges[0].end.outcome == "incomplete"
    assert len(reopened.exchanges[0].chunks) == kept
    replayed = fetch(shell, shell.replay(cut, speed=math.inf), paced.url)
    assert replayed.pieces == paced.seen.pieces[:kept]
    assert_library_error(shell, replayed.error, "RemoteProtocolError")


@SHELLS
def test_tape_object_whose_exchange_has_no_end_replays_then_raises_remote_protocol_error(
    shell: Shell, recordings: Recordings
) -> None:
    rec = recordings.get(shell, "complete")
    tape = streamtape.open_tape(rec.path)
    (exchange,) = tape.exchanges
    exchange = exchange.replace(chunks=exchange.chunks[:2], recorded_end=None)
    tape.exchanges = [exchange]
    assert exchange.end.outcome == "incomplete"
    replayed = fetch(shell, shell.replay(tape, speed=math.inf), rec.url)
    assert replayed.pieces == rec.seen.pieces[:2]
    assert_library_error(shell, replayed.error, "RemoteProtocolError")
