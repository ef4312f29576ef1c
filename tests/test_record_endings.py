"""How recorded exchanges end, through the four transport shells: reset, read timeout, a client that closes
early, a refused connection, a body cut short.

No mocks: every test talks HTTP/1.1 to the SSE emulator on 127.0.0.1 through a real client whose transport
is a streamtape recording transport, then reads the tape back with ``open_tape``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import CHAT_BODY, CHAT_PATH, Seen, events, only_exchange, stream, unused_port
from shells import SHELLS, Shell

import streamtape
from streamtape.emulator import Emulator

pytestmark = pytest.mark.timeout(30)


def assert_error_recorded(shell: Shell, got: Seen, exchange: streamtape.Exchange, name: str) -> None:
    """The client saw the library's own ``name`` exception, and the tape's end names that same exception."""
    exc = got.error
    assert exc is not None, "the client saw no error"
    assert type(exc) is getattr(shell.lib, name), repr(exc)
    assert exchange.end.outcome == "error"
    assert exchange.end.error_type == type(exc).__name__ == name
    assert exchange.end.message == str(exc)
    assert [c.data for c in exchange.chunks] == got.pieces


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
    got = stream(shell, url, tape=tmp_path / "run.tape", stop=how)
    assert got.error is None and len(got.pieces) == 1
    exchange = only_exchange(tmp_path / "run.tape")
    assert exchange.end.outcome == "client_closed"
    assert exchange.end.error_type is None
    assert [c.data for c in exchange.chunks] == got.pieces


@SHELLS
def test_connection_refused_is_recorded_as_a_request_without_response(shell: Shell, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{unused_port()}{CHAT_PATH}"
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
