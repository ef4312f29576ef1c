"""Replay timing through the four transport shells: speed, max_gap, read timeouts in virtual time, and
concurrent requests each on their own schedule.

Timing tests assert ordering and generous thresholds only: these machines are noisy.
"""

from __future__ import annotations

import asyncio
import math
import time
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    CHAT_BODY,
    CHAT_PATH,
    Call,
    Seen,
    assert_library_error,
    events,
    fetch,
    fetch_all,
    read_timeout,
)
from replay_cases import STALL_S, STALLED, Recorded, duration
from shells import ASYNC_SHELLS, SHELL_LIST, SHELLS, Shell

import streamtape
from streamtape.emulator import Emulator

pytestmark = pytest.mark.timeout(30)


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
