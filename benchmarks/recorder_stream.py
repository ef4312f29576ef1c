"""One long stream recorded: time against a bare client, closing included, and extra peak memory.
(issue 8, row 5)

An 80 MB streamed body (``--mb``; 10 MB with ``--quick``) of OpenAI chat completion events (~277 B each, so
~290k chunks), served over loopback by the minimal server of ``_loopback.py`` in its own process
(``/bytes/<n>``: distinct completions cycled, so the stream never repeats within a compressor's window).
Each variant runs in a fresh subprocess (this script with ``--child``), so peak RSS is comparable:

- bare: ``httpx2.Client()``;
- recording: ``httpx2.Client(transport=streamtape.httpx2.RecordingTransport(path))``.

Both children import the same modules, then time (``perf_counter``, and ``process_time`` for CPU) from
building the client to the return of ``client.close()``, reading the body with ``iter_raw()``, and report
``resource.getrusage(RUSAGE_SELF).ru_maxrss`` at that point. Same server, same bytes, same client library.
Variants alternate (the order flips every round) for up to ``--rounds`` (3) rounds, as many as fit in
``--budget`` seconds (100; at least one); figures are ratios of medians, and extra peak RSS is the
difference of the medians.

    python benchmarks/recorder_stream.py [--quick] [--mb 80] [--rounds 3] [--budget 100]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from _loopback import LoopbackServer, median


def child(variant: str, url: str, path: str) -> None:
    import httpx2
    from _loopback import drain, peak_rss_kib

    import streamtape.httpx2

    cpu0, wall0 = time.process_time(), time.perf_counter()
    transport = (
        streamtape.httpx2.RecordingTransport(path) if variant == "recording" else httpx2.HTTPTransport()
    )
    client = httpx2.Client(transport=transport, timeout=600)
    chunks, size = drain(client, url)
    client.close()
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    print(json.dumps({"wall": wall, "cpu": cpu, "rss_kib": peak_rss_kib(), "chunks": chunks, "bytes": size}))


def run_child(variant: str, url: str, path: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--child", variant, url, path],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a 10 MB stream")
    parser.add_argument("--mb", type=float, default=None, help="stream size in MB (default 80)")
    parser.add_argument("--rounds", type=int, default=3, help="at most this many rounds")
    parser.add_argument("--budget", type=float, default=100.0, help="seconds of rounds to aim for")
    parser.add_argument("--child", nargs=3, metavar=("VARIANT", "URL", "TAPE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    mb = args.mb or (10.0 if args.quick else 80.0)
    started = time.perf_counter()
    runs: dict[str, list[dict[str, float]]] = {"bare": [], "recording": []}
    with (
        LoopbackServer(flood_events=0, pool=8) as server,
        tempfile.TemporaryDirectory(prefix="streamtape-bench-") as tmp,
    ):
        url = server.url(f"/bytes/{int(mb * 1e6)}")
        first_round = time.perf_counter()
        for r in range(args.rounds):
            round_start = time.perf_counter()
            for variant in ("bare", "recording") if r % 2 == 0 else ("recording", "bare"):
                path = os.path.join(tmp, f"stream-{r}.tape")
                runs[variant].append(run_child(variant, url, path))
                if os.path.exists(path):
                    tape_size = os.path.getsize(path)
                    os.unlink(path)
            now = time.perf_counter()
            if now - first_round + (now - round_start) > args.budget:
                break

    def med(variant: str, key: str) -> float:
        return median([run[key] for run in runs[variant]])

    first = runs["bare"][0]
    print(
        f"one {first['bytes'] / 1e6:.0f} MB stream ({int(first['chunks']):,} chunks) from the minimal loopback "
        f"server, httpx2, each variant in a fresh process, {len(runs['bare'])} alternating round(s), medians\n"
    )
    print(
        "| stream | time recording / bare, closing included | extra peak RSS | CPU recording / bare | "
        "seconds bare / recording | peak RSS bare / recording | tape |"
    )
    print("|---|---|---|---|---|---|---|")
    wb, wr = med("bare", "wall"), med("recording", "wall")
    cb, cr = med("bare", "cpu"), med("recording", "cpu")
    rb, rr = med("bare", "rss_kib") / 1024, med("recording", "rss_kib") / 1024
    print(
        f"| {first['bytes'] / 1e6:.0f} MB | {wr / wb:.2f}x | {rr - rb:+.0f} MB | {cr / cb:.2f}x | "
        f"{wb:.2f} / {wr:.2f} | {rb:.0f} / {rr:.0f} MB | {tape_size / 1e6:.1f} MB |"
    )
    print(f"\n(run {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
