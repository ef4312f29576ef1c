"""Replaying tapes through the four transport shells (httpx / httpx2, sync / async).

Every tape here is recorded for real, through a real client and streamtape's recording transport, from the
SSE emulator on 127.0.0.1; the emulator is then stopped (or its request log checked), and the tape is
replayed through the same client code. The tests compare what the client saw both times: the response
head, every raw piece with its boundaries, and the exception (class, library, message) with the bytes
before it. Timing tests assert ordering and generous thresholds only: these machines are noisy.
"""

from __future__ import annotations

import asyncio
import json
import math
import socket
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import msgspec
import pytest
from shells import ASYNC_SHELLS, SHELL_LIST, SHELLS, Shell

import streamtape
import streamtape.httpx
import streamtape.httpx2
from streamtape import ReplayRequest, TapeMismatch
from streamtape.emulator import Emulator, Scenario, openai_chat
from streamtape.format.codec import compress_frame, encode_record, new_compressor

pytestmark = pytest.mark.timeout(30)

CHAT_PATH = "/v1/chat/completions"
CHAT: dict[str, Any] = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}], "stream": True}
CHAT_BODY = json.dumps(CHAT).encode()
OTHER_BODY = json.dumps({**CHAT, "messages": [{"role": "user", "content": "bye"}]}).encode()
VECTORS = Path(streamtape.__file__).resolve().parents[1] / "spec" / "vectors"


# -- the four shells --------------------------------------------------------------------------------


# -- what a client sees -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One request: POST ``body`` to ``url`` with ``client.stream`` and read the body.

    ``read``: "raw" (``iter_raw``: the transport's pieces), "bytes" (content-decoded) or "text".
    ``stop``: after the first piece, "close" the response while its iterator is alive, or "break".
    ``pause``: seconds the client sleeps after the first piece (a slow reader).
    """

    url: str
    body: bytes = CHAT_BODY
    read: str = "raw"
    stop: str | None = None
    pause: float = 0.0


@dataclass
class Seen:
    """What the client saw: the response head, each piece and when it came, the exception it caught."""

    head: tuple[int, list[tuple[bytes, bytes]], str, str] | None = None
    pieces: list[Any] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)  # seconds after the request was sent
    error: BaseException | None = None
    elapsed: float = 0.0

    @property
    def body(self) -> bytes:
        return b"".join(self.pieces)


def _head(response: Any) -> tuple[int, list[tuple[bytes, bytes]], str, str]:
    return (response.status_code, list(response.headers.raw), response.http_version, response.reason_phrase)


def _iterator(response: Any, read: str, is_async: bool) -> Any:
    name = {"raw": "iter_raw", "bytes": "iter_bytes", "text": "iter_text"}[read]
    return getattr(response, ("a" + name) if is_async else name)()


def fetch_all(shell: Shell, transport: Any, *calls: Call, timeout: Any = None) -> list[Seen]:
    """Make ``calls`` one after the other on one client whose transport is ``transport``."""
    lib = shell.lib
    timeout = timeout if timeout is not None else lib.Timeout(5.0)
    caught = (lib.HTTPError, streamtape.TapeError)
    out: list[Seen] = []

    def kwargs(call: Call) -> dict[str, Any]:
        return {"content": call.body, "headers": {"content-type": "application/json"}}

    if shell.is_async:

        async def one(client: Any, call: Call) -> Seen:
            seen = Seen()
            t0 = time.perf_counter()
            try:
                async with client.stream("POST", call.url, **kwargs(call)) as response:
                    seen.head = _head(response)
                    pieces = _iterator(response, call.read, True)
                    async for piece in pieces:
                        seen.pieces.append(piece)
                        seen.arrivals.append(time.perf_counter() - t0)
                        if call.pause and len(seen.pieces) == 1:
                            await asyncio.sleep(call.pause)
                        if call.stop == "close":
                            await response.aclose()
                            await pieces.aclose()
                            break
                        if call.stop == "break":
                            break
            except caught as exc:
                seen.error = exc
            seen.elapsed = time.perf_counter() - t0
            return seen

        async def run() -> None:
            async with lib.AsyncClient(transport=transport, timeout=timeout) as client:
                for call in calls:
                    out.append(await one(client, call))

        asyncio.run(run())
        return out

    with lib.Client(transport=transport, timeout=timeout) as client:
        for call in calls:
            seen = Seen()
            t0 = time.perf_counter()
            try:
                with client.stream("POST", call.url, **kwargs(call)) as response:
                    seen.head = _head(response)
                    pieces = _iterator(response, call.read, False)
                    for piece in pieces:
                        seen.pieces.append(piece)
                        seen.arrivals.append(time.perf_counter() - t0)
                        if call.pause and len(seen.pieces) == 1:
                            time.sleep(call.pause)
                        if call.stop == "close":
                            response.close()
                            pieces.close()
                            break
                        if call.stop == "break":
                            break
            except caught as exc:
                seen.error = exc
            seen.elapsed = time.perf_counter() - t0
            out.append(seen)
    return out


def fetch(shell: Shell, transport: Any, url: str, *, timeout: Any = None, **call: Any) -> Seen:
    return fetch_all(shell, transport, Call(url, **call), timeout=timeout)[0]


def read_timeout(shell: Shell, seconds: float | None) -> Any:
    return shell.lib.Timeout(5.0) if seconds is None else shell.lib.Timeout(5.0, read=seconds)


def events(**knobs: Any) -> list[bytes]:
    """The SSE events the emulator sends for ``CHAT`` under these knobs."""
    return openai_chat.stream_events(Scenario(**knobs), CHAT)


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def assert_library_error(shell: Shell, exc: BaseException | None, name: str) -> None:
    """``exc`` is the client's own library's ``name`` exception (httpx's for httpx, httpx2's for httpx2)."""
    assert exc is not None, f"expected {shell.lib.__name__}.{name}, the client saw no error"
    assert type(exc) is getattr(shell.lib, name), repr(exc)
    assert type(exc).__module__.partition(".")[0] == shell.lib.__name__


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


# -- recordings --------------------------------------------------------------------------------------


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
    """Each (shell, case) recorded once per module, on first use, and shared by the tests that replay it."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._done: dict[tuple[str, str], Recorded] = {}

    def get(self, shell: Shell, case: Case | str) -> Recorded:
        case = CASE_BY_NAME[case] if isinstance(case, str) else case
        key = (shell.id, case.name)
        if key not in self._done:
            self._done[key] = record(shell, self.directory / f"{shell.id}-{case.name}.tape", case)
        return self._done[key]


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> Recordings:
    return Recordings(tmp_path_factory.mktemp("recordings"))


PACED = {"events": 12, "pace_ms": 30}  # about 0.35 s from the request to the end of the body
STALL_S = 1.0
STALLED = {"events": 4, "stall_at": 2, "stall_s": STALL_S}  # two events, a 1 s stall, two more


def _record_module_tape(
    tmp_path_factory: pytest.TempPathFactory, name: str, knobs: dict[str, Any]
) -> Recorded:
    # redact=False: module fixtures run before the per-test redaction key is set, and nothing here is secret.
    path = tmp_path_factory.mktemp(name) / f"{name}.tape"
    return record(SHELL_LIST[2], path, Case(name, knobs), redact=False)


@pytest.fixture(scope="module")
def paced(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    return _record_module_tape(tmp_path_factory, "paced", PACED)


@pytest.fixture(scope="module")
def stalled(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    return _record_module_tape(tmp_path_factory, "stalled", STALLED)


def duration(exchange: streamtape.Exchange) -> float:
    """Seconds from the request to the recorded end."""
    return exchange.end.t_ns / 1e9


# -- faithful replay ---------------------------------------------------------------------------------


@SHELLS
@ALL_CASES
def test_replay_shows_the_client_what_it_saw_when_recording(
    shell: Shell, case: Case, recordings: Recordings
) -> None:
    """Same head, same pieces with the same boundaries, the same exception after the same bytes.

    The emulator that served the recording is stopped: a replay that touched the network would fail.
    """
    rec = recordings.get(shell, case)
    replayed = fetch(
        shell, shell.replay(rec.path, speed=math.inf), rec.url, timeout=read_timeout(shell, case.read_timeout)
    )
    # Under the recording's own read timeout a recorded timeout is raised by the replay's virtual clock, with
    # its own words; every other recorded exception comes back with the recorded message.
    assert_same_view(shell, replayed, rec.seen, same_message=case.name != "read-timeout")
    assert replayed.pieces == [c.data for c in rec.exchange.chunks]
    if case.name == "refused":
        assert replayed.head is None  # no response: raised at request time
    else:
        assert replayed.head is not None and replayed.head[0] == 200
    if case.name in ("reset", "cut", "read-timeout"):
        assert replayed.pieces, "the bytes before the error must come first"


@SHELLS
def test_recorded_read_timeout_replayed_under_a_longer_timeout_raises_the_recorded_error(
    shell: Shell, recordings: Recordings
) -> None:
    rec = recordings.get(shell, "read-timeout")
    replayed = fetch(shell, shell.replay(rec.path, speed=math.inf), rec.url, timeout=read_timeout(shell, 5.0))
    assert_same_view(shell, replayed, rec.seen)  # message too: the tape's own ReadTimeout
    assert rec.exchange.end.error_type == "ReadTimeout"
    assert replayed.body == b"".join(events(stall_at=2, stall_s=0.3)[:2])


@SHELLS
def test_connection_refused_replays_as_connect_error_at_request_time(
    shell: Shell, recordings: Recordings
) -> None:
    rec = recordings.get(shell, "refused")
    assert rec.exchange.response is None
    replayed = fetch(shell, shell.replay(rec.path, speed=math.inf), rec.url)
    assert replayed.head is None and replayed.pieces == []
    assert_library_error(shell, replayed.error, "ConnectError")
    assert str(replayed.error) == str(rec.seen.error) == rec.exchange.end.message


@SHELLS
def test_gzip_replay_hands_over_the_compressed_bytes_and_the_client_decodes_them(
    shell: Shell, recordings: Recordings
) -> None:
    rec = recordings.get(shell, "gzip")
    plain = b"".join(events(gzip=True, events=5))
    raw = fetch(shell, shell.replay(rec.path, speed=math.inf), rec.url)
    assert raw.pieces == rec.seen.pieces
    assert raw.body != plain and zlib.decompress(raw.body, wbits=31) == plain
    assert (b"Content-Encoding", b"gzip") in raw.head[1]
    decoded = fetch(shell, shell.replay(rec.path, speed=math.inf), rec.url, read="bytes")
    assert decoded.error is None
    assert b"".join(decoded.pieces) == plain


@SHELLS
def test_split_utf8_replays_the_split_and_the_client_decodes_the_same_text(
    shell: Shell, recordings: Recordings
) -> None:
    rec = recordings.get(shell, "split-utf8")
    raw = fetch(shell, shell.replay(rec.path, speed=math.inf), rec.url)
    assert raw.pieces == rec.seen.pieces

    def decodes(piece: bytes) -> bool:
        try:
            piece.decode("utf-8")
        except UnicodeDecodeError:
            return False
        return True

    assert not all(decodes(p) for p in raw.pieces), "some piece must end inside a character"
    text = fetch(shell, shell.replay(rec.path, speed=math.inf), rec.url, read="text")
    assert text.error is None
    assert "".join(text.pieces) == b"".join(events(split_utf8=True, events=6)).decode("utf-8")


@SHELLS
def test_replay_keeps_header_order_duplicates_reason_and_http_version(
    shell: Shell, recordings: Recordings, tmp_path: Path
) -> None:
    """The emulator sends no duplicate headers, so the recorded head is edited into one that has them."""
    rec = recordings.get(shell, "complete")
    tape = streamtape.open_tape(rec.path)
    (exchange,) = tape.exchanges
    assert exchange.response is not None
    headers = [
        ("X-Trace", "one"),
        *exchange.response.headers,
        ("x-trace", "two"),
        ("Set-Cookie", "a=1"),
        ("Set-Cookie", "b=2"),
    ]
    tape.exchanges = [
        exchange.replace(
            response=msgspec.structs.replace(
                exchange.response, headers=headers, http_version="HTTP/1.0", reason="Fine"
            )
        )
    ]
    tape.save(tmp_path / "edited.tape")

    replayed = fetch(shell, shell.replay(tmp_path / "edited.tape", speed=math.inf), rec.url)
    assert replayed.error is None
    status, raw, version, reason = replayed.head
    assert status == 200 and version == "HTTP/1.0" and reason == "Fine"
    assert raw == [(n.encode("latin-1"), v.encode("latin-1")) for n, v in headers]
    assert replayed.pieces == rec.seen.pieces


def test_replay_accepts_a_tape_object_as_well_as_a_path(recordings: Recordings) -> None:
    shell = SHELL_LIST[0]
    rec = recordings.get(shell, "complete")
    replayed = fetch(shell, shell.replay(streamtape.open_tape(rec.path), speed=math.inf), rec.url)
    assert_same_view(shell, replayed, rec.seen)


# -- timeouts in virtual time -----------------------------------------------------------------------


def _before_stall(rec: Recorded) -> list[bytes]:
    return [c.data for c in rec.exchange.chunks if c.t_ns < STALL_S / 2 * 1e9]


@SHELLS
def test_stall_longer_than_the_read_timeout_raises_read_timeout_without_waiting_for_it(
    shell: Shell, stalled: Recorded
) -> None:
    """A 1 s recorded stall under a 0.1 s read timeout, at speed=inf: ReadTimeout at once, after the bytes."""
    before = _before_stall(stalled)
    assert before and b"".join(before) == b"".join(events(**STALLED)[:2])
    replayed = fetch(
        shell, shell.replay(stalled.path, speed=math.inf), stalled.url, timeout=read_timeout(shell, 0.1)
    )
    assert_library_error(shell, replayed.error, "ReadTimeout")
    assert replayed.head is not None and replayed.head[0] == 200
    assert replayed.pieces == before
    assert replayed.elapsed < STALL_S / 2  # nowhere near the stall, nor even a generous timeout's worth


@SHELLS
def test_stall_shorter_than_the_read_timeout_never_raises(shell: Shell, stalled: Recorded) -> None:
    replayed = fetch(
        shell, shell.replay(stalled.path, speed=math.inf), stalled.url, timeout=read_timeout(shell, 5.0)
    )
    assert replayed.error is None
    assert replayed.pieces == stalled.seen.pieces
    assert replayed.body == b"".join(events(**STALLED))


@SHELLS
def test_read_timeout_fires_after_the_timeout_divided_by_the_speed(shell: Shell, stalled: Recorded) -> None:
    """At speed=2 a 0.2 s read timeout fires after ~0.1 s: not at once, and long before the stall's 0.5 s."""
    replayed = fetch(
        shell, shell.replay(stalled.path, speed=2), stalled.url, timeout=read_timeout(shell, 0.2)
    )
    assert_library_error(shell, replayed.error, "ReadTimeout")
    assert replayed.pieces == _before_stall(stalled)
    assert 0.09 <= replayed.elapsed < 0.9 * STALL_S / 2


# -- timing ------------------------------------------------------------------------------------------


@SHELLS
def test_speed_1_replay_takes_about_the_recorded_time(shell: Shell, paced: Recorded) -> None:
    total = duration(paced.exchange)
    assert total > 0.25
    replayed = fetch(shell, shell.replay(paced.path, speed=1), paced.url)
    assert replayed.error is None and replayed.pieces == paced.seen.pieces
    assert replayed.elapsed >= 0.8 * total
    # Never early: each chunk arrives no sooner than its recorded time.
    for arrival, chunk in zip(replayed.arrivals, paced.exchange.chunks, strict=True):
        assert arrival >= 0.95 * chunk.t_ns / 1e9 - 0.001


@SHELLS
def test_speed_10_replay_takes_about_a_tenth_of_the_recorded_time(shell: Shell, paced: Recorded) -> None:
    total = duration(paced.exchange)
    replayed = fetch(shell, shell.replay(paced.path, speed=10), paced.url)
    assert replayed.error is None and replayed.pieces == paced.seen.pieces
    assert 0.8 * total / 10 <= replayed.elapsed < 0.5 * total
    for arrival, chunk in zip(replayed.arrivals, paced.exchange.chunks, strict=True):
        assert arrival >= 0.95 * chunk.t_ns / 1e10 - 0.001


@SHELLS
def test_speed_inf_replays_without_waiting(shell: Shell, paced: Recorded) -> None:
    replayed = fetch(shell, shell.replay(paced.path, speed=math.inf), paced.url)
    assert replayed.error is None and replayed.pieces == paced.seen.pieces
    assert replayed.elapsed < 0.5 * duration(paced.exchange)


@SHELLS
def test_max_gap_caps_a_long_stall(shell: Shell, stalled: Recorded) -> None:
    """A 1 s stall replayed at speed 1 with max_gap=0.05 s: the whole body, in well under a second."""
    assert duration(stalled.exchange) >= STALL_S
    replayed = fetch(shell, shell.replay(stalled.path, speed=1, max_gap=0.05), stalled.url)
    assert replayed.error is None
    assert replayed.pieces == stalled.seen.pieces
    assert replayed.elapsed < STALL_S / 2


@SHELLS
def test_a_slow_reader_does_not_push_later_chunks_back(shell: Shell, paced: Recorded) -> None:
    """Deadlines count from the request: after a 0.3 s pause the chunks already due come at once.

    With gaps counted from each delivery instead, the replay would take the pause plus the whole tape.
    """
    total = duration(paced.exchange)
    pause = 0.3
    replayed = fetch(shell, shell.replay(paced.path, speed=1), paced.url, pause=pause)
    assert replayed.error is None and replayed.pieces == paced.seen.pieces
    assert replayed.elapsed >= max(total, pause) * 0.8
    assert replayed.elapsed < total + pause / 2


@ASYNC_SHELLS
def test_async_replay_does_not_block_the_event_loop(shell: Shell, paced: Recorded) -> None:
    """A ticker task sleeping 5 ms at a time keeps ticking between the chunks of a paced replay.

    A replay that blocked the loop while it waited for each 30 ms gap would let it tick about once per chunk.
    """
    ticks: list[float] = []
    seen: list[Seen] = []

    async def ticker(done: asyncio.Event) -> None:
        while not done.is_set():
            ticks.append(time.perf_counter())
            await asyncio.sleep(0.005)

    async def replay(done: asyncio.Event) -> None:
        try:
            async with shell.lib.AsyncClient(
                transport=shell.replay(paced.path, speed=1), timeout=5
            ) as client:
                s = Seen()
                t0 = time.perf_counter()
                async with client.stream("POST", paced.url, content=CHAT_BODY) as response:
                    async for piece in response.aiter_raw():
                        s.pieces.append(piece)
                        s.arrivals.append(time.perf_counter())
                s.elapsed = time.perf_counter() - t0
                seen.append(s)
        finally:
            done.set()

    async def main() -> None:
        done = asyncio.Event()
        await asyncio.gather(ticker(done), replay(done))

    asyncio.run(main())
    (s,) = seen
    assert s.pieces == paced.seen.pieces
    assert s.elapsed >= 0.8 * duration(paced.exchange)
    during = [t for t in ticks if s.arrivals[0] < t < s.arrivals[-1]]
    assert len(during) >= 2 * len(s.pieces), f"{len(during)} ticks during {len(s.pieces)} paced chunks"


@pytest.fixture(scope="module")
def three_streams(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, list[bytes]]]:
    """One tape of three distinct paced streams (3, 5 and 7 events, 30 ms apart), recorded one by one."""
    path = tmp_path_factory.mktemp("three") / "three.tape"
    shell = SHELL_LIST[2]
    with Emulator() as emu:
        urls = [emu.url(events=n, pace_ms=30, seed=n) + CHAT_PATH for n in (3, 5, 7)]
        seen = fetch_all(shell, shell.recording(path, redact=False), *(Call(url) for url in urls))
    assert emu.errors == []
    assert all(s.error is None for s in seen)
    return path, {url: s.pieces for url, s in zip(urls, seen, strict=True)}


@ASYNC_SHELLS
def test_concurrent_async_requests_each_get_their_own_exchange_and_schedule(
    shell: Shell, three_streams: tuple[Path, dict[str, list[bytes]]]
) -> None:
    """Three requests on one transport, started 0, 40 and 80 ms apart, in reverse recorded order.

    Each gets its own exchange (not the next in arrival order), paced from its own start (no chunk comes
    sooner after its request than recorded), and the three run side by side (not one after the other).
    """
    path, expected = three_streams
    tape = streamtape.open_tape(path)
    times = {e.request.url: [c.t_ns / 1e9 for c in e.chunks] for e in tape.exchanges}
    durations = [duration(e) for e in tape.exchanges]

    async def one(client: Any, url: str, delay: float) -> tuple[list[bytes], list[float]]:
        await asyncio.sleep(delay)
        pieces, arrivals = [], []
        t0 = time.perf_counter()
        async with client.stream("POST", url, content=CHAT_BODY) as response:
            async for piece in response.aiter_raw():
                pieces.append(piece)
                arrivals.append(time.perf_counter() - t0)
        return pieces, arrivals

    urls = list(reversed(expected))

    async def run() -> list[tuple[list[bytes], list[float]]]:
        async with shell.lib.AsyncClient(transport=shell.replay(path, speed=1), timeout=5) as client:
            return await asyncio.gather(*(one(client, url, 0.04 * i) for i, url in enumerate(urls)))

    t0 = time.perf_counter()
    received = asyncio.run(run())
    elapsed = time.perf_counter() - t0
    for url, (pieces, arrivals) in zip(urls, received, strict=True):
        assert pieces == expected[url]
        for arrival, t in zip(arrivals, times[url], strict=True):
            assert arrival >= 0.95 * t - 0.001
    assert elapsed >= 0.8 * max(durations)
    assert elapsed < 0.85 * sum(durations), "the three schedules ran one after the other"


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
    assert f"url {first_url} != {second_url}" in str(wrong.error)
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
    assert isinstance(other_x.error, TapeMismatch) and "url" in str(other_x.error)
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


# -- incomplete tapes --------------------------------------------------------------------------------


@SHELLS
def test_spec_vector_cut_short_replays_what_it_holds_then_raises_remote_protocol_error(shell: Shell) -> None:
    tape = streamtape.open_tape(VECTORS / "cut.tape")
    assert tape.incomplete
    (exchange,) = tape.exchanges
    assert exchange.end.outcome == "incomplete"
    replayed = fetch(
        shell,
        shell.replay(VECTORS / "cut.tape", speed=math.inf),
        exchange.request.url,
        body=exchange.request.body,
    )
    assert replayed.head is not None and replayed.head[0] == exchange.response.status_code
    assert replayed.pieces == [c.data for c in exchange.chunks]
    assert_library_error(shell, replayed.error, "RemoteProtocolError")


def _frames(path: Path, frames: list[list[Any]]) -> None:
    compressor = new_compressor()
    out = bytearray()
    for frame in frames:
        buf = bytearray()
        for record_ in frame:
            encode_record(record_, buf)
        out += compress_frame(compressor, buf)
    path.write_bytes(bytes(out))


@SHELLS
def test_recording_whose_last_frame_was_cut_replays_its_chunks_then_raises_remote_protocol_error(
    shell: Shell, paced: Recorded, tmp_path: Path
) -> None:
    """A real recording rewritten as two frames (as a writer flushes mid-stream), the second cut in half."""
    tape = streamtape.open_tape(paced.path)
    (exchange,) = tape.exchanges
    kept = 4
    first = [tape.header, exchange.request, exchange.response, *exchange.chunks[:kept]]
    rest = [*exchange.chunks[kept:], exchange.end]
    whole, head = tmp_path / "whole.tape", tmp_path / "head.tape"
    _frames(whole, [first, rest])
    _frames(head, [first])
    cut = tmp_path / "cut.tape"
    data, keep = whole.read_bytes(), head.stat().st_size
    cut.write_bytes(data[: keep + (len(data) - keep) // 2])

    reopened = streamtape.open_tape(cut)
    assert reopened.incomplete
    assert reopened.exchanges[0].end.outcome == "incomplete"
    assert len(reopened.exchanges[0].chunks) == kept
    replayed = fetch(shell, shell.replay(cut, speed=math.inf), paced.url)
    assert replayed.pieces == paced.seen.pieces[:kept]
    assert_library_error(shell, replayed.error, "RemoteProtocolError")


@SHELLS
def test_tape_object_whose_exchange_has_no_end_replays_then_raises_remote_protocol_error(
    shell: Shell, recordings: Recordings
) -> None:
    rec = recordings.get(shell, "complete")
    tape = streamtape.open_tape(rec.path)
    (exchange,) = tape.exchanges
    exchange = exchange.replace(chunks=exchange.chunks[:2], recorded_end=None)
    tape.exchanges = [exchange]
    assert exchange.end.outcome == "incomplete"
    replayed = fetch(shell, shell.replay(tape, speed=math.inf), rec.url)
    assert replayed.pieces == rec.seen.pieces[:2]
    assert_library_error(shell, replayed.error, "RemoteProtocolError")


# -- recording a replay ------------------------------------------------------------------------------


def _comparable(exchange: streamtape.Exchange) -> tuple[Any, ...]:
    response = exchange.response
    head = None if response is None else (response.status_code, response.headers, response.http_version)
    end = exchange.end
    return (
        exchange.request.method,
        exchange.request.url,
        exchange.request.body,
        head,
        [c.data for c in exchange.chunks],
        (end.outcome, end.error_type, end.message),
    )


@SHELLS
@ALL_CASES
def test_recording_a_replay_writes_a_tape_equal_to_the_original(
    shell: Shell, case: Case, recordings: Recordings, tmp_path: Path
) -> None:
    rec = recordings.get(shell, case)
    copy = tmp_path / "copy.tape"
    transport = shell.recording(copy, transport=shell.replay(rec.path, speed=math.inf))
    # A read timeout longer than any recorded gap, so that recorded errors are replayed as recorded.
    replayed = fetch(shell, transport, rec.url, timeout=read_timeout(shell, 5.0))
    assert_same_view(shell, replayed, rec.seen)
    again = streamtape.open_tape(copy)
    assert not again.incomplete
    (exchange,) = again.exchanges
    assert _comparable(exchange) == _comparable(rec.exchange)
    if rec.exchange.response is not None:
        assert exchange.response.reason == rec.exchange.response.reason


# -- a client that stops reading early ----------------------------------------------------------------


@SHELLS
@pytest.mark.parametrize("how", ["close", "break"])
def test_client_stopping_after_one_chunk_closes_cleanly_and_the_next_request_is_served(
    shell: Shell, how: str, recordings: Recordings
) -> None:
    rec = recordings.get(shell, "complete")
    transport = shell.replay(rec.path, speed=math.inf, allow_repeats=True)
    stopped, after = fetch_all(shell, transport, Call(rec.url, stop=how), Call(rec.url))
    assert stopped.error is None
    assert stopped.pieces == rec.seen.pieces[:1]
    assert_same_view(shell, after, rec.seen)


def read_in_two_passes(
    shell: Shell, transport: Any, url: str, first: int = 2
) -> tuple[list[bytes], list[bytes]]:
    """``first`` pieces from ``iter_raw``, its iterator left open, then a second pass over ``response.stream``.

    That second pass is how the OpenAI SDK's async stream drains an HTTP/1.1 body after ``[DONE]``
    (``openai._streaming_cleanup.drain_response_async``).
    """
    lib = shell.lib
    if shell.is_async:

        async def run() -> tuple[list[bytes], list[bytes]]:
            async with (
                lib.AsyncClient(transport=transport, timeout=5) as client,
                client.stream("POST", url, content=CHAT_BODY) as response,
            ):
                pieces = response.aiter_raw()
                head = [await pieces.__anext__() for _ in range(first)]
                rest = [piece async for piece in response.stream]
                await pieces.aclose()
                return head, rest

        return asyncio.run(run())
    with (
        lib.Client(transport=transport, timeout=5) as client,
        client.stream("POST", url, content=CHAT_BODY) as response,
    ):
        pieces = response.iter_raw()
        head = [next(pieces) for _ in range(first)]
        rest = list(response.stream)
        pieces.close()
        return head, rest


@SHELLS
def test_a_second_pass_over_the_stream_continues_where_the_first_stopped(
    shell: Shell, emulator: Emulator, recordings: Recordings
) -> None:
    """A network stream read in two passes gives each byte once; so must a replayed one."""
    rec = recordings.get(shell, "complete")
    live_transport = shell.lib.AsyncHTTPTransport() if shell.is_async else shell.lib.HTTPTransport()
    live = read_in_two_passes(
        shell, live_transport, emulator.url(**CASE_BY_NAME["complete"].knobs) + CHAT_PATH
    )
    assert live[0] + live[1] == rec.seen.pieces  # what the network does: the rest, not the whole again

    served_before = len(emulator.requests)
    head, rest = read_in_two_passes(shell, shell.replay(rec.path, speed=math.inf), rec.url)
    assert head == rec.seen.pieces[:2]
    assert rest == rec.seen.pieces[2:], (
        f"the second pass gave {len(rest)} pieces, not the {len(rec.seen.pieces) - 2} left"
    )
    assert len(emulator.requests) == served_before


@SHELLS
def test_closing_a_paced_replay_early_does_not_wait_for_the_rest(shell: Shell, paced: Recorded) -> None:
    replayed = fetch(shell, shell.replay(paced.path, speed=1), paced.url, stop="close")
    assert replayed.error is None and replayed.pieces == paced.seen.pieces[:1]
    assert replayed.elapsed < 0.5 * duration(paced.exchange)


def test_mismatch_message_never_shows_a_live_secret(tmp_path: Path) -> None:
    """A request the tape cannot answer is named in the error, with its secrets fingerprinted, not shown."""
    tape = streamtape.open_tape(Path(__file__).resolve().parents[1] / "spec" / "vectors" / "complete.tape")
    transport = streamtape.httpx2.ReplayTransport(tape, speed=math.inf)
    with (
        httpx2.Client(transport=transport) as client,
        pytest.raises(streamtape.TapeMismatch) as info,
    ):
        client.get("http://alice:PSECRET@127.0.0.1:8000/v1/models?key=QSECRET&limit=5")
    message = str(info.value)
    assert "QSECRET" not in message and "PSECRET" not in message
    assert "key=REDACTED:" in message and "limit=5" in message
