"""Does ``streamtape proxy`` delay the stream? Time to first byte and to the last byte, direct and through
the recording proxy, on loopback (issue 12: "unchanged within a millisecond").

The emulator (``python -m streamtape.emulator``, its own process) streams a 40-event OpenAI chat completion,
5 ms between events; a sync httpx2 client reads it with ``iter_raw()`` directly and through
``streamtape proxy`` (its own process, recording to a temporary tape), interleaved for ``--rounds`` rounds. Figures are medians and 95th percentiles of the
differences proxy - direct, in milliseconds, measured in one run.

    python benchmarks/proxy_ttfb.py [--rounds 40]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx2
from _loopback import EmulatorProcess, _Subprocess

BODY = b'{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}'


def timed(client: httpx2.Client, url: str) -> tuple[float, float]:
    """Seconds to the first body byte and to the end of the body, from sending the request."""
    start = time.perf_counter()
    first = 0.0
    with client.stream("POST", url, content=BODY) as response:
        for _ in response.iter_raw():
            if not first:
                first = time.perf_counter() - start
    return first, time.perf_counter() - start


def p95(values: list[float]) -> float:
    return sorted(values)[int(0.95 * (len(values) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    with EmulatorProcess() as emulator, tempfile.TemporaryDirectory() as tmp:
        upstream = emulator.url(events=40, pace_ms=5)
        command = [
            sys.executable,
            "-m",
            "streamtape",
            "proxy",
            "--upstream",
            upstream,
            str(Path(tmp) / "p.tape"),
        ]
        with _Subprocess(command) as server, httpx2.Client() as direct, httpx2.Client() as proxied:
            chat = "/v1/chat/completions"
            targets = [(direct, upstream + chat), (proxied, server.first_line + chat)]
            for client, url in targets:
                timed(client, url)  # warm-up: connections, first use
            ttfb: list[float] = []
            total: list[float] = []
            for r in range(args.rounds):
                order = targets if r % 2 == 0 else targets[::-1]
                results = {id(client): timed(client, url) for client, url in order}
                (d_first, d_total), (p_first, p_total) = results[id(direct)], results[id(proxied)]
                ttfb.append((p_first - d_first) * 1000)
                total.append((p_total - d_total) * 1000)
    print(f"{args.rounds} interleaved rounds, 40 events 5 ms apart, loopback; proxy - direct, milliseconds\n")
    print("| figure | p50 | p95 |")
    print("|---|---|---|")
    print(f"| time to first byte | {statistics.median(ttfb):+.2f} | {p95(ttfb):+.2f} |")
    print(f"| time to the last byte | {statistics.median(total):+.2f} | {p95(total):+.2f} |")


if __name__ == "__main__":
    main()
