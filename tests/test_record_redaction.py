"""Secrets never reach the tape: redaction of query values, headers, cookies and URL passwords when
recording through the four transport shells, with fingerprints that are the same across tapes.

No mocks: every test talks HTTP/1.1 to the SSE emulator on 127.0.0.1 through a real client whose transport
is a streamtape recording transport, then reads the tape back with ``open_tape``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from helpers import CHAT_PATH, Seen, decompressed, events, only_exchange, stream
from shells import SHELL_LIST, SHELLS, Shell

import streamtape
from streamtape.emulator import Emulator
from streamtape.record.redact import Redactor

pytestmark = pytest.mark.timeout(30)


# -- redaction ----------------------------------------------------------------------------------------


SECRETS = ("QSECRET", "GSECRET", "ASECRET", "CSECRET", "XSECRET")


def _secret_request(shell: Shell, emulator: Emulator, tape: Path, redact: Any = True) -> Seen:
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
