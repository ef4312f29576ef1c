"""A client per request, every client recording into one tape: does a request cost more as the tape grows?
(issue 8, row 4)

``with httpx2.Client(transport=streamtape.httpx2.RecordingTransport(path)) as c:`` around each request, as a
request handler that builds its own client does: ``--requests`` (300) requests appended to one tape,
each a streamed OpenAI chat completion of ``--events`` (12) events from the emulator
(``python -m streamtape.emulator`` in a subprocess), read to the end with ``iter_raw()``. The baseline is
the same request with a bare client per request (``with httpx2.Client() as c:``), against the same server.
Recording and bare requests alternate (the order flips every request); each is timed from building the
client to the end of its ``with`` block (``perf_counter``: construction, request, stream, close). The
figure is the median time per recorded request over a window of requests divided by the median bare
time over the same window; windows: 1-50, 150-200 and 250-300 (with ``--requests N``: the same
fractions of N). A per-request cost that does not grow gives the same ratio in every window.

At the end the tape is read back and its exchanges and chunks counted against what the clients saw.

    python benchmarks/recorder_requests.py [--quick] [--requests 300] [--events 12]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import httpx2
from _loopback import CHAT_PATH, EmulatorProcess, drain, median

import streamtape
import streamtape.httpx2


def one_request(url: str, path: str | None) -> tuple[float, int]:
    start = time.perf_counter()
    transport = streamtape.httpx2.RecordingTransport(path) if path else httpx2.HTTPTransport()
    with httpx2.Client(transport=transport, timeout=60) as client:
        chunks, _ = drain(client, url)
    return time.perf_counter() - start, chunks


def windows(n: int) -> list[tuple[int, int]]:
    """1-based inclusive request ranges: 1-50, 150-200, 250-300 for 300 requests."""
    return [(1, max(2, n // 6)), (n // 2, 2 * n // 3), (5 * n // 6, n)]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="120 requests")
    parser.add_argument("--requests", type=int, default=None, help="requests per variant (default 300)")
    parser.add_argument("--events", type=int, default=12, help="events per streamed completion")
    args = parser.parse_args()
    n = args.requests or (120 if args.quick else 300)
    started = time.perf_counter()

    rec: list[float] = []
    bare: list[float] = []
    seen = 0
    with EmulatorProcess() as emu, tempfile.TemporaryDirectory(prefix="streamtape-bench-") as tmp:
        path = os.path.join(tmp, "per-request.tape")
        url = emu.url(events=args.events) + CHAT_PATH
        one_request(url, None)  # warm-up (imports, first connection)
        for i in range(n):
            order = (path, None) if i % 2 == 0 else (None, path)
            for target in order:
                seconds, chunks = one_request(url, target)
                if target is None:
                    bare.append(seconds)
                else:
                    rec.append(seconds)
                    seen += chunks
        tape = streamtape.open_tape(path)
        on_tape = sum(len(e.chunks) for e in tape.exchanges)
        exchanges, size = len(tape.exchanges), os.path.getsize(path)

    print(
        f"{n} requests, each a client of its own recording into one tape ({args.events}-event OpenAI chat "
        f"stream from the emulator), alternating with a bare client per request; medians per window\n"
    )
    print("| requests | recording, ms per request | bare, ms per request | recording / bare |")
    print("|---|---|---|---|")
    ratios = []
    for lo, hi in windows(n):
        r, b = median(rec[lo - 1 : hi]), median(bare[lo - 1 : hi])
        ratios.append(r / b)
        print(f"| {lo}-{hi} | {r * 1e3:.1f} | {b * 1e3:.1f} | {r / b:.1f}x |")
    print(
        f"\ngrowth: the last window's ratio is {ratios[-1] / ratios[0]:.2f}x the first's; tape: "
        f"{exchanges} exchanges, {on_tape:,} chunks of {seen:,} seen, {size:,} bytes; "
        f"run {time.perf_counter() - started:.0f} s"
    )


if __name__ == "__main__":
    main()
