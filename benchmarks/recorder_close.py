"""Closing a recording client after a long stream: how long does ``close()`` take, and is everything there?
(issue 8, row 6)

A 200 MB streamed body (``--mb``; 20 MB with ``--quick``) of OpenAI chat completion events (~277 B each),
served over loopback by the minimal server of ``_loopback.py`` in its own process, read with
``iter_raw()`` through ``httpx2.Client(transport=streamtape.httpx2.RecordingTransport(path))``. Timed with
``perf_counter``: recording (from building the client to the end of the body) and then ``client.close()``
alone; the figure is the close in ms, and as a ratio to the recording time of the same round. Then the
tape is read back with ``streamtape.iter_records`` and its chunk records counted against the chunks the
client saw, and the exchange's end checked (``complete``).

Rounds (a fresh tape each) repeat while they fit in ``--budget`` seconds (default 90), at most
``--rounds`` (3), at least one; figures are medians.

    python benchmarks/recorder_close.py [--quick] [--mb 200] [--rounds 3] [--budget 90]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import httpx2
from _loopback import LoopbackServer, drain, median

import streamtape
import streamtape.httpx2


def one_round(url: str, path: str) -> dict[str, float]:
    start = time.perf_counter()
    client = httpx2.Client(transport=streamtape.httpx2.RecordingTransport(path), timeout=600)
    chunks, size = drain(client, url)
    recorded = time.perf_counter()
    client.close()
    closed = time.perf_counter()
    stream = streamtape.iter_records(path)
    on_tape = 0
    outcomes = []
    for record in stream:
        if isinstance(record, streamtape.Chunk):
            on_tape += 1
        elif isinstance(record, streamtape.End):
            outcomes.append(record.outcome)
    return {
        "record": recorded - start,
        "close": closed - recorded,
        "chunks": chunks,
        "bytes": size,
        "on_tape": on_tape,
        "complete": outcomes == ["complete"] and not stream.incomplete,
        "tape_bytes": os.path.getsize(path),
        "check": time.perf_counter() - closed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a 20 MB stream")
    parser.add_argument("--mb", type=float, default=None, help="stream size in MB (default 200)")
    parser.add_argument("--rounds", type=int, default=3, help="at most this many rounds")
    parser.add_argument("--budget", type=float, default=90.0, help="seconds of rounds to aim for")
    args = parser.parse_args()
    mb = args.mb or (20.0 if args.quick else 200.0)
    started = time.perf_counter()
    runs: list[dict[str, float]] = []
    with (
        LoopbackServer(flood_events=0, pool=8) as server,
        tempfile.TemporaryDirectory(prefix="streamtape-bench-") as tmp,
    ):
        url = server.url(f"/bytes/{int(mb * 1e6)}")
        first_round = time.perf_counter()
        while len(runs) < args.rounds:
            path = os.path.join(tmp, f"close-{len(runs)}.tape")
            round_start = time.perf_counter()
            runs.append(one_round(url, path))
            os.unlink(path)
            spent = time.perf_counter() - first_round
            if spent + (time.perf_counter() - round_start) > args.budget:
                break

    def med(key: str) -> float:
        return median([run[key] for run in runs])

    last = runs[-1]
    print(
        f"one {last['bytes'] / 1e6:.0f} MB stream ({int(last['chunks']):,} chunks) recorded through httpx2 from "
        f"the minimal loopback server, then client.close(); {len(runs)} round(s), medians\n"
    )
    print("| recorded | close() | close / recording time | recording time | tape holds every record | tape |")
    print("|---|---|---|---|---|---|")
    every = all(run["on_tape"] == run["chunks"] and run["complete"] for run in runs)
    holds = "yes" if every else "NO"
    counts = f"{int(last['on_tape']):,} / {int(last['chunks']):,} chunks, end {'complete' if last['complete'] else 'missing'}"
    print(
        f"| {last['bytes'] / 1e6:.0f} MB | {med('close') * 1e3:,.0f} ms | {med('close') / med('record'):.2f}x | "
        f"{med('record'):.1f} s | {holds} ({counts}) | {last['tape_bytes'] / 1e6:.1f} MB |"
    )
    print(f"\n(reading the tape back: {med('check'):.1f} s; run {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
