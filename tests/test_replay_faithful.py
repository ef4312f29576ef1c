"""Replaying tapes through the four transport shells (httpx / httpx2, sync / async): the client sees again
what it saw when recording.

Every tape here is recorded for real, through a real client and streamtape's recording transport, from the
SSE emulator on 127.0.0.1 (see ``replay_cases.py``); the emulator is then stopped, and the tape is replayed
through the same client code. The tests compare what the client saw both times: the response head, every
raw piece with its boundaries, and the exception (class, library, message) with the bytes before it.
"""

from __future__ import annotations

import math
import zlib
from pathlib import Path

import msgspec
import pytest
from helpers import comparable, events, fetch, read_timeout
from replay_cases import ALL_CASES, Case, Recordings, assert_same_view
from shells import SHELL_LIST, SHELLS, Shell

import streamtape

pytestmark = pytest.mark.timeout(30)


# -- faithful replay ---------------------------------------------------------------------------------


@SHELLS
@ALL_CASES
def test_replay_shows_the_client_what_it_saw_when_recording(
    shell: Shell, case: Case, recordings: Recordings
) -> None:
    """Same head, same pieces with the same boundaries, the same exception after the same bytes.

    The emulator that served the recording is stopped: a replay that touched the network would fail.
    """
    rec = recordings.get(shell, case)
    replayed = fetch(
        shell, shell.replay(rec.path, speed=math.inf), rec.url, timeout=read_timeout(shell, case.read_timeout)
    )
    # Under the recording's own read timeout a recorded timeout is raised by the replay's virtual clock, with
    # its own words; every other recorded exception comes back with the recorded message.
    assert_same_view(shell, replayed, rec.seen, same_message=case.name != "read-timeout")
    assert replayed.pieces == [c.data for c in rec.exchange.chunks]
    if case.name == "refused":
        assert replayed.head is None  # no response: raised at request time
    else:
        assert replayed.head is not None and replayed.head[0] == 200
    if case.name in ("reset", "cut", "read-timeout"):
        assert replayed.pieces, "the bytes before the error must come first"


@SHELLS
def test_gzip_replay_hands_over_the_compressed_bytes_and_the_client_decodes_them(
    shell: Shell, recordings: Recordings
) -> None:
    rec = recordings.get(shell, "gzip")
    plain = b"".join(events(gzip=True, events=5))
    raw = fetch(shell, shell.replay(rec.path, speed=math.inf), rec.url)
    assert raw.pieces == rec.seen.pieces
    assert raw.body != plain and zlib.decompress(raw.body, wbits=31) == plain
    assert (b"Content-Encoding", b"gzip") in raw.head[1]
    decoded = fetch(shell, shell.replay(rec.path, speed=math.inf), rec.url, read="bytes")
    assert decoded.error is None
    assert b"".join(decoded.pieces) == plain


@SHELLS
def test_split_utf8_replays_the_split_and_the_client_decodes_the_same_text(
    shell: Shell, recordings: Recordings
) -> None:
    rec = recordings.get(shell, "split-utf8")
    raw = fetch(shell, shell.replay(rec.path, speed=math.inf), rec.url)
    assert raw.pieces == rec.seen.pieces

    def decodes(piece: bytes) -> bool:
        try:
            piece.decode("utf-8")
        except UnicodeDecodeError:
            return False
        return True

    assert not all(decodes(p) for p in raw.pieces), "some piece must end inside a character"
    text = fetch(shell, shell.replay(rec.path, speed=math.inf), rec.url, read="text")
    assert text.error is None
    assert "".join(text.pieces) == b"".join(events(split_utf8=True, events=6)).decode("utf-8")


@SHELLS
def test_replay_keeps_header_order_duplicates_reason_and_http_version(
    shell: Shell, recordings: Recordings, tmp_path: Path
) -> None:
    """The emulator sends no duplicate headers, so the recorded head is edited into one that has them."""
    rec = recordings.get(shell, "complete")
    tape = streamtape.open_tape(rec.path)
    (exchange,) = tape.exchanges
    assert exchange.response is not None
    headers = [
        ("X-Trace", "one"),
        *exchange.response.headers,
        ("x-trace", "two"),
        ("Set-Cookie", "a=1"),
        ("Set-Cookie", "b=2"),
    ]
    tape.exchanges = [
        exchange.replace(
            response=msgspec.structs.replace(
                exchange.response, headers=headers, http_version="HTTP/1.0", reason="Fine"
            )
        )
    ]
    tape.save(tmp_path / "edited.tape")

    replayed = fetch(shell, shell.replay(tmp_path / "edited.tape", speed=math.inf), rec.url)
    assert replayed.error is None
    status, raw, version, reason = replayed.head
    assert status == 200 and version == "HTTP/1.0" and reason == "Fine"
    assert raw == [(n.encode("latin-1"), v.encode("latin-1")) for n, v in headers]
    assert replayed.pieces == rec.seen.pieces


def test_replay_accepts_a_tape_object_as_well_as_a_path(recordings: Recordings) -> None:
    shell = SHELL_LIST[0]
    rec = recordings.get(shell, "complete")
    replayed = fetch(shell, shell.replay(streamtape.open_tape(rec.path), speed=math.inf), rec.url)
    assert_same_view(shell, replayed, rec.seen)


# -- recording a replay ------------------------------------------------------------------------------


@SHELLS
@ALL_CASES
def test_recording_a_replay_writes_a_tape_equal_to_the_original(
    shell: Shell, case: Case, recordings: Recordings, tmp_path: Path
) -> None:
    rec = recordings.get(shell, case)
    copy = tmp_path / "copy.tape"
    transport = shell.recording(copy, transport=shell.replay(rec.path, speed=math.inf))
    # A read timeout longer than any recorded gap, so that recorded errors are replayed as recorded.
    replayed = fetch(shell, transport, rec.url, timeout=read_timeout(shell, 5.0))
    assert_same_view(shell, replayed, rec.seen)
    again = streamtape.open_tape(copy)
    assert not again.incomplete
    (exchange,) = again.exchanges
    assert comparable(exchange) == comparable(rec.exchange)  # the reason phrase too
