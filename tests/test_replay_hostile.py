"""Replays that must end (issue 9): hostile exchanges through the four transport shells and ``plan``.

A tape can hold waits no client would sit through (a connect error after 11 days, an end at 2**64-1 ns) and
response heads no client could receive (an ``http_version`` that is not ASCII, a header outside latin-1).
The reader may reject some of these at open, but a ``Tape`` built in memory still carries them, so the
replay itself must end, and end in the client's own library's error: the phase's timeout error under the
client's timeout (divided by the speed), the same at once past the replay's ``max_wait`` for a client with
no timeout, ``RemoteProtocolError`` for a head that cannot be built. Never a stray ``OverflowError`` or
``UnicodeEncodeError``, never a sleep of the recorded time.

No wall-clock assertions: each test is bounded by the timeout mark, which a replay that slept the recorded
time (or even a minute of it) would blow.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from helpers import CHAT_BODY, assert_library_error, fetch
from shells import SHELL_LIST, SHELLS, Shell

import streamtape
import streamtape.transports.replay as replay_shells
from streamtape import Chunk, End, Exchange, Header, Request, Response, Tape
from streamtape.replay.schedule import DEFAULT_MAX_WAIT, failure_phase, plan
from streamtape.storage.atomic import write_tape

pytestmark = pytest.mark.timeout(30)

URL = "http://replay.invalid/v1/chat/completions"
S = 1_000_000_000  # nanoseconds in a second
DAY = 86_400 * S
U64_MAX = 2**64 - 1
HEADER = Header("streamtape", (1, 1), "streamtape test", 0)
HEAD = Response(1, S // 10, 200, "HTTP/1.1", [("content-type", "text/event-stream")], "OK")
EVENTS = [b"data: one\n\n", b"data: two\n\n"]


def exchange(
    response: Response | None = None, chunk_times: tuple[int, ...] = (), end: End | None = None
) -> Exchange:
    request = Request(1, 0, "POST", URL, [("content-type", "application/json")], CHAT_BODY)
    chunks = [Chunk(1, t, EVENTS[i % len(EVENTS)]) for i, t in enumerate(chunk_times)]
    return Exchange(0, 1, request, response, chunks, end)


def tape(*args: Any, **kwargs: Any) -> Tape:
    return Tape(HEADER, [exchange(*args, **kwargs)])


def failed_before_response(t_ns: int, error_type: str = "ConnectError", message: str = "refused") -> Tape:
    return tape(None, (), End(1, t_ns, "error", error_type, message))


def stream_ending_at(t_ns: int, outcome: str = "complete") -> Tape:
    """A head, two chunks in the first second, then an end (or error) at ``t_ns``."""
    error = "ReadError" if outcome == "error" else None
    return tape(HEAD, (S // 5, S // 2), End(1, t_ns, outcome, error, error and "reset"))  # type: ignore[arg-type]


def timeouts(shell: Shell, **phases: float | None) -> Any:
    """The client's timeouts: the phases given, 5 s for the others."""
    return shell.lib.Timeout(5.0, **phases)


def no_timeout(shell: Shell) -> Any:
    return shell.lib.Timeout(None)


# -- connect timeouts ------------------------------------------------------------------------------------


@SHELLS
def test_connect_error_after_11_days_raises_connect_timeout_after_the_clients_connect_timeout(
    shell: Shell,
) -> None:
    """The issue's 10**15 ns connect error at speed 1: ConnectTimeout after 0.05 s, not 11 days."""
    replayed = fetch(
        shell,
        shell.replay(failed_before_response(10**15), speed=1),
        URL,
        timeout=timeouts(shell, connect=0.05),
    )
    assert_library_error(shell, replayed.error, "ConnectTimeout")
    assert replayed.head is None and replayed.pieces == []
    assert "connect timeout is 0.05s" in str(replayed.error)


@SHELLS
@pytest.mark.parametrize("speed", [100.0, math.inf], ids=["speed-100", "speed-inf"])
def test_recorded_10s_connect_timeout_replayed_under_a_2s_connect_timeout_raises_connect_timeout(
    shell: Shell, speed: float
) -> None:
    """At speed 100 the 2 s timeout fires after 0.02 s; at speed inf at once. Neither waits 10 s."""
    recorded = failed_before_response(10 * S, "ConnectTimeout", "timed out")
    replayed = fetch(shell, shell.replay(recorded, speed=speed), URL, timeout=timeouts(shell, connect=2.0))
    assert_library_error(shell, replayed.error, "ConnectTimeout")
    assert "connect timeout is 2.0s" in str(replayed.error)  # the client's own, not the recording's


@SHELLS
def test_connect_error_within_the_connect_timeout_replays_the_recorded_error(shell: Shell) -> None:
    replayed = fetch(
        shell,
        shell.replay(failed_before_response(S, "ConnectError", "connection refused"), speed=math.inf),
        URL,
        timeout=timeouts(shell, connect=2.0),
    )
    assert_library_error(shell, replayed.error, "ConnectError")
    assert str(replayed.error) == "connection refused"


@SHELLS
def test_recorded_pool_timeout_replayed_under_a_shorter_pool_timeout_raises_pool_timeout(
    shell: Shell,
) -> None:
    replayed = fetch(
        shell,
        shell.replay(failed_before_response(30 * S, "PoolTimeout", "pool"), speed=math.inf),
        URL,
        timeout=timeouts(shell, pool=1.0),
    )
    assert_library_error(shell, replayed.error, "PoolTimeout")
    assert "pool timeout is 1.0s" in str(replayed.error)


def test_plan_puts_the_connect_timeout_at_the_clients_timeout_divided_by_the_speed() -> None:
    (step,) = plan(
        failed_before_response(10 * S, "ConnectTimeout").exchanges[0], speed=4, connect_timeout=2.0
    )
    assert (step.kind, step.error_type, step.at) == ("error", "ConnectTimeout", 0.5)
    (step,) = plan(failed_before_response(10 * S).exchanges[0], speed=math.inf, connect_timeout=2.0)
    assert (step.error_type, step.at) == ("ConnectTimeout", 0.0)


@pytest.mark.parametrize(
    ("recorded", "phase", "raised"),
    [
        ("ConnectError", "connect", "ConnectTimeout"),
        ("ConnectTimeout", "connect", "ConnectTimeout"),
        ("ProxyError", "connect", "ConnectTimeout"),
        ("PoolTimeout", "pool", "PoolTimeout"),
        ("WriteError", "write", "WriteTimeout"),
        ("WriteTimeout", "write", "WriteTimeout"),
        ("ReadError", "read", "ReadTimeout"),
        ("ReadTimeout", "read", "ReadTimeout"),
        ("RemoteProtocolError", "read", "ReadTimeout"),
    ],
)
def test_failure_before_any_response_is_bounded_by_the_timeout_of_the_phase_it_names(
    recorded: str, phase: str, raised: str
) -> None:
    assert failure_phase(recorded) == phase
    timeout = {f"{phase}_timeout": 1.0}
    (step,) = plan(failed_before_response(60 * S, recorded).exchanges[0], speed=2, **timeout)  # type: ignore[arg-type]
    assert (step.kind, step.error_type, step.at) == ("error", raised, 0.5)
    others = {f"{p}_timeout": 1.0 for p in ("pool", "connect", "write", "read") if p != phase}
    (step,) = plan(failed_before_response(60 * S, recorded).exchanges[0], speed=2, **others)  # type: ignore[arg-type]
    assert (step.error_type, step.at) == (recorded, 30.0)  # the other phases' timeouts do not apply


# -- no stray exceptions: times too large to sleep -----------------------------------------------------


@SHELLS
def test_connect_error_at_2_64_minus_1_ns_with_no_client_timeout_raises_connect_timeout_not_overflow_error(
    shell: Shell,
) -> None:
    replayed = fetch(
        shell, shell.replay(failed_before_response(U64_MAX), speed=1), URL, timeout=no_timeout(shell)
    )
    assert_library_error(shell, replayed.error, "ConnectTimeout")
    assert "max_wait" in str(replayed.error)


@SHELLS
def test_stream_ending_at_2_64_minus_1_ns_with_no_client_timeout_raises_read_timeout_after_its_chunks(
    shell: Shell,
) -> None:
    replayed = fetch(shell, shell.replay(stream_ending_at(U64_MAX), speed=1), URL, timeout=no_timeout(shell))
    assert_library_error(shell, replayed.error, "ReadTimeout")
    assert replayed.head is not None and replayed.head[0] == 200
    assert replayed.pieces == EVENTS
    assert "max_wait" in str(replayed.error)


@SHELLS
def test_stream_ending_at_2_64_minus_1_ns_with_no_cap_raises_the_clients_read_timeout_not_overflow_error(
    shell: Shell,
) -> None:
    replayed = fetch(
        shell,
        shell.replay(stream_ending_at(U64_MAX, "error"), speed=1, max_wait=None),
        URL,
        timeout=timeouts(shell, read=0.5),
    )
    assert_library_error(shell, replayed.error, "ReadTimeout")
    assert replayed.pieces == EVENTS


@SHELLS
def test_stream_ending_at_2_64_minus_1_ns_at_speed_inf_with_no_cap_replays_to_the_end(shell: Shell) -> None:
    replayed = fetch(
        shell,
        shell.replay(stream_ending_at(U64_MAX), speed=math.inf, max_wait=None),
        URL,
        timeout=no_timeout(shell),
    )
    assert replayed.error is None
    assert replayed.pieces == EVENTS


@pytest.mark.parametrize("speed", [1.0, math.inf])
@pytest.mark.parametrize("max_wait", [DEFAULT_MAX_WAIT, None])
def test_plan_never_raises_on_a_time_too_large_for_a_float(speed: float, max_wait: float | None) -> None:
    """An in-memory ``Tape`` is not bounded by MessagePack: an end at 10**400 ns still plans."""
    steps = plan(stream_ending_at(10**400).exchanges[0], speed=speed, max_wait=max_wait)
    # At speed inf the chunks come as one instant run: every wait before them passed.
    assert [s.kind for s in steps[:3]][: 2 if math.isinf(speed) else 3] == (
        ["head", "chunks"] if math.isinf(speed) else ["head", "chunk", "chunk"]
    )
    if max_wait is None:
        assert steps[-1].kind == "end"
        assert steps[-1].at == (0.0 if math.isinf(speed) else math.inf)  # the shells sleep it in slices
    else:
        assert (steps[-1].kind, steps[-1].error_type) == ("error", "ReadTimeout")
        assert "longer than a float can hold" in steps[-1].message


class _Slept(Exception):
    """Raised by a stand-in sleep: the shell asked to sleep, and for how long."""


@pytest.mark.parametrize("shell", [s for s in SHELL_LIST if s.lib.__name__ == "httpx2"], ids=lambda s: s.id)
def test_shells_sleep_a_deadline_too_far_for_the_platform_in_slices_instead_of_raising_overflow_error(
    shell: Shell, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``max_wait=None`` and no timeout: the replay waits (as asked) without ``OverflowError``."""
    asked: list[float] = []

    def sleep(seconds: float) -> None:
        asked.append(seconds)
        raise _Slept

    async def async_sleep(seconds: float) -> None:
        sleep(seconds)

    monkeypatch.setattr(replay_shells.time, "sleep", sleep)
    monkeypatch.setattr(replay_shells.anyio, "sleep", async_sleep)
    transport = shell.replay(failed_before_response(U64_MAX), speed=1, max_wait=None)
    with pytest.raises(_Slept):
        fetch(shell, transport, URL, timeout=no_timeout(shell))
    (seconds,) = asked
    assert 0 < seconds <= 3600


# -- no stray exceptions: heads no client could receive ----------------------------------------------


def _head_with(**changes: Any) -> Tape:
    fields = {
        "x": 1,
        "t_ns": HEAD.t_ns,
        "status_code": 200,
        "http_version": "HTTP/1.1",
        "headers": list(HEAD.headers),
        "reason": "OK",
        **changes,
    }
    return tape(Response(**fields), (S // 5,), End(1, S // 2, "complete"))


@SHELLS
def test_non_ascii_http_version_raises_remote_protocol_error_not_unicode_encode_error(shell: Shell) -> None:
    replayed = fetch(shell, shell.replay(_head_with(http_version="HTTP/1.1\u00e9"), speed=math.inf), URL)
    assert_library_error(shell, replayed.error, "RemoteProtocolError")
    assert replayed.head is None
    assert "http_version 'HTTP/1.1\u00e9' is not ASCII" in str(replayed.error)


@SHELLS
def test_header_name_outside_latin_1_raises_remote_protocol_error_not_unicode_encode_error(
    shell: Shell,
) -> None:
    headers = [("content-type", "text/event-stream"), ("x-\u2603", "snow")]
    replayed = fetch(shell, shell.replay(_head_with(headers=headers), speed=math.inf), URL)
    assert_library_error(shell, replayed.error, "RemoteProtocolError")
    assert "header #1 name 'x-\u2603' is not latin-1" in str(replayed.error)


@SHELLS
@pytest.mark.parametrize(
    "changes",
    [
        {"headers": [("x-emoji", "\U0001f600")]},
        {"reason": "\u041e\u041a"},
        {"headers": [("only-a-name",)]},
        {"http_version": b"HTTP/1.1"},
    ],
    ids=["header-value", "reason", "not-a-pair", "bytes-version"],
)
def test_other_heads_no_client_could_receive_raise_remote_protocol_error(
    shell: Shell, changes: dict[str, Any]
) -> None:
    replayed = fetch(shell, shell.replay(_head_with(**changes), speed=math.inf), URL)
    assert_library_error(shell, replayed.error, "RemoteProtocolError")
    assert "response head no client could receive" in str(replayed.error)


@SHELLS
@pytest.mark.parametrize(
    "hostile",
    [
        pytest.param(stream_ending_at(U64_MAX), id="end-at-2-64-minus-1"),
        pytest.param(_head_with(http_version="HTTP/\u00b2"), id="non-ascii-http-version"),
        pytest.param(_head_with(headers=[("\u0436", "v")]), id="header-name-outside-latin-1"),
    ],
)
def test_hostile_tape_file_is_a_tape_error_at_open_or_the_clients_error_at_replay(
    shell: Shell, tmp_path: Path, hostile: Tape
) -> None:
    """Saved to a file: the reader may refuse it (a ``TapeError``), or the replay ends in a library error."""
    path = tmp_path / "hostile.tape"
    write_tape(path, hostile.records())
    try:
        transport = shell.replay(path, speed=1)
    except streamtape.TapeError as exc:
        assert str(path) in str(exc)
        return
    replayed = fetch(shell, transport, URL, timeout=no_timeout(shell))
    assert replayed.error is not None
    assert isinstance(replayed.error, shell.lib.TransportError), repr(replayed.error)
    assert str(path) in str(replayed.error)  # the tape is at fault, and named


# -- a cap for a client with no timeout --------------------------------------------------------------


@SHELLS
def test_two_day_stall_with_no_client_timeout_raises_read_timeout_at_once_instead_of_sleeping(
    shell: Shell,
) -> None:
    stalled = tape(HEAD, (S // 5, 2 * DAY), End(1, 2 * DAY + S, "complete"))
    replayed = fetch(shell, shell.replay(stalled, speed=1), URL, timeout=no_timeout(shell))
    assert_library_error(shell, replayed.error, "ReadTimeout")
    assert replayed.pieces == EVENTS[:1]  # what came before the stall
    message = str(replayed.error)
    assert "max_wait of 86400.0s" in message and "the client has no read timeout" in message


@SHELLS
def test_max_wait_is_configurable_on_the_replay_transport(shell: Shell) -> None:
    ten_s = tape(HEAD, (S // 5, 10 * S), End(1, 11 * S, "complete"))
    capped = fetch(shell, shell.replay(ten_s, speed=1, max_wait=5), URL, timeout=no_timeout(shell))
    assert_library_error(shell, capped.error, "ReadTimeout")
    assert "max_wait of 5s" in str(capped.error)
    assert capped.pieces == EVENTS[:1]
    allowed = fetch(shell, shell.replay(ten_s, speed=math.inf, max_wait=20), URL, timeout=no_timeout(shell))
    assert allowed.error is None and allowed.pieces == EVENTS


@SHELLS
def test_connect_error_past_max_wait_with_no_client_timeout_raises_connect_timeout(shell: Shell) -> None:
    replayed = fetch(
        shell,
        shell.replay(failed_before_response(60 * S), speed=1, max_wait=30),
        URL,
        timeout=no_timeout(shell),
    )
    assert_library_error(shell, replayed.error, "ConnectTimeout")
    assert "max_wait of 30s" in str(replayed.error)


@SHELLS
def test_max_gap_under_max_wait_replays_an_absurd_stall_to_its_end(shell: Shell) -> None:
    """``max_gap`` shortens every wait first: a two-day stall capped at 10 ms is no longer absurd."""
    stalled = tape(HEAD, (S // 5, 2 * DAY), End(1, 2 * DAY + S, "complete"))
    replayed = fetch(shell, shell.replay(stalled, speed=1, max_gap=0.01), URL, timeout=no_timeout(shell))
    assert replayed.error is None
    assert replayed.pieces == EVENTS


def test_a_shorter_client_timeout_fires_before_max_wait_and_at_its_own_time() -> None:
    stalled = tape(HEAD, (S // 5, 2 * DAY), End(1, 2 * DAY + S, "complete")).exchanges[0]
    *_, step = plan(stalled, speed=2, read_timeout=60.0)
    assert (step.error_type, step.at) == ("ReadTimeout", 0.1 + 30.0)
    assert "read timeout is 60.0s" in step.message and "max_wait" not in step.message
    *_, capped = plan(stalled, speed=2)
    assert (capped.error_type, capped.at) == ("ReadTimeout", 0.1)  # at once, after the first chunk


def test_max_wait_outcome_does_not_depend_on_speed() -> None:
    stalled = tape(HEAD, (S // 5, 2 * DAY), End(1, 2 * DAY + S, "complete")).exchanges[0]
    for speed in (0.5, 1.0, 1000.0, math.inf):
        steps = plan(stalled, speed=speed)
        assert [(s.kind, s.error_type) for s in steps] == [
            ("head", ""),
            ("chunk", ""),
            ("error", "ReadTimeout"),
        ]


@SHELLS
@pytest.mark.parametrize("max_wait", [-1.0, math.nan, "1"])
def test_max_wait_must_be_none_or_a_number_of_seconds(shell: Shell, max_wait: Any) -> None:
    with pytest.raises(ValueError, match="max_wait"):
        shell.replay(stream_ending_at(S), max_wait=max_wait)
