"""What does recording cost a client reading a stream as fast as the network gives it? (issue 8, rows 1-3)

A 20,000-event OpenAI chat completion (the emulator's own chunks, obfuscation padding included, ~6 MB,
~20k network reads) streamed over loopback by a real HTTP/1.1 server in its own process (``_loopback.py``;
``--server emulator`` uses ``python -m streamtape.emulator`` at pace 0 instead, which spends ~0.17 s building
the events before the response head and sends each event with its own ``sendall``: slower than the
client, so it dilutes the wall-time ratios). Per library (httpx, httpx2), three sync clients live for the
whole run, one per transport, each reusing its connection:

- bare: ``Client(transport=HTTPTransport())``;
- pass-through: a wrapper shaped like the recording shell that yields the inner stream's chunks and
  records nothing (``_loopback.pass_through``);
- recording: ``Client(transport=streamtape.<lib>.RecordingTransport(path))``, one tape per library.

Each sample streams the whole body with ``iter_raw()``. Wall time (``perf_counter``) and the caller's
thread CPU (``thread_time``) run from the request to the end of the body; process CPU (``process_time``,
which counts the recorder's writer thread) runs on until the tape has settled (0.3 s, then until its size
holds for 0.1 s; bare and pass-through sleep the same 0.4 s), so work the recorder defers to its thread is
counted. Closing the clients (and what it costs) is outside the samples: see ``recorder_close.py``.
Variants are interleaved in rotating order for ``--rounds`` rounds; every figure is a ratio of medians.

- flood CPU and wall: recording / bare.
- shell per chunk: recording - pass-through, per chunk, in ns, on the caller's thread CPU: from the first
  chunk to the last event (``data: [DONE]``, read before the shell sees the end of the body), which is the
  per-chunk path alone (the figure of the issue); and from the request to the end of the body divided by
  the chunks, which adds the exchange's start and end (today: compressing what is pending on the caller's
  thread), on the caller's thread CPU and on wall time (which also counts waiting for the GIL while the
  writer thread runs).

At the end the tapes are read back (``streamtape.iter_records``) and their chunk records counted against
the chunks the recording clients saw: a recorder that drops records would look cheap.

    python benchmarks/recorder_flood.py [--quick] [--rounds 9] [--events 20000] [--server local|emulator]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from typing import Any

import httpx
import httpx2
from _loopback import (
    CHAT_PATH,
    REQUEST,
    EmulatorProcess,
    LoopbackServer,
    drain,
    median,
    pass_through,
    settle,
)

import streamtape
import streamtape.httpx
import streamtape.httpx2

LIBS = {"httpx": (httpx, streamtape.httpx), "httpx2": (httpx2, streamtape.httpx2)}
VARIANTS = ("bare", "pass-through", "recording")


def make_clients(tmp: str) -> tuple[dict[tuple[str, str], Any], dict[str, str]]:
    clients: dict[tuple[str, str], Any] = {}
    tapes: dict[str, str] = {}
    for name, (lib, shells) in LIBS.items():
        tapes[name] = os.path.join(tmp, f"flood-{name}.tape")
        clients[name, "bare"] = lib.Client(transport=lib.HTTPTransport(), timeout=60)
        clients[name, "pass-through"] = lib.Client(transport=pass_through(lib)(), timeout=60)
        clients[name, "recording"] = lib.Client(transport=shells.RecordingTransport(tapes[name]), timeout=60)
    return clients, tapes


def drain_timed(client: Any, url: str) -> tuple[int, int, float, float, int]:
    """Stream the body; returns chunks, bytes, and the caller's thread CPU at the first chunk and at the
    last event (``data: [DONE]``), before the shell sees the end of the body: the chunks in between
    measure the per-chunk path alone, without the exchange's start and end."""
    chunks = size = 0
    first = last = 0.0
    last_index = 0
    with client.stream("POST", url, json=REQUEST) as response:
        response.raise_for_status()
        for chunk in response.iter_raw():
            if not chunks:
                first = time.thread_time()
            chunks += 1
            size += len(chunk)
            if chunk.endswith(b"[DONE]\n\n"):
                last, last_index = time.thread_time(), chunks
    return chunks, size, first, last, last_index


def sample(client: Any, url: str, tape: str | None) -> dict[str, float]:
    cpu0, thread0, wall0 = time.process_time(), time.thread_time(), time.perf_counter()
    chunks, size, first, last, last_index = drain_timed(client, url)
    wall, thread = time.perf_counter() - wall0, time.thread_time() - thread0
    settle(tape, minimum=0.3)
    return {
        "wall": wall,
        "thread": thread,
        "cpu": time.process_time() - cpu0,
        "chunks": chunks,
        "bytes": size,
        "inner": (last - first) / (last_index - 1),  # caller's thread CPU per chunk, first to last
    }


def tape_chunks(path: str) -> int:
    return sum(isinstance(r, streamtape.Chunk) for r in streamtape.iter_records(path))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="3 rounds")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 9)")
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--server", choices=("local", "emulator"), default="local")
    args = parser.parse_args()
    rounds = args.rounds or (3 if args.quick else 9)
    started = time.perf_counter()

    server: Any
    if args.server == "local":
        server = LoopbackServer(flood_events=args.events)
        url, source = server.url("/flood"), "the minimal loopback server (`_loopback.py`)"
    else:
        server = EmulatorProcess()
        url, source = server.url(events=args.events) + CHAT_PATH, "the emulator at pace 0 (subprocess)"

    samples: dict[tuple[str, str], list[dict[str, float]]] = {}
    with server, tempfile.TemporaryDirectory(prefix="streamtape-bench-") as tmp:
        clients, tapes = make_clients(tmp)
        seen = {}
        for (name, variant), client in clients.items():  # warm-up: connections, imports, first use
            chunks, _ = drain(client, url)
            if variant == "recording":
                seen[name] = chunks
        for r in range(rounds):
            order = VARIANTS[r % 3 :] + VARIANTS[: r % 3]
            for name in LIBS:
                for variant in order:
                    tape = tapes[name] if variant == "recording" else None
                    s = sample(clients[name, variant], url, tape)
                    samples.setdefault((name, variant), []).append(s)
        close_s = {}
        for (name, variant), client in clients.items():
            t0 = time.perf_counter()
            client.close()
            if variant == "recording":
                close_s[name] = time.perf_counter() - t0
        for name in LIBS:  # every chunk the recording client saw, warm-up included
            seen[name] += sum(int(s["chunks"]) for s in samples[name, "recording"])
        on_tape = {name: tape_chunks(tapes[name]) for name in LIBS}

    def med(name: str, variant: str, key: str) -> float:
        return median([s[key] for s in samples[name, variant]])

    first = samples["httpx", "bare"][0]
    print(
        f"{args.events:,}-event flood ({int(first['bytes']):,} bytes, ~{int(first['chunks']):,} chunks) from "
        f"{source}; {rounds} interleaved rounds, medians\n"
    )
    print(
        "| client | CPU recording / bare | wall recording / bare | CPU ms bare / recording | "
        "wall ms bare / recording | chunks on tape / seen |"
    )
    print("|---|---|---|---|---|---|")
    for name in LIBS:
        cb, cr = med(name, "bare", "cpu"), med(name, "recording", "cpu")
        wb, wr = med(name, "bare", "wall"), med(name, "recording", "wall")
        print(
            f"| {name} | {cr / cb:.2f}x | {wr / wb:.2f}x | {cb * 1e3:.0f} / {cr * 1e3:.0f} | "
            f"{wb * 1e3:.0f} / {wr * 1e3:.0f} | {on_tape[name]:,} / {seen[name]:,} |"
        )
    print()
    print(
        "| client | shell per chunk (caller's thread CPU, first to last chunk) | "
        "per chunk with the exchange's start and end (request to end of body) | the same, wall | "
        "pass-through / bare (caller's thread CPU) |"
    )
    print("|---|---|---|---|---|")
    for name in LIBS:
        per_chunk = {}
        for key in ("inner", "thread", "wall"):
            divide = key != "inner"  # "inner" is per chunk already
            rec = [s[key] / (s["chunks"] if divide else 1) for s in samples[name, "recording"]]
            thru = [s[key] / (s["chunks"] if divide else 1) for s in samples[name, "pass-through"]]
            per_chunk[key] = (median(rec) - median(thru)) * 1e9
        tb, tp = med(name, "bare", "thread"), med(name, "pass-through", "thread")
        print(
            f"| {name} | {per_chunk['inner']:.0f} ns | {per_chunk['thread']:.0f} ns | "
            f"{per_chunk['wall']:.0f} ns | {tp / tb:.2f}x |"
        )
    closing = ", ".join(f"{name} {close_s[name] * 1e3:,.0f} ms" for name in LIBS)
    print(
        f"\n(closing the recording clients, not in the figures: {closing}; run {time.perf_counter() - started:.0f} s)"
    )


if __name__ == "__main__":
    main()
