"""The recordings the replay tests share: each case recorded for real through a shell, then replayed.

Every tape is recorded through a real client and streamtape's recording transport from an emulator of its
own, stopped before the recording is handed over, so a replay that touched the network would fail. The
fixtures that hand these out (``recordings``, ``paced``, ``stalled``) are in ``conftest.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from helpers import CHAT_PATH, Seen, assert_library_error, fetch, read_timeout, unused_port
from shells import SHELL_LIST, Shell

import streamtape
from streamtape.emulator import Emulator


@dataclass(frozen=True)
class Case:
    """A recording: the emulator's knobs (None: nothing listens), the client's read timeout, the error."""

    name: str
    knobs: dict[str, Any] | None
    read_timeout: float | None = None
    error: str | None = None


CASES = [
    Case("complete", {"events": 6, "split": 2}),
    Case("reset", {"reset_at": 3}, error="ReadError"),
    Case("cut", {"cut_at": 3}, error="RemoteProtocolError"),
    Case("read-timeout", {"stall_at": 2, "stall_s": 0.3}, read_timeout=0.1, error="ReadTimeout"),
    Case("refused", None, error="ConnectError"),
    Case("gzip", {"gzip": True, "events": 5}),
    Case("split-utf8", {"split_utf8": True, "events": 6}),
]
CASE_BY_NAME = {case.name: case for case in CASES}
ALL_CASES = pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])


@dataclass
class Recorded:
    path: Path
    url: str
    seen: Seen
    exchange: streamtape.Exchange


def record(shell: Shell, path: Path, case: Case, *, redact: Any = True) -> Recorded:
    """Record ``case`` through ``shell`` from an emulator of its own, stopped before this returns."""
    timeout = read_timeout(shell, case.read_timeout)
    if case.knobs is None:
        url = f"http://127.0.0.1:{unused_port()}{CHAT_PATH}"
        seen = fetch(shell, shell.recording(path, redact=redact), url, timeout=timeout)
    else:
        with Emulator() as emu:
            url = emu.url(**case.knobs) + CHAT_PATH
            seen = fetch(shell, shell.recording(path, redact=redact), url, timeout=timeout)
            assert len(emu.requests) == 1
        assert emu.errors == []
    if case.error is None:
        assert seen.error is None, repr(seen.error)
    else:
        assert_library_error(shell, seen.error, case.error)
    tape = streamtape.open_tape(path)
    assert not tape.incomplete
    (exchange,) = tape.exchanges
    return Recorded(path, url, seen, exchange)


class Recordings:
    """Each (shell, case) recorded once, on first use, and shared by the tests that replay it."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._done: dict[tuple[str, str], Recorded] = {}

    def get(self, shell: Shell, case: Case | str) -> Recorded:
        case = CASE_BY_NAME[case] if isinstance(case, str) else case
        key = (shell.id, case.name)
        if key not in self._done:
            self._done[key] = record(shell, self.directory / f"{shell.id}-{case.name}.tape", case)
        return self._done[key]


PACED = {"events": 12, "pace_ms": 30}  # about 0.35 s from the request to the end of the body
STALL_S = 1.0
STALLED = {"events": 4, "stall_at": 2, "stall_s": STALL_S}  # two events, a 1 s stall, two more


def record_shared_tape(
    tmp_path_factory: pytest.TempPathFactory, name: str, knobs: dict[str, Any]
) -> Recorded:
    # redact=False: shared fixtures run before the per-test redaction key is set, and nothing here is secret.
    path = tmp_path_factory.mktemp(name) / f"{name}.tape"
    return record(SHELL_LIST[2], path, Case(name, knobs), redact=False)


def duration(exchange: streamtape.Exchange) -> float:
    """Seconds from the request to the recorded end."""
    return exchange.end.t_ns / 1e9


def assert_same_view(shell: Shell, replayed: Seen, recorded: Seen, *, same_message: bool = True) -> None:
    """The replaying client saw what the recording client saw: head, pieces (boundaries too), exception."""
    assert replayed.head == recorded.head
    assert replayed.pieces == recorded.pieces
    if recorded.error is None:
        assert replayed.error is None, repr(replayed.error)
        return
    assert_library_error(shell, replayed.error, type(recorded.error).__name__)
    if same_message:
        assert str(replayed.error) == str(recorded.error)
