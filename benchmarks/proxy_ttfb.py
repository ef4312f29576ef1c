"""Does ``streamtape proxy`` delay the stream? Time to first byte and to the last byte, direct and through
the recording proxy, on loopback (issue 12: "unchanged within a millisecond").

The emulator (``python -m streamtape.emulator``, its own process) streams a 40-event OpenAI chat completion,
5 ms between events; a sync httpx2 client reads it with ``iter_raw()`` directly, through ``streamtape proxy``
(its own process, recording to a temporary tape), and through a second ``streamtape proxy --sample 0`` (the
same proxy recording nothing: what the hop alone costs), interleaved for ``--rounds`` rounds (each round
reads the three in a rotating order). Figures are medians and 95th percentiles of the per-round differences
proxy - direct, in milliseconds, measured in one run; and each proxy process's CPU time (all its threads,
from ``/proc/<pid>/task/*/schedstat``) over the measured rounds, per request.

    python benchmarks/proxy_ttfb.py [--rounds 60]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx2
from _loopback import EmulatorProcess, _Subprocess

BODY = b'{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}'
CHAT = "/v1/chat/completions"


def timed(client: httpx2.Client, url: str) -> tuple[float, float]:
    """Seconds to the first body byte and to the end of the body, from sending the request."""
    start = time.perf_counter()
    first = 0.0
    with client.stream("POST", url, content=BODY) as response:
        for _ in response.iter_raw():
            if not first:
                first = time.perf_counter() - start
    return first, time.perf_counter() - start


def cpu_ns(pid: int) -> int:
    """CPU time of every live thread of process ``pid``, in nanoseconds (Linux; 0 elsewhere)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError, ValueError, IndexError):  # a thread that just ended
            total += int((task / "schedstat").read_text().split()[0])
    return total


def p95(values: list[float]) -> float:
    return sorted(values)[int(0.95 * (len(values) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=60)
    args = parser.parse_args()
    with EmulatorProcess() as emulator, tempfile.TemporaryDirectory() as tmp:
        upstream = emulator.url(events=40, pace_ms=5)

        def proxy(*options: str) -> list[str]:
            tape = str(Path(tmp) / f"p{len(options)}.tape")
            return [sys.executable, "-m", "streamtape", "proxy", "--upstream", upstream, *options, tape]

        with (
            _Subprocess(proxy()) as recording,
            _Subprocess(proxy("--sample", "0")) as plain,
            httpx2.Client() as c_direct,
            httpx2.Client() as c_recording,
            httpx2.Client() as c_plain,
        ):
            names = ["direct", "recording", "plain"]
            targets = [
                (c_direct, upstream + CHAT),
                (c_recording, recording.first_line + CHAT),
                (c_plain, plain.first_line + CHAT),
            ]
            pids = {"recording": recording.proc.pid, "plain": plain.proc.pid}
            for client, url in targets:
                for _ in range(3):
                    timed(client, url)  # warm-up: connections, first use
            cpu_before = {name: cpu_ns(pid) for name, pid in pids.items()}
            results: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
            for r in range(args.rounds):
                shift = r % len(names)
                for k in [*range(shift, len(names)), *range(shift)]:
                    client, url = targets[k]
                    results[names[k]].append(timed(client, url))
            cpu = {name: (cpu_ns(pid) - cpu_before[name]) / args.rounds / 1e6 for name, pid in pids.items()}
    print(f"{args.rounds} interleaved rounds, 40 events 5 ms apart, loopback; proxy - direct, milliseconds\n")
    print("| proxy | TTFB p50 | TTFB p95 | last byte p50 | last byte p95 | proxy CPU per request |")
    print("|---|---|---|---|---|---|")
    for name in ("recording", "plain"):
        ttfb = [(p[0] - d[0]) * 1000 for p, d in zip(results[name], results["direct"], strict=True)]
        last = [(p[1] - d[1]) * 1000 for p, d in zip(results[name], results["direct"], strict=True)]
        label = "`streamtape proxy`" if name == "recording" else "`--sample 0` (records nothing)"
        print(
            f"| {label} | {statistics.median(ttfb):+.2f} | {p95(ttfb):+.2f} "
            f"| {statistics.median(last):+.2f} | {p95(last):+.2f} | {cpu[name]:.2f} ms |"
        )
    direct_ttfb = statistics.median(first for first, _ in results["direct"]) * 1000
    print(f"\ndirect time to first byte, p50: {direct_ttfb:.2f} ms")


if __name__ == "__main__":
    main()
