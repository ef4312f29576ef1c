"""An instant replay (``speed=math.inf``) plans the chunks of a stream as one run, without a step per chunk:
the same bytes, in the same order, ending the same way as a plan of one step per chunk, whatever the waits,
the client's timeouts and ``max_wait``."""

from __future__ import annotations

import pytest
from helpers import ROOT

import streamtape
from streamtape import faults
from streamtape.replay.schedule import Step, plan

SAMPLES = sorted((ROOT / "samples").glob("*.tape"))


def _flat(steps: list[Step]) -> list[tuple[str, bytes, str]]:
    out: list[tuple[str, bytes, str]] = []
    for step in steps:
        if step.kind == "chunks":
            assert step.run is not None and step.at == 0.0
            out += [("chunk", data, "") for data in step.run]
        else:
            out.append((step.kind, step.data, step.error_type))
    return out


def _exchanges() -> list[streamtape.Exchange]:
    found = []
    for path in SAMPLES:
        tape = streamtape.open_tape(path)
        found += tape.exchanges
        found += faults.stall(tape, at_chunk=0, seconds=90).exchanges if tape.exchanges[0].chunks else []
    return found


@pytest.mark.parametrize("read_timeout", [None, 60.0, 0.005])
@pytest.mark.parametrize("max_wait", [None, 86_400.0, 10.0])
def test_an_instant_run_is_the_per_chunk_plan_at_an_enormous_speed(
    read_timeout: float | None, max_wait: float | None
) -> None:
    runs = 0
    for exchange in _exchanges():
        instant = plan(exchange, speed=float("inf"), read_timeout=read_timeout, max_wait=max_wait)
        reference = plan(exchange, speed=1e300, read_timeout=read_timeout, max_wait=max_wait)
        assert all(s.kind != "chunks" for s in reference)
        assert _flat(instant) == _flat(reference)
        runs += any(s.kind == "chunks" for s in instant)
    assert runs  # the fast path was taken, and not only the per-chunk one


def test_an_abandoned_pass_over_an_instant_run_is_continued_not_repeated() -> None:
    """An SDK may stop iterating a body and start again to drain it: the second pass goes on from where the
    first stopped, as reading a socket would (an async generator is not finalised at once)."""
    import asyncio
    import math

    import httpx2

    import streamtape.httpx2

    tape = streamtape.open_tape(ROOT / "samples" / "openai-complete.tape")
    e = tape.exchanges[0]
    chunks = [c.data for c in e.chunks]
    request = httpx2.Request("POST", e.request.url, content=e.request.body)
    response = streamtape.httpx2.ReplayTransport(tape, speed=math.inf).handle_request(request)
    first = iter(response.stream)
    head = [next(first) for _ in range(3)]
    assert head + list(response.stream) == chunks  # ``first`` is still alive, unfinished

    async def twice() -> list[bytes]:
        transport = streamtape.httpx2.AsyncReplayTransport(tape, speed=math.inf)
        response = await transport.handle_async_request(request)
        first = response.stream.__aiter__()
        head = [await first.__anext__() for _ in range(3)]
        return head + [data async for data in response.stream]

    assert asyncio.run(twice()) == chunks
