"""Recording's files, through the four transport shells: recording never breaks the traffic, tapes are
created private, appended to, shared between clients, and what a killed process leaves is readable.

No mocks: every test talks HTTP/1.1 to the SSE emulator on 127.0.0.1 through a real client whose transport
is a streamtape recording transport, then reads the tape back with ``open_tape``.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import httpx2
import pytest
from helpers import CHAT_BODY, CHAT_PATH, events, fetch, only_exchange, stream
from shells import SHELL_LIST, SHELLS, Shell

import streamtape
import streamtape.httpx
import streamtape.httpx2
from streamtape.emulator import Emulator

pytestmark = pytest.mark.timeout(30)


# -- recording never breaks the traffic --------------------------------------------------------------


@SHELLS
def test_full_disk_logs_an_error_and_the_stream_still_completes_byte_for_byte(
    shell: Shell, emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="streamtape"):
        transport = shell.recording(Path("/dev/full"))
        got = fetch(shell, transport, emulator.url(split=2) + CHAT_PATH)
    assert got.error is None
    assert got.body == b"".join(events(split=2))
    errors = [r for r in caplog.records if r.name == "streamtape" and r.levelno == logging.ERROR]
    assert errors and "/dev/full" in errors[0].getMessage()
    assert transport.recorder.failure is not None


@SHELLS
def test_recording_into_a_file_that_is_not_a_tape_leaves_it_untouched(
    shell: Shell, emulator: Emulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "notes.txt"
    original = b"my notes, not a tape\n" * 10
    path.write_bytes(original)
    with caplog.at_level(logging.ERROR, logger="streamtape"):
        got = stream(shell, emulator.url(events=5) + CHAT_PATH, tape=path)
    assert got.error is None
    assert got.body == b"".join(events(events=5))
    assert path.read_bytes() == original
    errors = [r for r in caplog.records if r.name == "streamtape" and r.levelno == logging.ERROR]
    assert errors and str(path) in errors[0].getMessage()


@pytest.mark.parametrize("where", ["missing-dir/run.tape", "a-file/run.tape", "a-file/spool/"])
def test_unwritable_tape_path_logs_an_error_and_traffic_goes_through(
    emulator: Emulator, tmp_path: Path, caplog: pytest.LogCaptureFixture, where: str
) -> None:
    """ENOENT, and ENOTDIR (a path under a regular file: unwritable even as root), for a tape and a spool."""
    (tmp_path / "a-file").write_text("a regular file\n")
    with caplog.at_level(logging.ERROR, logger="streamtape"):
        got = stream(SHELL_LIST[2], emulator.url(events=3) + CHAT_PATH, tape=tmp_path / where)
    assert got.error is None and got.body == b"".join(events(events=3))
    errors = [r for r in caplog.records if r.name == "streamtape" and r.levelno == logging.ERROR]
    assert errors and str(tmp_path / where) in errors[0].getMessage()


# -- files ----------------------------------------------------------------------------------------


def test_new_tape_is_created_with_mode_0600(emulator: Emulator, tmp_path: Path) -> None:
    path = tmp_path / "run.tape"
    old = os.umask(0)  # so the mode seen is the one the writer asked for, not umask's doing
    try:
        with httpx.Client(transport=streamtape.httpx.RecordingTransport(path)) as client:
            client.post(emulator.url(events=2) + CHAT_PATH, content=CHAT_BODY)
            recording = stat.S_IMODE(path.stat().st_mode)
    finally:
        os.umask(old)
    assert recording == 0o600  # while the writer has it open
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # and once closed (and compacted)
    assert only_exchange(path).end.outcome == "complete"


def test_recording_twice_into_one_path_appends_a_second_segment(emulator: Emulator, tmp_path: Path) -> None:
    path = tmp_path / "run.tape"
    first = stream(SHELL_LIST[0], emulator.url(events=2) + CHAT_PATH, tape=path)
    size = path.stat().st_size
    second = stream(SHELL_LIST[3], emulator.url(events=3) + CHAT_PATH, tape=path)
    assert path.stat().st_size > size
    tape = streamtape.open_tape(path)
    assert not tape.incomplete
    assert len(tape.segments) == 2
    assert [(e.segment, e.end.outcome) for e in tape.exchanges] == [(0, "complete"), (1, "complete")]
    assert [e.body for e in tape.exchanges] == [first.body, second.body]


def test_two_clients_recording_to_one_path_share_one_segment(emulator: Emulator, tmp_path: Path) -> None:
    path = tmp_path / "run.tape"
    url = emulator.url(events=2) + CHAT_PATH
    first = httpx.Client(transport=streamtape.httpx.RecordingTransport(path))
    second = httpx2.Client(transport=streamtape.httpx2.RecordingTransport(path))
    try:
        bodies = [first.post(url, content=CHAT_BODY).content, second.post(url, content=CHAT_BODY).content]
        first.close()  # the other client still records into the same open tape
        bodies.append(second.post(url, content=CHAT_BODY).content)
    finally:
        first.close()
        second.close()
    tape = streamtape.open_tape(path)
    assert len(tape.segments) == 1 and not tape.incomplete
    assert [e.id for e in tape.exchanges] == [1, 2, 3]
    assert [e.body for e in tape.exchanges] == bodies
    assert all(e.end.outcome == "complete" for e in tape.exchanges)


_KILLED_CHILD = """
import sys, httpx, streamtape.httpx
url, path, body = sys.argv[1], sys.argv[2], sys.argv[3].encode()
transport = streamtape.httpx.RecordingTransport(path)
with httpx.Client(transport=transport, timeout=30) as client:
    with client.stream("POST", url, content=body) as response:
        received = b""
        for piece in response.iter_raw():
            received += piece
            if received.count(b"\\n\\n") == 3:
                print("received 3 events", flush=True)
"""


def test_process_killed_mid_stream_leaves_an_incomplete_tape_with_what_it_received(
    emulator: Emulator, tmp_path: Path
) -> None:
    path = tmp_path / "killed.tape"
    url = emulator.url(stall_at=3, stall_s=5) + CHAT_PATH
    child = subprocess.Popen(
        [sys.executable, "-c", _KILLED_CHILD, url, str(path), CHAT_BODY.decode()],
        stdout=subprocess.PIPE,
        cwd=Path(streamtape.__file__).parent.parent,
    )
    try:
        ready, _, _ = select.select([child.stdout], [], [], 10)
        assert ready and child.stdout.readline() == b"received 3 events\n"
        time.sleep(0.6)  # the stream is stalled now: only the writer's timed flush can save the chunks
        assert child.poll() is None
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(5)
        child.stdout.close()
    tape = streamtape.open_tape(path)
    assert tape.incomplete
    (exchange,) = tape.exchanges
    assert exchange.request.body == CHAT_BODY
    assert exchange.response is not None and exchange.response.status_code == 200
    assert exchange.body == b"".join(events()[:3])
    assert exchange.end.outcome == "incomplete"

    # The dead process's lock is gone and its tape takes a new segment after what it left.
    after = stream(SHELL_LIST[0], emulator.url(events=2) + CHAT_PATH, tape=path)
    tape = streamtape.open_tape(path)
    assert [(e.segment, e.end.outcome) for e in tape.exchanges] == [(0, "incomplete"), (1, "complete")]
    assert tape.exchanges[0].body == b"".join(events()[:3])
    assert tape.exchanges[1].body == after.body
