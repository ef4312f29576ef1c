"""Sharp edges a new user meets first: the wrong library's transport, a platform without fcntl, key files."""

from __future__ import annotations

import logging
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import httpx2
import openai
import pytest

import streamtape
import streamtape.httpx
import streamtape.httpx2
from streamtape.emulator import Emulator

OTHER = {"httpx": ("httpx2", httpx2), "httpx2": ("httpx", httpx)}


@pytest.mark.parametrize("adapter", [streamtape.httpx, streamtape.httpx2], ids=["httpx", "httpx2"])
@pytest.mark.parametrize("kind", ["RecordingTransport", "ReplayTransport"])
def test_transport_in_the_other_librarys_client_names_the_module_to_use(
    adapter: object, kind: str, tmp_path: Path, emulator: Emulator
) -> None:
    library = adapter.__name__.rpartition(".")[2]  # type: ignore[attr-defined]
    other_name, other = OTHER[library]
    tape = tmp_path / "t.tape"
    with httpx2.Client(transport=streamtape.httpx2.RecordingTransport(tape)) as client:
        client.get(emulator.url(events=2) + "/v1/chat/completions")
    transport = getattr(adapter, kind)(tape)
    with (
        other.Client(transport=transport) as client,
        pytest.raises(streamtape.WrongLibraryError) as caught,
    ):
        client.get(emulator.url(events=2) + "/v1/chat/completions")
    message = str(caught.value)
    assert f"streamtape.{library}.{kind} works with {library} clients" in message
    assert f"use streamtape.{other_name}.{kind} for an {other_name} client" in message


@pytest.mark.parametrize("adapter", [streamtape.httpx, streamtape.httpx2], ids=["httpx", "httpx2"])
def test_recording_around_the_other_librarys_transport_fails_at_construction(
    adapter: object, tmp_path: Path
) -> None:
    library = adapter.__name__.rpartition(".")[2]  # type: ignore[attr-defined]
    other_name, other = OTHER[library]
    with pytest.raises(streamtape.WrongLibraryError, match=f"use streamtape.{other_name}.RecordingTransport"):
        adapter.RecordingTransport(tmp_path / "t.tape", transport=other.HTTPTransport())  # type: ignore[attr-defined]
    assert not (tmp_path / "t.tape").exists()


def test_sdk_that_hides_the_wrong_library_error_still_logs_it(
    tmp_path: Path, emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    """An SDK may wrap transport exceptions (openai 1.x: "Connection error."): the log says what to do too."""
    client = openai.OpenAI(
        api_key="sk-test",
        base_url=emulator.url(events=2) + "/v1",
        http_client=httpx2.Client(transport=streamtape.httpx.RecordingTransport(tmp_path / "t.tape")),  # type: ignore[arg-type]
        max_retries=0,
    )
    with caplog.at_level(logging.ERROR, logger="streamtape"), pytest.raises(Exception) as caught:
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}], stream=True)
    raised = caught.value
    assert isinstance(raised, streamtape.WrongLibraryError) or (
        isinstance(raised, openai.APIConnectionError)
        and isinstance(raised.__cause__, streamtape.WrongLibraryError)
    )
    assert any("use streamtape.httpx2.RecordingTransport" in r.getMessage() for r in caplog.records)


def test_import_and_record_without_fcntl(tmp_path: Path) -> None:
    """Windows has no fcntl: importing streamtape and recording still work (unlocked)."""
    script = textwrap.dedent(
        """
        import sys
        sys.modules["fcntl"] = None  # what `import fcntl` finds on Windows: an ImportError
        import httpx, streamtape, streamtape.httpx

        def answer(request):
            return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=b"data: hi\\n\\n")

        path = sys.argv[1]
        transport = streamtape.httpx.RecordingTransport(path, transport=httpx.MockTransport(answer))
        with httpx.Client(transport=transport) as client:
            assert client.get("http://example.test/v1/chat/completions").content == b"data: hi\\n\\n"
        tape = streamtape.open_tape(path)
        print(len(tape.exchanges), tape.exchanges[0].body.decode(), tape.exchanges[0].end.outcome)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "t.tape")], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "data:", "hi", "complete"]


def test_mismatch_message_creates_no_key_file_in_home(
    tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    tape = tmp_path / "t.tape"
    with httpx2.Client(transport=streamtape.httpx2.RecordingTransport(tape, redact=False)) as client:
        client.get(emulator.url(events=2) + "/v1/chat/completions")
    config = tmp_path / "config"
    monkeypatch.delenv("STREAMTAPE_REDACT_KEY")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    replay = streamtape.httpx2.ReplayTransport(tape, speed=math.inf)
    with httpx2.Client(transport=replay) as client, pytest.raises(streamtape.TapeMismatch) as caught:
        client.get(emulator.url(events=2) + "/v1/other?api_key=sk-live-secret")
    assert "sk-live-secret" not in str(caught.value)
    assert "api_key=REDACTED:" in str(caught.value)
    assert not config.exists() or not any(config.rglob("*")), list(config.rglob("*"))
    assert not os.environ.get("STREAMTAPE_REDACT_KEY")


@pytest.mark.parametrize("lib", [httpx, httpx2], ids=["httpx", "httpx2"])
def test_recording_around_a_mock_transport_keeps_the_body(lib: object, tmp_path: Path) -> None:
    """A response built with its whole body (MockTransport, respx) is read when created, not streamed."""
    adapter = streamtape.httpx if lib is httpx else streamtape.httpx2

    def answer(request: object) -> object:
        return lib.Response(200, headers={"content-type": "application/json"}, content=b'{"ok": true}')  # type: ignore[attr-defined]

    transport = adapter.RecordingTransport(tmp_path / "t.tape", transport=lib.MockTransport(answer))  # type: ignore[attr-defined]
    with lib.Client(transport=transport) as client:  # type: ignore[attr-defined]
        assert client.get("http://example.test/v1/x").json() == {"ok": True}
    (exchange,) = streamtape.open_tape(tmp_path / "t.tape").exchanges
    assert exchange.body == b'{"ok": true}'
    assert exchange.end.outcome == "complete"
