"""Which recorded exchange answers a request: matching, repeats, retries, and the mismatch error.

A request the tape cannot answer is a ``TapeMismatch`` that says how it differs, never a network request:
each test checks that the emulator saw nothing during the replay.
"""

from __future__ import annotations

import math
from pathlib import Path

import httpx2
import pytest
from helpers import CHAT_BODY, CHAT_PATH, OTHER_BODY, VECTORS, Call, events, fetch, fetch_all
from replay_cases import Recordings, assert_same_view
from shells import SHELL_LIST, SHELLS, Shell

import streamtape
import streamtape.httpx
import streamtape.httpx2
from streamtape import ReplayRequest, TapeMismatch
from streamtape.emulator import Emulator

pytestmark = pytest.mark.timeout(30)


# -- matching and retries ----------------------------------------------------------------------------


def test_tape_mismatch_is_part_of_the_public_surface() -> None:
    assert streamtape.TapeMismatch is TapeMismatch
    assert issubclass(TapeMismatch, streamtape.TapeError)


@SHELLS
def test_a_request_with_a_different_body_is_a_tape_mismatch_saying_how_it_differs(
    shell: Shell, recordings: Recordings
) -> None:
    rec = recordings.get(shell, "complete")
    replayed = fetch(shell, shell.replay(rec.path, speed=math.inf), rec.url, body=OTHER_BODY)
    exc = replayed.error
    assert isinstance(exc, TapeMismatch) and isinstance(exc, streamtape.TapeError), repr(exc)
    message = str(exc)
    assert f"POST {rec.url}" in message
    assert "body differs" in message
    assert str(rec.path) in message
    assert replayed.head is None


@SHELLS
def test_a_request_after_every_exchange_was_served_says_so(shell: Shell, recordings: Recordings) -> None:
    rec = recordings.get(shell, "complete")
    first, second = fetch_all(shell, shell.replay(rec.path, speed=math.inf), Call(rec.url), Call(rec.url))
    assert_same_view(shell, first, rec.seen)
    assert isinstance(second.error, TapeMismatch), repr(second.error)
    message = str(second.error)
    assert "already served" in message
    assert "allow_repeats" in message
    assert rec.url in message


@SHELLS
def test_allow_repeats_serves_an_exchange_again(shell: Shell, recordings: Recordings) -> None:
    rec = recordings.get(shell, "complete")
    transport = shell.replay(rec.path, speed=math.inf, allow_repeats=True)
    seen = fetch_all(shell, transport, Call(rec.url), Call(rec.url), Call(rec.url))
    for replayed in seen:
        assert_same_view(shell, replayed, rec.seen)


def test_sequence_matching_serves_in_recorded_order_ignoring_bodies_but_checking_urls(
    emulator: Emulator, tmp_path: Path
) -> None:
    shell = SHELL_LIST[2]
    first_url = emulator.url(events=2) + CHAT_PATH
    second_url = emulator.url(events=3) + CHAT_PATH
    path = tmp_path / "two.tape"
    recorded = fetch_all(shell, shell.recording(path), Call(first_url), Call(second_url))
    served_before = len(emulator.requests)

    transport = shell.replay(path, speed=math.inf, match="sequence")
    one, wrong, two, over = fetch_all(
        shell,
        transport,
        Call(first_url, body=OTHER_BODY),  # the body differs: "sequence" does not look at it
        Call(first_url),  # the first was served: the next in order is the second, at another URL
        Call(second_url, body=b"{}"),
        Call(second_url),
    )
    assert one.pieces == recorded[0].pieces and one.error is None
    assert isinstance(wrong.error, TapeMismatch), repr(wrong.error)
    assert "path /x/events=2/v1/chat/completions != /x/events=3/v1/chat/completions" in str(wrong.error)
    assert two.pieces == recorded[1].pieces and two.error is None
    assert isinstance(over.error, TapeMismatch) and "already served" in str(over.error)
    assert len(emulator.requests) == served_before  # nothing reached the network


def test_a_callable_decides_which_exchange_answers(emulator: Emulator, tmp_path: Path) -> None:
    shell = SHELL_LIST[3]
    urls = [emulator.url(events=n) + CHAT_PATH for n in (2, 3)]
    path = tmp_path / "two.tape"
    recorded = fetch_all(shell, shell.recording(path), *(Call(url) for url in urls))
    served_before = len(emulator.requests)
    asked: list[ReplayRequest] = []

    def pick(request: ReplayRequest, exchange: streamtape.Exchange) -> bool:
        asked.append(request)
        wanted = urls[1] if b"bye" in request.body else urls[0]
        return exchange.request.url == wanted

    elsewhere = "http://elsewhere.invalid/anything"  # the callable, not the URL, decides
    transport = shell.replay(path, speed=math.inf, match=pick)
    second, first = fetch_all(shell, transport, Call(elsewhere, body=OTHER_BODY), Call(elsewhere))
    assert second.error is None and second.pieces == recorded[1].pieces
    assert first.error is None and first.pieces == recorded[0].pieces
    assert asked and all(isinstance(r, ReplayRequest) for r in asked)
    assert {(r.method, r.url) for r in asked} == {("POST", elsewhere)}
    assert {r.body for r in asked} == {CHAT_BODY, OTHER_BODY}
    assert len(emulator.requests) == served_before


def test_redacted_query_values_are_ignored_by_matching(emulator: Emulator, tmp_path: Path) -> None:
    shell = SHELL_LIST[0]
    base = emulator.url(events=2) + CHAT_PATH
    path = tmp_path / "key.tape"
    (recorded,) = fetch_all(shell, shell.recording(path), Call(base + "?key=SECRET-1&x=1"))
    assert "SECRET-1" not in streamtape.open_tape(path).exchanges[0].request.url
    served_before = len(emulator.requests)

    transport = shell.replay(path, speed=math.inf, allow_repeats=True)
    same, other_key, other_x = fetch_all(
        shell,
        transport,
        Call(base + "?key=SECRET-1&x=1"),
        Call(base + "?key=ANOTHER-KEY&x=1"),  # a redacted value stands for any value
        Call(base + "?key=SECRET-1&x=2"),  # a value that was not redacted must match
    )
    assert same.pieces == other_key.pieces == recorded.pieces
    assert isinstance(other_x.error, TapeMismatch) and "query key=REDACTED:" in str(other_x.error)
    assert len(emulator.requests) == served_before


def test_a_url_whose_password_was_redacted_still_matches(emulator: Emulator, tmp_path: Path) -> None:
    """The recorder redacts ``user:password@`` in URLs; the replaying client sends the real password."""
    shell = SHELL_LIST[0]
    url = (emulator.url(events=2) + CHAT_PATH).replace("http://", "http://alice:USECRET@")
    path = tmp_path / "userinfo.tape"
    (recorded,) = fetch_all(shell, shell.recording(path), Call(url))
    assert "USECRET" not in streamtape.open_tape(path).exchanges[0].request.url
    served_before = len(emulator.requests)

    (replayed,) = fetch_all(shell, shell.replay(path, speed=math.inf), Call(url))
    assert replayed.error is None, repr(replayed.error)
    assert replayed.pieces == recorded.pieces
    assert len(emulator.requests) == served_before


@SHELLS
def test_a_retried_request_gets_its_own_recorded_attempt(
    shell: Shell, emulator: Emulator, tmp_path: Path
) -> None:
    """The same request twice: the recorded 500 first, then the recorded stream, then nothing left."""
    url = emulator.url(status=500, fail_first=1, events=3) + CHAT_PATH
    path = tmp_path / "retry.tape"
    recorded = fetch_all(shell, shell.recording(path), Call(url), Call(url))
    assert [s.head[0] for s in recorded] == [500, 200]
    served_before = len(emulator.requests)

    failed, retried, extra = fetch_all(
        shell, shell.replay(path, speed=math.inf), Call(url), Call(url), Call(url)
    )
    assert_same_view(shell, failed, recorded[0])
    assert_same_view(shell, retried, recorded[1])
    assert retried.body == b"".join(events(status=500, fail_first=1, events=3))
    assert isinstance(extra.error, TapeMismatch) and "already served" in str(extra.error)
    assert len(emulator.requests) == served_before


def test_replay_settings_are_checked(recordings: Recordings, tmp_path: Path) -> None:
    rec = recordings.get(SHELL_LIST[0], "complete")
    for adapter in (streamtape.httpx, streamtape.httpx2):
        for cls in (adapter.ReplayTransport, adapter.AsyncReplayTransport):
            for bad in ({"speed": 0}, {"speed": -1.0}, {"max_gap": -1}, {"match": "fuzzy"}):
                with pytest.raises(ValueError):
                    cls(rec.path, **bad)
            with pytest.raises(streamtape.TapeError, match="no such file"):
                cls(tmp_path / "missing.tape")


def test_mismatch_message_never_shows_a_live_secret(tmp_path: Path) -> None:
    """A request the tape cannot answer is named in the error, with its secrets fingerprinted, not shown."""
    tape = streamtape.open_tape(VECTORS / "complete.tape")
    transport = streamtape.httpx2.ReplayTransport(tape, speed=math.inf)
    with (
        httpx2.Client(transport=transport) as client,
        pytest.raises(streamtape.TapeMismatch) as info,
    ):
        client.get("http://alice:PSECRET@127.0.0.1:8000/v1/models?key=QSECRET&limit=5")
    message = str(info.value)
    assert "QSECRET" not in message and "PSECRET" not in message
    assert "key=REDACTED:" in message and "limit=5" in message
