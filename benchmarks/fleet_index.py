"""Indexing a fleet's tapes: ``streamtape index`` over 10,000 small tapes, against opening each of them.

The tapes: a dozen distinct exchanges recorded once from the emulator (in this process) through
``streamtape.httpx2.RecordingTransport`` into a directory, one tape each, as a flight recorder writes them:
OpenAI Chat Completions (short, long, with tool calls, split UTF-8, gzip), the Responses API, Anthropic
Messages, a reset mid-stream, a stream without its closing events, a 429 and a 500, and a tape cut while
its stream was open (a crashed recorder's ``.partial``, renamed). Each is saved again 24 times with its
start moved an hour apart (``Tape.save``), and those copied under other names into 20 "pod" directories
until there are ``--tapes`` (10,000) of them, plus a few ``.partial`` files that must be left alone.

Timed, wall clock, medians of ``ROUNDS`` (3) interleaved rounds in one run:

- the baseline: ``streamtape.open_tape`` of every tape, one after the other, in this process;
- ``open_tape`` and ``streamtape.diagnose`` of every exchange, one after the other: what the index reads,
  on one core;
- ``streamtape index DIR -o OUT`` in a subprocess (the command a user runs: start-up, listing, a worker per
  core, ``diagnose`` of every exchange, Parquet written);
- the same command again, nothing changed (the incremental run: listing and the manifest only).

    python benchmarks/fleet_index.py [--tapes 10000]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx2
import msgspec

import streamtape
import streamtape.httpx2
from streamtape.emulator import Emulator

PODS = 20
ROUNDS = 3
HOURS = 24
CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "stream": True}
#: (knobs, path, body): one recorded exchange each.
EXCHANGES: list[tuple[dict[str, object], str, dict[str, object]]] = [
    ({"events": 12}, "/v1/chat/completions", {**CHAT, "stream_options": {"include_usage": True}}),
    ({"events": 120}, "/v1/chat/completions", CHAT),
    ({"events": 20, "tools": 2}, "/v1/chat/completions", CHAT),
    ({"events": 16, "split_utf8": True}, "/v1/chat/completions", CHAT),
    ({"events": 16, "gzip": True}, "/v1/chat/completions", CHAT),
    ({"events": 30}, "/v1/responses", {"model": "gpt-5", "input": "hi", "stream": True}),
    ({"events": 40}, "/v1/messages", {"model": "claude-sonnet-5", "max_tokens": 64, "stream": True}),
    ({"events": 30, "reset_at": 9}, "/v1/chat/completions", CHAT),
    ({"events": 12, "drop_final": True}, "/v1/chat/completions", CHAT),
    ({"status": 429}, "/v1/chat/completions", CHAT),
    ({"status": 500}, "/v1/messages", {"model": "claude-sonnet-5", "max_tokens": 64, "stream": True}),
]


def record_sources(emu: Emulator, directory: Path) -> None:
    """One tape per exchange in ``directory``, and one cut mid-stream (a crashed recorder's ``.partial``)."""
    transport = streamtape.httpx2.RecordingTransport(f"{directory}/")
    with httpx2.Client(transport=transport, timeout=10) as client:
        for knobs, path, body in EXCHANGES:
            with contextlib.suppress(httpx2.TransportError):
                client.post(emu.url(**knobs) + path, json=body).read()
        with client.stream("POST", emu.url(events=60, pace_ms=5) + "/v1/chat/completions", json=CHAT) as r:
            pieces = r.iter_raw()
            for _ in range(5):
                next(pieces)
            transport.flush()  # what a recorder killed now leaves on disk
            (partial,) = directory.glob("*.partial")
            shutil.copyfile(partial, directory / "cut-while-recording.tape")
            for _ in pieces:
                pass


def make_fleet(sources: Path, fleet: Path, count: int) -> int:
    """``count`` tapes under ``fleet``: each source moved to ``HOURS`` start times, then copied. Returns
    the exchanges they hold."""
    variants: list[tuple[Path, int]] = []
    for n, source in enumerate(sorted(sources.glob("*.tape"))):
        tape = streamtape.open_tape(source)
        for hour in range(HOURS):
            shift = -hour * 3600 * 10**9
            segments = [
                msgspec.structs.replace(h, started_unix_ns=h.started_unix_ns + shift) for h in tape.segments
            ]
            tape.header, tape.segments = segments[0], segments
            path = sources / "variants" / f"{n:02d}-{hour:02d}.tape"
            path.parent.mkdir(exist_ok=True)
            tape.save(path)
            tape = streamtape.open_tape(source)
            variants.append((path, len(tape.exchanges)))
    exchanges = 0
    for i in range(count):
        path, held = variants[i % len(variants)]
        pod = fleet / f"pod-{i % PODS:02d}"
        pod.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, pod / f"20261124T{i % 24:02d}0000.{i:06d}Z-{1000 + i % PODS}-{i:06d}.tape")
        exchanges += held
    for pod in range(3):  # exchanges still being recorded: never indexed
        shutil.copyfile(
            variants[0][0], fleet / f"pod-{pod:02d}" / f"20261125T000000.000000Z-7-{pod:06d}.partial"
        )
    return exchanges


def run_index(fleet: Path, out: Path) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "streamtape", "index", str(fleet), "-o", str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    return time.perf_counter() - start, done.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tapes", type=int, default=10_000, help="tapes in the fleet (default 10,000)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="streamtape-bench-") as tmp:
        root = Path(tmp)
        sources, fleet = root / "sources", root / "fleet"
        with Emulator() as emu:
            record_sources(emu, sources)
        distinct = len(list(sources.glob("*.tape")))
        exchanges = make_fleet(sources, fleet, args.tapes)
        paths = sorted(fleet.rglob("*.tape"))
        size = sum(p.stat().st_size for p in paths)

        os.sync()  # the copies' dirty pages written now, not while something is timed

        timings: dict[str, list[float]] = {"baseline": [], "serial": [], "full": [], "again": []}
        for n in range(ROUNDS):  # interleaved rounds, medians
            start = time.perf_counter()
            opened = sum(len(streamtape.open_tape(p).exchanges) for p in paths)
            timings["baseline"].append(time.perf_counter() - start)
            start = time.perf_counter()
            for p in paths:
                for exchange in streamtape.open_tape(p).exchanges:
                    streamtape.diagnose(exchange)
            timings["serial"].append(time.perf_counter() - start)
            out = root / f"index-{n}"
            seconds, full_says = run_index(fleet, out)
            timings["full"].append(seconds)
            seconds, again_says = run_index(fleet, out)
            timings["again"].append(seconds)
        parts = sorted(p.name for p in out.glob("*.parquet"))
        index_size = sum((out / name).stat().st_size for name in parts)
        baseline, serial, full, again = (statistics.median(timings[k]) for k in timings)

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(
        f"{len(paths):,} tapes ({size / 1e6:.1f} MB, {exchanges:,} exchanges, {distinct} distinct "
        f"recordings from the emulator x {HOURS} start times), {PODS} pod directories, {cores} cores\n"
    )
    print("| step | wall time (s), median | tapes/s | / baseline |")
    print("|---|---|---|---|")
    rows = [
        ("`open_tape` of every tape, serially, in one process (baseline)", baseline),
        ("`open_tape` + `diagnose` of every exchange, serially (the index's reading, on one core)", serial),
        ("`streamtape index DIR -o OUT`, every tape new", full),
        ("the same again, nothing changed", again),
    ]
    for name, seconds in rows:
        print(f"| {name} | {seconds:.2f} | {len(paths) / seconds:,.0f} | {seconds / baseline:.2f}x |")
    print(f"\nfirst run:  {full_says}\nsecond run: {again_says}")
    print(
        f"index: {len(parts)} part file(s), {index_size:,} bytes; exchanges opened by the baseline: {opened:,}"
    )
    assert opened == exchanges


if __name__ == "__main__":
    main()
