"""Shared fixtures: one SSE emulator for the session, a redaction key that never touches ~/.config, and the
recordings the replay tests share (see ``replay_cases.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from replay_cases import PACED, STALLED, Recorded, Recordings, record_shared_tape

from streamtape.emulator import Emulator

#: The fingerprint key every test records with (see ``streamtape.record.redact.default_key``).
REDACT_KEY = "streamtape-tests-redaction-key"


@pytest.fixture(autouse=True)
def _redaction_key(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """A fixed fingerprint key, and a throwaway config dir should anything still look for the key file."""
    monkeypatch.setenv("STREAMTAPE_REDACT_KEY", REDACT_KEY)
    config: Path = tmp_path_factory.mktemp("xdg-config")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))


@pytest.fixture(scope="session")
def _emulator_server() -> Iterator[Emulator]:
    with Emulator() as emu:
        yield emu
    assert emu.errors == []  # stop() joined the handler threads: nothing failed late


@pytest.fixture
def emulator(_emulator_server: Emulator) -> Iterator[Emulator]:
    """The session's emulator with its request log, attempt counters and errors reset for this test."""
    assert _emulator_server.errors == [], "the emulator failed during an earlier test"
    _emulator_server.reset()
    yield _emulator_server
    # Whatever the client or the recorder did (resets, hang-ups, timeouts), serving must not raise.
    assert _emulator_server.errors == []


@pytest.fixture(scope="session")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> Recordings:
    """Each (shell, case) of ``replay_cases.CASES``, recorded on first use."""
    return Recordings(tmp_path_factory.mktemp("recordings"))


@pytest.fixture(scope="session")
def paced(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    """Twelve events 30 ms apart, recorded through httpx2 (sync)."""
    return record_shared_tape(tmp_path_factory, "paced", PACED)


@pytest.fixture(scope="session")
def stalled(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    """Two events, a 1 s stall, two more, recorded through httpx2 (sync)."""
    return record_shared_tape(tmp_path_factory, "stalled", STALLED)
