"""What a recorder leaves on disk: the live tape's size, and what a cut tape still gives back.
(issue 8, rows 7 and 8)

1. The tape left on disk while the client is still open (what a killed process leaves). Two OpenAI chat
   completion streams from the emulator (in this process; its OpenAI format carries random obfuscation
   padding) at ~40 events/s (``pace_ms=25``, ``--events`` 120 each, so ~3 s), recorded concurrently by one
   ``httpx2.AsyncClient(transport=streamtape.httpx2.AsyncRecordingTransport(path))``. 0.5 s after the last
   event, while the client is still open, the file is copied; then the client is closed. The copy's
   records (``streamtape.iter_records``) are re-encoded as one ideal zstd level-3 frame
   (``streamtape.format.codec.encode_frame(records, level=3)``); the figure is ideal size / live size
   (1.0: the live tape is as small as one frame of the same records). ``--rounds`` rounds with different
   seeds, median. The copy's chunk records are counted against the chunks the client saw.

2. Cuts of a closed tape. Six exchanges recorded from the emulator through ``httpx2`` (OpenAI chat,
   Anthropic messages and OpenAI responses streams; a stream reset mid-way; a plain JSON answer; a 429),
   then the client closed. For every offset ``c`` from 0 to the size - 1, the file's first ``c`` bytes
   are written to a file and read with ``list(streamtape.iter_records(cut))`` (an error counts as nothing
   recovered, as ``open_tape`` would give nothing). A cut keeps everything flushed before it when the
   records recovered are a prefix of the full tape's records and include every record whose encoded bytes
   end in a zstd block that is complete before the cut. Block boundaries are found from outside: the
   file is walked as RFC 8878 zstd frames (frame header, 3-byte block headers, checksum; skippable frames
   skipped), each frame's blocks fed one at a time to python-zstandard's ``decompressobj`` to learn how
   many decompressed bytes the tape holds at the end of each block, and record ends are read from the
   decompressed stream (a 4-byte big-endian length before each record). The same count is made for the
   tape written by ``Tape.save`` from the recorded one, and, when the CLI has a ``compact`` command, for
   the tape it writes.

   That criterion only asks for what the file's blocks make readable: a tape written as one block passes
   every cut without giving anything back before its end. The columns after it say how fine-grained the
   tape is: cuts that give nothing at all (an error, or no record), and the most records ending in one
   block (what a single cut can lose).

    python benchmarks/recorder_tape.py [--quick] [--events 120] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import os
import shutil
import subprocess
import sys
import tempfile
import time

import httpx2
import zstandard
from _loopback import CHAT_PATH, REQUEST, median

import streamtape
import streamtape.httpx2
from streamtape.emulator import Emulator
from streamtape.format.codec import encode_frame

# -- 1. the live tape ----------------------------------------------------------------------------------


async def record_live(emu: Emulator, path: str, copy: str, events: int, seeds: tuple[int, int]) -> int:
    """Record two concurrent paced streams; copy the tape 0.5 s after the last event; return chunks seen."""
    client = httpx2.AsyncClient(transport=streamtape.httpx2.AsyncRecordingTransport(path), timeout=60)

    async def one(seed: int) -> int:
        url = emu.url(events=events, pace_ms=25, seed=seed) + CHAT_PATH
        chunks = 0
        async with client.stream("POST", url, json=REQUEST) as response:
            async for _ in response.aiter_raw():
                chunks += 1
        return chunks

    try:
        counts = await asyncio.gather(*(one(seed) for seed in seeds))
        await asyncio.sleep(0.5)
        shutil.copyfile(path, copy)
    finally:
        await client.aclose()
    return sum(counts)


def live_tape(emu: Emulator, tmp: str, events: int, rounds: int) -> None:
    results = []
    for r in range(rounds):
        path, copy = os.path.join(tmp, f"live-{r}.tape"), os.path.join(tmp, f"live-{r}.copy.tape")
        seen = asyncio.run(record_live(emu, path, copy, events, (2 * r + 1, 2 * r + 2)))
        stream = streamtape.iter_records(copy)
        records = list(stream)
        chunks = sum(isinstance(x, streamtape.Chunk) for x in records)
        ideal = len(encode_frame(records, level=3))
        live = os.path.getsize(copy)
        raw = sum(len(x.data) for x in records if isinstance(x, streamtape.Chunk))
        results.append(
            {"ratio": ideal / live, "ideal": ideal, "live": live, "raw": raw, "chunks": chunks, "seen": seen}
        )
    print(
        f"two OpenAI chat streams of {events} events at ~40 events/s recorded concurrently (httpx2 async), "
        f"the tape copied while the client is open; {rounds} rounds, median\n"
    )
    print(
        "| live tape | ideal level-3 frame / live tape | live tape bytes | ideal frame bytes | raw bytes | "
        "chunks in the copy / seen |"
    )
    print("|---|---|---|---|---|---|")
    mid = sorted(results, key=lambda x: x["ratio"])[len(results) // 2]
    every = all(x["chunks"] == x["seen"] for x in results)
    print(
        f"| two OpenAI streams | {median([x['ratio'] for x in results]):.2f} | {mid['live']:,} | "
        f"{mid['ideal']:,} | {mid['raw']:,} | {mid['chunks']} / {mid['seen']}"
        f"{'' if every else ' (some round lost chunks)'} |"
    )


# -- 2. cuts -------------------------------------------------------------------------------------------

SIX = [
    ("/v1/chat/completions", {"events": 12, "seed": 1}, dict(REQUEST)),
    (
        "/v1/messages",
        {"events": 12, "seed": 2},
        {"model": "claude-sonnet-5", "max_tokens": 256, "stream": True, "messages": REQUEST["messages"]},
    ),
    ("/v1/responses", {"events": 12, "seed": 3}, {"model": "gpt-4o", "input": "hi", "stream": True}),
    ("/v1/chat/completions", {"events": 12, "seed": 4, "reset_at": 6}, dict(REQUEST)),
    ("/v1/chat/completions", {"seed": 5}, {**REQUEST, "stream": False}),
    ("/v1/chat/completions", {"status": 429}, dict(REQUEST)),
]


def record_six(emu: Emulator, path: str) -> None:
    with httpx2.Client(transport=streamtape.httpx2.RecordingTransport(path), timeout=30) as client:
        for route, knobs, body in SIX:
            try:
                with client.stream("POST", emu.url(**knobs) + route, json=body) as response:
                    for _ in response.iter_raw():
                        pass
            except httpx2.TransportError:
                pass  # the reset stream: recorded as an error


def block_ends(data: bytes) -> tuple[list[int], list[int], bytes, int]:
    """Walk zstd frames: (file offset at the end of each block, decompressed bytes of the tape by then),
    the whole decompressed content, and the number of frames."""
    ends: list[int] = []
    produced: list[int] = []
    content = bytearray()
    frames = 0
    pos = 0
    dctx = zstandard.ZstdDecompressor(max_window_size=1 << 31)
    while pos < len(data):
        magic = int.from_bytes(data[pos : pos + 4], "little")
        if magic >> 4 == 0x184D2A5:  # skippable frame
            pos += 8 + int.from_bytes(data[pos + 4 : pos + 8], "little")
            continue
        if magic != 0xFD2FB528:
            raise ValueError(f"no zstd frame at byte {pos}")
        frames += 1
        descriptor = data[pos + 4]
        fcs_flag, single = descriptor >> 6, (descriptor >> 5) & 1
        checksum, dict_flag = (descriptor >> 2) & 1, descriptor & 3
        header = 5 + (0 if single else 1) + (0, 1, 2, 4)[dict_flag] + (single, 2, 4, 8)[fcs_flag]
        dobj = dctx.decompressobj()
        content += dobj.decompress(data[pos : pos + header])
        pos += header
        while True:
            raw = int.from_bytes(data[pos : pos + 3], "little")
            last, kind, size = raw & 1, (raw >> 1) & 3, raw >> 3
            end = pos + 3 + (1 if kind == 1 else size)
            out = dobj.decompress(data[pos:end])
            if kind in (0, 1) and len(out) != size:  # raw and RLE blocks: the size is known, check it
                raise ValueError(f"block at byte {pos}: {len(out)} bytes out, {size} expected")
            content += out
            pos = end
            ends.append(pos)
            produced.append(len(content))
            if last:
                break
        if checksum:
            content += dobj.decompress(data[pos : pos + 4])
            pos += 4
    return ends, produced, bytes(content), frames


def record_ends(content: bytes) -> list[int]:
    """Decompressed offset just past each record (a 4-byte big-endian length, then the record)."""
    ends, at = [], 0
    while at + 4 <= len(content):
        at += 4 + int.from_bytes(content[at : at + 4], "big")
        ends.append(at)
    return ends


def cuts(path: str, workdir: str) -> dict[str, int]:
    with open(path, "rb") as f:
        data = f.read()
    full = list(streamtape.iter_records(path))
    ends, produced, content, frames = block_ends(data)
    rec_ends = record_ends(content)
    if len(rec_ends) != len(full):
        raise SystemExit(f"{path}: {len(rec_ends)} records in the content, {len(full)} read back")
    counts = {"total": 0, "kept": 0, "error": 0, "short": 0, "not_prefix": 0, "nothing": 0}
    counts["blocks"] = len(ends)
    in_block = [bisect.bisect_right(rec_ends, p) for p in produced]
    counts["most_per_block"] = max(b - a for a, b in zip([0, *in_block], in_block, strict=False))
    counts["frames"], counts["records"], counts["size"] = frames, len(full), len(data)
    cut_path = os.path.join(workdir, "cut.tape")
    for c in range(len(data)):
        done = bisect.bisect_right(ends, c)  # blocks complete within the first c bytes
        flushed = produced[done - 1] if done else 0
        due = bisect.bisect_right(rec_ends, flushed)  # records whose bytes end in those blocks
        with open(cut_path, "wb") as f:
            f.write(data[:c])
        try:
            got = list(streamtape.iter_records(cut_path))
            error = False
        except streamtape.TapeError:
            got, error = [], True
        counts["total"] += 1
        counts["nothing"] += not got
        if got != full[: len(got)]:
            counts["not_prefix"] += 1
        elif len(got) >= due:
            counts["kept"] += 1
        elif error:
            counts["error"] += 1
        else:
            counts["short"] += 1
    return counts


def compact_with_cli(path: str) -> str | None:
    """Run ``streamtape compact`` on a copy if this version's CLI has that command; the copy, or None."""
    cli = [sys.executable, "-c", "from streamtape.cli import main; main()", "compact"]
    if subprocess.run([*cli, "--help"], capture_output=True).returncode != 0:
        return None
    copy = path + ".compacted.tape"
    shutil.copyfile(path, copy)
    done = subprocess.run([*cli, copy], capture_output=True, text=True)
    if done.returncode != 0:
        print(f"(`streamtape compact {copy}` failed: {done.stderr.strip()[:200]})")
        return None
    return copy


def cut_table(emu: Emulator, tmp: str) -> None:
    path = os.path.join(tmp, "six.tape")
    record_six(emu, path)
    tapes = {"recorded, client closed": path}
    saved = os.path.join(tmp, "six.saved.tape")
    streamtape.open_tape(path).save(saved)
    tapes["`Tape.save` of it"] = saved
    compacted = compact_with_cli(path)
    if compacted:
        tapes["`streamtape compact` of it"] = compacted
    exchanges = len(streamtape.open_tape(path).exchanges)
    print(f"\ncuts at every offset of a closed {exchanges}-exchange tape\n")
    print(
        "| tape | cuts keeping everything flushed before the cut / total cuts | error with records due | "
        "fewer records than due | not a prefix | cuts giving nothing (error or no record) | size | "
        "frames / blocks / records | most records ending in one block |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, tape in tapes.items():
        c = cuts(tape, tmp)
        print(
            f"| {name} | {c['kept']} / {c['total']} | {c['error']} | {c['short']} | {c['not_prefix']} | "
            f"{c['nothing']} | {c['size']:,} | {c['frames']} / {c['blocks']} / {c['records']} | "
            f"{c['most_per_block']} |"
        )
    if not compacted:
        print("\n(this version's CLI has no `compact` command: no row for it)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="60-event streams, 2 rounds")
    parser.add_argument("--events", type=int, default=None, help="events per stream (default 120)")
    parser.add_argument("--rounds", type=int, default=None, help="live-tape rounds (default 5)")
    args = parser.parse_args()
    events = args.events or (60 if args.quick else 120)
    rounds = args.rounds or (2 if args.quick else 5)
    started = time.perf_counter()
    with Emulator() as emu, tempfile.TemporaryDirectory(prefix="streamtape-bench-") as tmp:
        live_tape(emu, tmp, events, rounds)
        cut_table(emu, tmp)
    print(f"\n(run {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
