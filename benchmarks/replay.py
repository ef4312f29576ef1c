"""Replay: how on time, how fast, and what VCR.py keeps of the same stream.

1. Timing fidelity. A 600-event stream recorded from the emulator (2 ms pace), replayed through httpx2 at
   speed 1 and 10, sync and async: lateness of each chunk as the client sees it (arrival time minus the
   recorded time divided by the speed, both from the moment the client sent the request), p50/p95/max in ms.
2. Throughput at speed=inf: chunks per second through ``httpx.Client.stream().iter_raw()``, against a
   transport that returns the same chunks from a plain in-memory byte stream (the floor: the client's own
   cost), and against VCR.py playing back a cassette of the same stream. Each replay is from a tape freshly
   opened (not timed), so no plan or parse is carried from one replay to the next. Each figure is the median
   of interleaved rounds in this one process; ratios are what to read.

    python benchmarks/replay.py
"""

from __future__ import annotations

import asyncio
import gc
import math
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import httpx2

import streamtape
import streamtape.httpx
import streamtape.httpx2
from streamtape.emulator import Emulator

ROUNDS = 7


def record(path: Path, emu: Emulator, events: int) -> str:
    url = emu.url(events=events, pace_ms=2) + "/v1/chat/completions"
    body = {"model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    with (
        httpx2.Client(transport=streamtape.httpx2.RecordingTransport(path)) as client,
        client.stream("POST", url, json=body) as response,
    ):
        for _ in response.iter_raw():
            pass
    return url


def _lateness(arrivals: list[float], expected: list[float]) -> list[float]:
    return [(a - e) * 1000 for a, e in zip(arrivals, expected, strict=True)]


def fidelity_sync(tape: streamtape.Tape, url: str, speed: float) -> list[float]:
    exchange = tape.exchanges[0]
    expected = [c.t_ns / 1e9 / speed for c in exchange.chunks]
    arrivals = []
    with httpx2.Client(
        transport=streamtape.httpx2.ReplayTransport(tape, speed=speed, match="sequence")
    ) as client:
        t0 = time.perf_counter()
        with client.stream("POST", url, content=exchange.request.body) as response:
            for _ in response.iter_raw():
                arrivals.append(time.perf_counter() - t0)
    return _lateness(arrivals, expected)


def fidelity_async(tape: streamtape.Tape, url: str, speed: float) -> list[float]:
    exchange = tape.exchanges[0]
    expected = [c.t_ns / 1e9 / speed for c in exchange.chunks]

    async def run() -> list[float]:
        arrivals = []
        transport = streamtape.httpx2.AsyncReplayTransport(tape, speed=speed, match="sequence")
        async with httpx2.AsyncClient(transport=transport) as client:
            t0 = time.perf_counter()
            async with client.stream("POST", url, content=exchange.request.body) as response:
                async for _ in response.aiter_raw():
                    arrivals.append(time.perf_counter() - t0)
        return arrivals

    return _lateness(asyncio.run(run()), expected)


class _PlainStream(httpx.SyncByteStream):
    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    def __iter__(self):
        yield from self.chunks


class _PlainTransport(httpx.BaseTransport):
    """The baseline: a response whose stream yields the same chunks from memory, nothing else."""

    def __init__(self, chunks: list[bytes], headers: list[tuple[str, str]]) -> None:
        self.chunks, self.headers = chunks, headers

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers=self.headers, stream=_PlainStream(self.chunks))


def _drain(client: httpx.Client, url: str, body: bytes) -> int:
    pieces = 0
    with client.stream("POST", url, content=body) as response:
        for _ in response.iter_raw():
            pieces += 1
    return pieces


def throughput(path: Path, url: str, cassette: Path | None) -> dict[str, tuple[float, int]]:
    """Chunks per second through each variant; every streamtape replay from a tape freshly opened (the
    opening not timed, nothing carried over from the previous replay), every client new."""
    tape = streamtape.open_tape(path)
    exchange = tape.exchanges[0]
    chunks = [c.data for c in exchange.chunks]
    headers = [(n, v) for n, v in exchange.response.headers if n.lower() != "transfer-encoding"]  # type: ignore[union-attr]
    body = exchange.request.body
    runs: dict[str, list[float]] = {"plain ByteStream": [], "streamtape replay": [], "VCR.py playback": []}
    pieces: dict[str, int] = {}
    repeats = 20
    for _ in range(ROUNDS):
        for name in runs:
            if name == "VCR.py playback" and cassette is None:
                continue
            elapsed = 0.0
            for _ in range(repeats):
                if name == "plain ByteStream":
                    client = httpx.Client(transport=_PlainTransport(chunks, headers))
                elif name == "streamtape replay":
                    fresh = streamtape.open_tape(path)
                    client = httpx.Client(transport=streamtape.httpx.ReplayTransport(fresh, speed=math.inf))
                else:
                    client = httpx.Client()
                gc.collect()  # what setting up left behind is not collected inside the timed part
                if name == "VCR.py playback":
                    import vcr

                    with vcr.use_cassette(str(cassette), record_mode="none", allow_playback_repeats=True):
                        start = time.perf_counter()
                        pieces[name] = _drain(client, url, body)
                        elapsed += time.perf_counter() - start
                else:
                    start = time.perf_counter()
                    pieces[name] = _drain(client, url, body)
                    elapsed += time.perf_counter() - start
                client.close()
            runs[name].append(len(chunks) * repeats / elapsed)
    return {name: (statistics.median(v), pieces[name]) for name, v in runs.items() if v}


def record_vcr(path: Path, emu: Emulator, url: str, body: bytes) -> Path | None:
    try:
        import vcr
    except ImportError:
        return None
    with vcr.use_cassette(str(path), record_mode="all"), httpx.Client() as client:
        _drain(client, url, body)
    return path


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, Emulator() as emu:
        path = Path(tmp) / "replay.tape"
        url = record(path, emu, events=600)
        tape = streamtape.open_tape(path)
        exchange = tape.exchanges[0]
        cassette = record_vcr(Path(tmp) / "cassette.yaml", emu, url, exchange.request.body)
        n = len(exchange.chunks)
        print(
            f"stream: {n} chunks over {exchange.chunks[-1].t_ns / 1e9:.2f} s, {len(exchange.body):,} bytes\n"
        )
        print("| replay | speed | chunks | p50 late (ms) | p95 late (ms) | max late (ms) |")
        print("|---|---|---|---|---|---|")
        for shell, fn in (("httpx2 sync", fidelity_sync), ("httpx2 async", fidelity_async)):
            for speed in (1.0, 10.0):
                late = fn(tape, url, speed)
                print(
                    f"| {shell} | {speed:g} | {len(late)} | {pct(late, 0.5):.3f} | {pct(late, 0.95):.3f} | {max(late):.3f} |"
                )
        print()
        results = throughput(path, url, cassette)
        base = results["plain ByteStream"][0]
        print("| speed=inf, httpx sync | chunks/s | ratio to plain ByteStream | pieces the client sees |")
        print("|---|---|---|---|")
        for name, (rate, pieces) in results.items():
            print(f"| {name} | {rate:,.0f} | {rate / base:.2f}x | {pieces} of {n} |")


if __name__ == "__main__":
    main()
