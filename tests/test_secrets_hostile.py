"""Secrets and files against a hostile neighbour: saves that never write through a planted link, mismatch
messages that never print a live secret, fingerprints of a value's real bytes, and a key kept private.

- Every temporary file (a save's, a compaction's, the redaction key's) is created exclusively, beside its
  target, under an unpredictable name, never through a link, mode 0600, and removed when the write fails.
- A ``TapeMismatch`` redacts the live request by the tape header's ``redaction`` names plus the defaults,
  with a key of the process's own, and shows where bodies differ (offset, lengths, fingerprints), never
  their bytes, unless asked (``show_bodies=True`` on the ``Matcher``, ``STREAMTAPE_SHOW_BODIES=1``).
- Query values are fingerprinted as their bytes after percent-decoding (UTF-8), header values as their
  ISO-8859-1 bytes (spec/tape-format.md section 5); the key's directories are created 0700 whatever the umask.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx2
import pytest
from conftest import REDACT_KEY
from helpers import CHAT_BODY, CHAT_PATH, VECTORS

import streamtape
import streamtape.httpx2
from streamtape.emulator import Emulator
from streamtape.format.records import End, Header, Record, Redaction, Request, Response
from streamtape.model import build_tape
from streamtape.record.redact import Redactor, default_key, process_key
from streamtape.replay.matching import Matcher, ReplayRequest
from streamtape.storage import atomic
from streamtape.storage.compact import compact
from streamtape.storage.sinks import DirectorySink, _beside
from streamtape.storage.tapefile import TapeFile

pytestmark = pytest.mark.timeout(30)


def _spec_fingerprint(key: bytes, secret: bytes) -> str:
    """Section 5, computed here independently of the redactor."""
    return "REDACTED:" + hmac.new(key, secret, hashlib.sha256).hexdigest()[:12]


def _vector() -> streamtape.Tape:
    return streamtape.open_tape(VECTORS / "complete.tape")


def _listing(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir()}


# -- atomic writes never follow links -----------------------------------------------------------------


def test_a_symlink_planted_at_the_old_temporary_name_never_makes_a_save_overwrite_its_target(
    tmp_path: Path,
) -> None:
    target, victim = tmp_path / "run.tape", tmp_path / "victim.txt"
    victim.write_bytes(b"precious\n")
    planted = Path(f"{target}.{os.getpid()}.tmp")  # the name saves used to open, following links
    planted.symlink_to(victim)
    _vector().save(target)
    assert victim.read_bytes() == b"precious\n"
    assert planted.is_symlink() and not target.is_symlink()
    assert streamtape.open_tape(target).exchanges == _vector().exchanges
    assert _listing(tmp_path) == {"run.tape", "victim.txt", planted.name}  # no temporary file left


def test_a_symlink_planted_at_the_old_temporary_name_never_makes_compact_overwrite_its_target(
    tmp_path: Path,
) -> None:
    target, victim = tmp_path / "run.tape", tmp_path / "victim.txt"
    _vector().save(target)
    victim.write_bytes(b"precious\n")
    Path(f"{target}.{os.getpid()}.tmp").symlink_to(victim)
    compact(target)
    assert victim.read_bytes() == b"precious\n"
    assert streamtape.open_tape(target).exchanges == _vector().exchanges


def test_a_save_skips_temporary_names_already_taken_by_a_link_or_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever is planted at a temporary name (a link, a dangling link, a file) stays as it was: the save
    takes another name."""
    names = iter(["link", "dangling", "file", "free"])
    monkeypatch.setattr(atomic, "_token", lambda: next(names))
    target, victim = tmp_path / "run.tape", tmp_path / "victim.txt"
    victim.write_bytes(b"precious\n")
    (tmp_path / ".run.tape.link.tmp").symlink_to(victim)
    (tmp_path / ".run.tape.dangling.tmp").symlink_to(tmp_path / "nowhere")
    (tmp_path / ".run.tape.file.tmp").write_bytes(b"someone else's\n")
    _vector().save(target)
    assert victim.read_bytes() == b"precious\n"
    assert not (tmp_path / "nowhere").exists()
    assert (tmp_path / ".run.tape.file.tmp").read_bytes() == b"someone else's\n"
    assert streamtape.open_tape(target).exchanges == _vector().exchanges
    assert ".run.tape.free.tmp" not in _listing(tmp_path)  # renamed into place


def test_a_save_whose_every_temporary_name_is_taken_fails_without_touching_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(atomic, "_token", lambda: "same")
    target, victim = tmp_path / "run.tape", tmp_path / "victim.txt"
    victim.write_bytes(b"precious\n")
    (tmp_path / ".run.tape.same.tmp").symlink_to(victim)
    with pytest.raises(FileExistsError):
        _vector().save(target)
    assert victim.read_bytes() == b"precious\n"
    assert _listing(tmp_path) == {"victim.txt", ".run.tape.same.tmp"}


def test_a_saves_temporary_file_is_private_beside_its_target_and_unpredictably_named(tmp_path: Path) -> None:
    """Looked at while the save writes it: mode 0600 (even under umask 000), in the target's directory, a
    fresh random name each time."""
    seen: list[tuple[str, int]] = []

    def records() -> Iterator[Record]:
        for i, record in enumerate(_vector().records()):
            if i == 1:
                (temp,) = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
                seen.append((temp.name, stat.S_IMODE(temp.lstat().st_mode)))
            yield record

    old = os.umask(0)
    try:
        atomic.write_tape(tmp_path / "run.tape", records())
        atomic.write_tape(tmp_path / "run.tape", records())
    finally:
        os.umask(old)
    (first, first_mode), (second, second_mode) = seen
    assert first_mode == second_mode == 0o600
    assert first != second and first.startswith(".run.tape.") and str(os.getpid()) not in first
    assert stat.S_IMODE((tmp_path / "run.tape").stat().st_mode) == 0o600
    assert _listing(tmp_path) == {"run.tape"}


def test_a_failed_save_leaves_no_temporary_file_and_the_old_tape_untouched(tmp_path: Path) -> None:
    target = tmp_path / "run.tape"
    _vector().save(target)
    before = target.read_bytes()

    def failing() -> Iterator[Record]:
        yield from list(_vector().records())[:3]
        raise OSError("disk on fire")

    with pytest.raises(OSError, match="disk on fire"):
        atomic.write_tape(target, failing())
    assert target.read_bytes() == before
    assert _listing(tmp_path) == {"run.tape"}


def test_a_save_onto_a_symlink_replaces_the_link_and_never_writes_through_it(tmp_path: Path) -> None:
    target, victim = tmp_path / "run.tape", tmp_path / "victim.txt"
    victim.write_bytes(b"precious\n")
    target.symlink_to(victim)
    _vector().save(target)
    assert victim.read_bytes() == b"precious\n"
    assert not target.is_symlink() and streamtape.open_tape(target).exchanges == _vector().exchanges


def test_a_symlink_planted_at_the_name_beside_a_busy_tape_is_never_followed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Another process holds the tape, so this one would record to ``<name>.<pid>.tape``, a predictable name:
    a link planted there is refused, and the traffic goes on unrecorded."""
    path, victim = tmp_path / "run.tape", tmp_path / "victim"
    victim.write_bytes(b"")  # empty: a writer following the link would make it a tape
    holder = TapeFile(str(path), _vector().header)  # the lock is per open file: this counts as another
    Path(_beside(str(path))).symlink_to(victim)

    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=b"data: hi\n\n")

    try:
        with caplog.at_level(logging.ERROR, logger="streamtape"):
            transport = streamtape.httpx2.RecordingTransport(path, transport=httpx2.MockTransport(answer))
            with httpx2.Client(transport=transport) as client:
                assert client.get("http://example.test/v1/x").content == b"data: hi\n\n"
    finally:
        holder.close()
    assert victim.read_bytes() == b""
    assert any("cannot record" in r.getMessage() for r in caplog.records)


def test_links_planted_at_a_directory_sinks_partial_and_final_names_are_never_followed(
    tmp_path: Path,
) -> None:
    """The per-exchange names are predictable (time, pid, number): a link at the ``.partial`` name makes that
    exchange fail to open (never written through), a link at the final name is replaced by the tape."""
    directory, victim = tmp_path / "flight", tmp_path / "victim"
    victim.write_bytes(b"")
    header = _vector().header
    sink = DirectorySink(str(directory), header)
    first, second = (Request(x, 1_000_000 * x, "GET", "https://h.test/", []) for x in (1, 2))
    Path(sink._stem(first) + ".partial").symlink_to(victim)
    with pytest.raises(FileExistsError):
        sink.write([first])
    final = Path(sink._stem(second) + "-200-complete.tape")
    final.symlink_to(victim)
    sink.write([second, Response(2, 10, 200, "HTTP/1.1", []), End(2, 20, "complete")])
    sink.close()
    assert victim.read_bytes() == b""
    assert not final.is_symlink() and streamtape.open_tape(final).exchanges[0].end.outcome == "complete"


# -- mismatch messages never print live secrets -------------------------------------------------------

LIVE_TOKEN = "tok-live-9f8e7d6c5b4a"
LIVE_SESSION = "s3cret-session-77"
LIVE_KEY = "sk-live-0123456789abcdefghij"


@pytest.fixture
def custom_tape(emulator: Emulator, tmp_path: Path) -> tuple[Path, str]:
    """One exchange recorded with ``redact=["x-custom-token", "session"]``: returns the tape and its URL."""
    url = emulator.url(events=2) + CHAT_PATH
    path = tmp_path / "custom.tape"
    transport = streamtape.httpx2.RecordingTransport(path, redact=["x-custom-token", "session"])
    with httpx2.Client(transport=transport) as client:
        response = client.post(
            f"{url}?session=recorded-session&mode=fast",
            content=CHAT_BODY,
            headers={"content-type": "application/json", "x-custom-token": "recorded-token"},
        )
        assert response.status_code == 200
    header = streamtape.open_tape(path).header
    assert header.redaction is not None and "session" in header.redaction.query
    return path, url


def _replay_error(tape: Path | streamtape.Tape, url: str, body: bytes, **headers: str) -> str:
    transport = streamtape.httpx2.ReplayTransport(tape, speed=math.inf)
    with httpx2.Client(transport=transport) as client, pytest.raises(streamtape.TapeMismatch) as caught:
        client.post(url, content=body, headers={"content-type": "application/json", **headers})
    return str(caught.value)


LIVE_BODY = json.dumps({"key": LIVE_KEY, **json.loads(CHAT_BODY)}).encode()


def test_a_mismatch_message_holds_none_of_the_live_secrets_the_recorder_was_told_to_redact(
    custom_tape: tuple[Path, str],
) -> None:
    path, url = custom_tape
    message = _replay_error(
        path, f"{url}?session={LIVE_SESSION}&mode=fast", LIVE_BODY, **{"x-custom-token": LIVE_TOKEN}
    )
    for secret in (LIVE_SESSION, LIVE_TOKEN, LIVE_KEY, "sk-live", '"key"'):
        assert secret not in message, (secret, message)
    assert "session=REDACTED:" in message and "mode=fast" in message
    # The live body has a field the recorded one lacks: its path, never its value.
    assert f"body differs at $.key (live: a string of {len(LIVE_KEY)} characters REDACTED:" in message
    assert "recorded: absent" in message


def test_a_mismatch_message_for_an_exchange_already_served_holds_no_live_secret(
    custom_tape: tuple[Path, str],
) -> None:
    path, url = custom_tape
    live = f"{url}?session={LIVE_SESSION}&mode=fast"
    transport = streamtape.httpx2.ReplayTransport(path, speed=math.inf)
    with httpx2.Client(transport=transport) as client:
        with client.stream("POST", live, content=CHAT_BODY) as response:
            response.read()  # the recorded session value is a fingerprint: any live value matches
        with pytest.raises(streamtape.TapeMismatch) as caught:
            client.post(live, content=CHAT_BODY)
    assert "already served" in str(caught.value) and LIVE_SESSION not in str(caught.value)


def _tape(*records: Record) -> streamtape.Tape:
    return build_tape(list(records))


def _header(redaction: Redaction | None) -> Header:
    return Header("streamtape", (1, 1), "test", 0, {}, redaction)


def test_a_mismatch_message_redacts_query_names_of_every_segment_and_any_recorded_fingerprint() -> None:
    """A second segment recorded with more names, and a name whose recorded value is a fingerprint though
    no header lists it (another tool's tape): each is redacted in the live URL."""
    tape = _tape(
        _header(Redaction(headers=[], query=["alpha"], key_id="000000000000")),
        Request(1, 0, "GET", "https://h.test/a?alpha=REDACTED:000000000000&sig=REDACTED:111111111111", []),
        _header(Redaction(headers=[], query=["beta"], key_id="000000000000")),
        Request(1, 0, "GET", "https://h.test/b?beta=REDACTED:222222222222", []),
    )
    matcher = Matcher(tape)
    with pytest.raises(streamtape.TapeMismatch) as caught:
        matcher.take(
            ReplayRequest("GET", "https://h.test/c?alpha=A-LIVE&beta=B-LIVE&sig=S-LIVE&api_key=K-LIVE", b"")
        )
    message = str(caught.value)
    for secret in ("A-LIVE", "B-LIVE", "S-LIVE", "K-LIVE"):
        assert secret not in message, message
    for name in ("alpha", "beta", "sig", "api_key"):
        assert f"{name}=REDACTED:" in message


def test_a_mismatch_message_on_a_tape_recorded_without_redaction_still_redacts_the_defaults() -> None:
    tape = _tape(_header(None), Request(1, 0, "GET", "https://h.test/a?token=plain", []))
    with pytest.raises(streamtape.TapeMismatch) as caught:
        Matcher(tape).take(ReplayRequest("GET", "https://h.test/a?token=LIVE-TOKEN", b""))
    assert "LIVE-TOKEN" not in str(caught.value) and "token=REDACTED:" in str(caught.value)


def test_a_mismatch_message_locates_a_json_body_difference_by_path_kind_size_and_fingerprints() -> None:
    recorded = b'{"model": "m", "input": [{"role": "user", "content": "hello"}], "stream": true}'
    live = b'{"stream": true, "model": "m", "input": [{"content": "SECRET-PROMPT", "role": "user"}]}'
    tape = _tape(_header(None), Request(1, 0, "POST", "https://h.test/v1", [], recorded))
    with pytest.raises(streamtape.TapeMismatch) as caught:
        Matcher(tape, show_bodies=False).take(ReplayRequest("POST", "https://h.test/v1", live))
    message = str(caught.value)
    fingerprint = Redactor(key=process_key()).fingerprint
    live_fp, recorded_fp = fingerprint(b'"SECRET-PROMPT"'), fingerprint(b'"hello"')  # of the JSON values
    assert (
        f"body differs at $.input[0].content (live: a string of 13 characters {live_fp}; "
        f"recorded: a string of 5 characters {recorded_fp};"
    ) in message
    assert "SECRET" not in message and "hello" not in message


def test_a_mismatch_message_locates_a_non_json_body_difference_by_offset_lengths_and_fingerprints() -> None:
    recorded = b"model=m&input=hello&stream=true"
    live = b"model=m&input=SECRET-PROMPT&stream=true"
    tape = _tape(_header(None), Request(1, 0, "POST", "https://h.test/v1", [], recorded))
    with pytest.raises(streamtape.TapeMismatch) as caught:
        Matcher(tape, show_bodies=False).take(ReplayRequest("POST", "https://h.test/v1", live))
    message = str(caught.value)
    at = recorded.index(b"hello")
    end_live, end_rec = live.index(b"&stream"), recorded.index(b"&stream")
    fingerprint = Redactor(key=process_key()).fingerprint
    assert f"body differs at byte {at} ({len(live)} vs {len(recorded)} bytes" in message
    assert f"live [{at}:{end_live}] {fingerprint(live[at:end_live])}" in message
    assert f"recorded [{at}:{end_rec}] {fingerprint(recorded[at:end_rec])}" in message
    assert "SECRET" not in message and "hello" not in message and "model" not in message


def test_a_mismatch_message_shows_body_bytes_only_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    tape = _tape(_header(None), Request(1, 0, "POST", "https://h.test/v1", [], b'{"input": "hello"}'))
    live = ReplayRequest("POST", "https://h.test/v1?token=LIVE-TOKEN", b'{"input": "SHOWN"}')

    def message(matcher: Matcher) -> str:
        with pytest.raises(streamtape.TapeMismatch) as caught:
            matcher.take(live)
        return str(caught.value)

    assert "SHOWN" not in message(Matcher(tape))
    assert "SHOWN" in message(Matcher(tape, show_bodies=True))
    monkeypatch.setenv("STREAMTAPE_SHOW_BODIES", "1")
    shown = message(Matcher(tape))
    assert "SHOWN" in shown and "hello" in shown
    assert "LIVE-TOKEN" not in shown  # URL secrets stay redacted whatever is asked
    assert "SHOWN" not in message(Matcher(tape, show_bodies=False))  # the argument wins over the environment


# -- redaction details ----------------------------------------------------------------------------------


def test_two_different_cyrillic_query_keys_get_different_fingerprints_of_their_utf8_bytes() -> None:
    redactor = Redactor(key=b"k")
    one, two = "ключ-один", "ключ-два"
    url_one = redactor.redact_url(f"https://h.test/v1?key={quote(one)}")
    url_two = redactor.redact_url(f"https://h.test/v1?key={quote(two)}")
    assert url_one != url_two
    assert url_one == f"https://h.test/v1?key={_spec_fingerprint(b'k', one.encode())}"
    assert url_two == f"https://h.test/v1?key={_spec_fingerprint(b'k', two.encode())}"
    assert redactor.redact_url(f"https://h.test/v1?key={one}") == url_one  # unencoded, the same bytes


def test_query_values_that_are_not_utf8_keep_their_bytes_apart() -> None:
    redactor = Redactor(key=b"k")
    ff, fe = (
        redactor.redact_url("https://h.test/?token=%FF"),
        redactor.redact_url("https://h.test/?token=%FE"),
    )
    assert ff != fe and ff.endswith(_spec_fingerprint(b"k", b"\xff"))
    assert redactor.redact_url("https://h.test/?token=a+b%2Bc").endswith(_spec_fingerprint(b"k", b"a b+c"))


def test_header_values_are_fingerprinted_as_their_latin1_bytes() -> None:
    redactor = Redactor(key=b"k")
    ((_, value),) = redactor.redact_headers([("authorization", "Bearer caf\xe9")])
    assert value == "Bearer " + _spec_fingerprint(b"k", b"caf\xe9")


def test_a_cyrillic_query_key_recorded_through_a_transport_has_the_spec_fingerprint(
    emulator: Emulator, tmp_path: Path
) -> None:
    path = tmp_path / "run.tape"
    url = emulator.url(events=2) + CHAT_PATH
    with httpx2.Client(transport=streamtape.httpx2.RecordingTransport(path)) as client:
        assert client.post(url, params={"key": "ключ"}, content=CHAT_BODY).status_code == 200
    (exchange,) = streamtape.open_tape(path).exchanges
    assert exchange.request.url.endswith(f"?key={_spec_fingerprint(REDACT_KEY.encode(), 'ключ'.encode())}")


@pytest.fixture
def fresh_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No key in the environment; a config directory that does not exist yet, two levels down."""
    monkeypatch.delenv("STREAMTAPE_REDACT_KEY")
    config = tmp_path / "home" / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    return config


def test_the_key_directory_is_created_0700_and_the_key_file_0600_even_under_umask_000(
    fresh_config: Path,
) -> None:
    old = os.umask(0)
    try:
        key = default_key()
    finally:
        os.umask(old)
    key_file = fresh_config / "streamtape" / "redact.key"
    for directory in (fresh_config.parent, fresh_config, key_file.parent):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert bytes.fromhex(key_file.read_text().strip()) == key and len(key) == 32
    assert _listing(key_file.parent) == {"redact.key"}  # no temporary file left
    assert default_key() == key  # read back, not made again


def test_a_symlink_planted_at_the_key_file_is_never_written_through(fresh_config: Path) -> None:
    victim = fresh_config.parent / "victim"
    (fresh_config / "streamtape").mkdir(parents=True)
    fresh_config.parent.joinpath("victim").write_bytes(b"")
    (fresh_config / "streamtape" / "redact.key").symlink_to(victim)
    assert default_key() == process_key()  # no usable key file: fingerprints for this process only
    assert victim.read_bytes() == b""
    assert _listing(fresh_config / "streamtape") == {"redact.key"}
