"""Recording through the four transport shells (httpx / httpx2, sync / async) against the real emulator.

No mocks: every test talks HTTP/1.1 to the SSE emulator on 127.0.0.1 through a real client whose transport
is a streamtape recording transport, then reads the tape back with ``open_tape``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import select
import signal
import socket
import stat
import subprocess
import sys
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
import zstandard
from shells import ASYNC_SHELLS, SHELL_LIST, SHELLS, Shell

import streamtape
import streamtape.httpx
import streamtape.httpx2
from streamtape.emulator import Emulator, Scenario, openai_chat
from streamtape.record.redact import Redactor

pytestmark = pytest.mark.timeout(30)

CHAT_PATH = "/v1/chat/completions"
CHAT: dict[str, Any] = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}], "stream": True}
CHAT_BODY = json.dumps(CHAT).encode()


# -- the four shells --------------------------------------------------------------------------------


@dataclass
class Received:
    """What the client saw: the raw pieces ``iter_raw`` gave it, its response, the exception it caught."""

    pieces: list[bytes] = field(default_factory=list)
    response: Any = None
    error: BaseException | None = None
    transport: Any = None

    @property
    def body(self) -> bytes:
        return b"".join(self.pieces)


def stream(
    shell: Shell,
    url: str,
    *,
    tape: Path | None = None,
    redact: Any = True,
    headers: dict[str, Any] | None = None,
    timeout: Any = None,
    stop_after_first: str | None = None,
) -> Received:
    """POST ``CHAT_BODY`` to ``url`` with ``client.stream`` and read the raw pieces (recording to ``tape``).

    ``stop_after_first``: after the first piece, "close" the response while its iterator is still alive,
    or "break" out of the loop (the iterator is dropped, then the response closed on leaving the block).
    """
    lib = shell.lib
    got = Received()
    got.transport = shell.recording(tape, redact=redact) if tape is not None else None
    timeout = timeout if timeout is not None else lib.Timeout(5.0)
    kwargs = {"content": CHAT_BODY, "headers": {"content-type": "application/json", **(headers or {})}}

    if shell.is_async:

        async def run() -> None:
            async with lib.AsyncClient(transport=got.transport, timeout=timeout) as client:
                try:
                    async with client.stream("POST", url, **kwargs) as response:
                        got.response = response
                        if stop_after_first == "close":
                            pieces = response.aiter_raw()
                            got.pieces.append(await pieces.__anext__())
                            await response.aclose()
                            await pieces.aclose()
                            return
                        async for piece in response.aiter_raw():
                            got.pieces.append(piece)
                            if stop_after_first == "break":
                                break
                except lib.HTTPError as exc:
                    got.error = exc

        asyncio.run(run())
        return got

    with lib.Client(transport=got.transport, timeout=timeout) as client:
        try:
            with client.stream("POST", url, **kwargs) as response:
                got.response = response
                if stop_after_first == "close":
                    pieces = response.iter_raw()
                    got.pieces.append(next(pieces))
                    response.close()
                    pieces.close()
                    return got
                for piece in response.iter_raw():
                    got.pieces.append(piece)
                    if stop_after_first == "break":
                        break
        except lib.HTTPError as exc:
            got.error = exc
    return got


def events(**knobs: Any) -> list[bytes]:
    """The SSE events the emulator sends for ``CHAT`` under these knobs."""
    return openai_chat.stream_events(Scenario(**knobs), CHAT)


def only_exchange(path: Path) -> streamtape.Exchange:
    tape = streamtape.open_tape(path)
    assert len(tape.exchanges) == 1, tape.exchanges
    return tape.exchanges[0]


def latin1(pairs: Iterable[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    return [(name.decode("latin-1"), value.decode("latin-1")) for name, value in pairs]


def decompressed(path: Path) -> bytes:
    """The whole tape decompressed, every frame, independently of streamtape's own reader."""
    with open(path, "rb") as f:
        return zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True).read()


def assert_error_recorded(shell: Shell, got: Received, exchange: streamtape.Exchange, name: str) -> None:
    """The client saw the library's own ``name`` exception, and the tape's end names that same exception."""
    exc = got.error
    assert exc is not None, "the client saw no error"
    assert type(exc) is getattr(shell.lib, name), repr(exc)
    assert exchange.end.outcome == "error"
    assert exchange.end.error_type == type(exc).__name__ == name
    assert exchange.end.message == str(exc)
    assert [c.data for c in exchange.chunks] == got.pieces


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


# -- how exchanges end --------------------------------------------------------------------------------


@SHELLS
def test_reset_mid_stream_is_recorded_as_error_after_the_bytes_received(
    shell: Shell, emulator: Emulator, tmp_path: Path
) -> None:
    got = stream(shell, emulator.url(reset_at=3) + CHAT_PATH, tape=tmp_path / "run.tape")
    exchange = only_exchange(tmp_path / "run.tape")
    assert_error_recorded(shell, got, exchange, "ReadError")
    assert exchange.response is not None and exchange.response.status_code == 200
    assert got.body.startswith(b"".join(events()[:3]))


@SHELLS
def test_stall_past_the_read_timeout_is_recorded_as_read_timeout(
    shell: Shell, emulator: Emulator, tmp_path: Path
) -> None:
    got = stream(
        shell,
        emulator.url(stall_at=2, stall_s=0.4) + CHAT_PATH,
        tape=tmp_path / "run.tape",
        timeout=shell.lib.Timeout(5.0, read=0.1),
    )
    exchange = only_exchange(tmp_path / "run.tape")
    assert_error_recorded(shell, got, exchange, "ReadTimeout")
    assert exchange.body == b"".join(events()[:2])


@SHELLS
@pytest.mark.parametrize("how", ["close", "break"])
def test_client_closing_after_one_chunk_is_recorded_as_client_closed(
    shell: Shell, emulator: Emulator, tmp_path: Path, how: str
) -> None:
    url = emulator.url(events=12) + CHAT_PATH
    got = stream(shell, url, tape=tmp_path / "run.tape", stop_after_first=how)
    assert got.error is None and len(got.pieces) == 1
    exchange = only_exchange(tmp_path / "run.tape")
    assert exchange.end.outcome == "client_closed"
    assert exchange.end.error_type is None
    assert [c.data for c in exchange.chunks] == got.pieces


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@SHELLS
def test_connection_refused_is_recorded_as_a_request_without_response(shell: Shell, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_unused_port()}{CHAT_PATH}"
    got = stream(shell, url, tape=tmp_path / "run.tape")
    assert got.response is None
    exchange = only_exchange(tmp_path / "run.tape")
    assert exchange.request.url == url
    assert exchange.request.body == CHAT_BODY
    assert exchange.response is None
    assert exchange.chunks == []
    assert_error_recorded(shell, got, exchange, "ConnectError")


@SHELLS
def test_body_cut_short_is_recorded_as_remote_protocol_error(
    shell: Shell, emulator: Emulator, tmp_path: Path
) -> None:
    got = stream(shell, emulator.url(cut_at=3) + CHAT_PATH, tape=tmp_path / "run.tape")
    exchange = only_exchange(tmp_path / "run.tape")
    assert_error_recorded(shell, got, exchange, "RemoteProtocolError")
    assert got.body.startswith(b"".join(events()[:3]))


# -- redaction ----------------------------------------------------------------------------------------


SECRETS = ("QSECRET", "GSECRET", "ASECRET", "CSECRET", "XSECRET")


def _secret_request(shell: Shell, emulator: Emulator, tape: Path, redact: Any = True) -> Received:
    url = emulator.url(events=2) + CHAT_PATH + "?key=QSECRET&x=1&x-custom-secret=XSECRET"
    headers = {
        "x-goog-api-key": "GSECRET",
        "X-Api-Key": "ASECRET",
        "cookie": "session=CSECRET; theme=dark",
        "x-custom-secret": "XSECRET",
    }
    got = stream(shell, url, tape=tape, redact=redact, headers=headers)
    assert got.error is None
    assert got.body == b"".join(events(events=2))
    return got


@SHELLS
def test_secrets_in_query_and_headers_never_reach_the_tape(
    shell: Shell, emulator: Emulator, tmp_path: Path
) -> None:
    path = tmp_path / "run.tape"
    _secret_request(shell, emulator, path)
    content, raw = decompressed(path), path.read_bytes()
    for secret in SECRETS[:-1]:
        assert secret.encode() not in content
        assert secret.encode() not in raw
    assert b"REDACTED:" in content and b"x-goog-api-key" in content and b"session=" in content

    exchange = only_exchange(path)
    fingerprint = Redactor().fingerprint  # the key comes from $STREAMTAPE_REDACT_KEY (conftest)
    assert f"?key={fingerprint('QSECRET')}&x=1&" in exchange.request.url
    headers = dict(exchange.request.headers)
    assert headers["x-goog-api-key"] == fingerprint("GSECRET")
    assert headers["X-Api-Key"] == fingerprint("ASECRET")  # names match case-insensitively, case is kept
    assert headers["cookie"] == f"session={fingerprint('CSECRET')}; theme={fingerprint('dark')}"
    assert headers["x-custom-secret"] == "XSECRET"  # not a default name


def test_password_in_url_userinfo_never_reaches_the_tape(emulator: Emulator, tmp_path: Path) -> None:
    """httpx turns ``user:password@`` into a Basic Authorization header, which is redacted; the URL is too."""
    path = tmp_path / "run.tape"
    url = (emulator.url(events=2) + CHAT_PATH).replace("http://", "http://alice:USECRET@")
    got = stream(SHELL_LIST[0], url, tape=path)
    assert got.error is None and got.body == b"".join(events(events=2))
    exchange = only_exchange(path)
    assert dict(exchange.request.headers)["Authorization"].startswith("Basic REDACTED:")
    assert "USECRET" not in exchange.request.url, exchange.request.url
    assert f"//alice:{Redactor().fingerprint('USECRET')}@127.0.0.1:" in exchange.request.url  # user kept
    assert b"USECRET" not in decompressed(path)


def test_redact_false_keeps_the_secrets(emulator: Emulator, tmp_path: Path) -> None:
    path = tmp_path / "run.tape"
    _secret_request(SHELL_LIST[0], emulator, path, redact=False)
    content = decompressed(path)
    for secret in SECRETS:
        assert secret.encode() in content
    assert b"REDACTED:" not in content
    assert streamtape.open_tape(path).header.redaction is None


@SHELLS
def test_extra_redact_names_cover_headers_and_query(shell: Shell, emulator: Emulator, tmp_path: Path) -> None:
    path = tmp_path / "run.tape"
    _secret_request(shell, emulator, path, redact=["X-Custom-Secret"])
    content = decompressed(path)
    for secret in SECRETS:  # the default names stay redacted too
        assert secret.encode() not in content
    exchange = only_exchange(path)
    fingerprint = Redactor().fingerprint
    assert dict(exchange.request.headers)["x-custom-secret"] == fingerprint("XSECRET")
    assert exchange.request.url.endswith(f"&x-custom-secret={fingerprint('XSECRET')}")
    redaction = streamtape.open_tape(path).header.redaction
    assert redaction is not None and "x-custom-secret" in redaction.headers


def test_same_secret_in_two_tapes_has_the_same_fingerprint(emulator: Emulator, tmp_path: Path) -> None:
    one, two = tmp_path / "one.tape", tmp_path / "two.tape"
    _secret_request(SHELL_LIST[2], emulator, one)
    _secret_request(SHELL_LIST[1], emulator, two)
    first, second = only_exchange(one), only_exchange(two)
    assert dict(first.request.headers)["x-goog-api-key"] == dict(second.request.headers)["x-goog-api-key"]
    assert first.request.url == second.request.url
    assert re.search(r"key=REDACTED:[0-9a-f]{12}&", first.request.url)
    key_ids = {streamtape.open_tape(p).header.redaction.key_id for p in (one, two)}
    assert len(key_ids) == 1


# -- recording never breaks the traffic --------------------------------------------------------------


@SHELLS
def test_full_disk_logs_an_error_and_the_stream_still_completes_byte_for_byte(
    shell: Shell, emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="streamtape"):
        got = stream(shell, emulator.url(split=2) + CHAT_PATH, tape=Path("/dev/full"))
    assert got.error is None
    assert got.body == b"".join(events(split=2))
    errors = [r for r in caplog.records if r.name == "streamtape" and r.levelno == logging.ERROR]
    assert errors and "/dev/full" in errors[0].getMessage()
    assert got.transport.recorder.failure is not None


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


@pytest.mark.parametrize("where", ["missing-dir/run.tape", "a-directory"])
def test_unwritable_tape_path_logs_an_error_and_traffic_goes_through(
    emulator: Emulator, tmp_path: Path, caplog: pytest.LogCaptureFixture, where: str
) -> None:
    (tmp_path / "a-directory").mkdir()
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
