"""How small is a tape? Realistic OpenAI and Anthropic streams recorded live, against their raw bytes.

Streams come from the emulator (realistic wire format: OpenAI chunks carry obfuscation padding of random
length, Anthropic events are small) through the real SDKs, at a realistic pace (~100 tokens/s), eight at a
time on one async client as a production service would, so blocks are flushed every ~250 ms as they are
live. The ratio is raw response bytes / tape file size: for the tape on disk while the client is still open
(what a killed process would leave), for the closed tape, and after ``streamtape compact`` (level 19).

    python benchmarks/tape_size.py [--events 300] [--streams 8] [--pace-ms 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile

import anthropic
import httpx2
import openai

import streamtape
import streamtape.httpx2
from streamtape.emulator import Emulator
from streamtape.storage.compact import compact

PROMPT = [{"role": "user", "content": "Explain, step by step, why streaming responses break behind proxies."}]


async def _openai(client: openai.AsyncOpenAI, n: int) -> None:
    stream = await client.chat.completions.create(
        model="gpt-4o-2024-08-06",
        messages=PROMPT,
        stream=True,
        stream_options={"include_usage": True},
        seed=n,
    )
    async for _ in stream:
        pass


async def _anthropic(client: anthropic.AsyncAnthropic, n: int) -> None:
    async with client.messages.stream(model="claude-sonnet-5", max_tokens=2048, messages=PROMPT) as stream:
        async for _ in stream:
            pass


async def record(
    provider: str, path: str, emu: Emulator, *, events: int, streams: int, pace_ms: float
) -> None:
    transport = streamtape.httpx2.AsyncRecordingTransport(path)
    http = httpx2.AsyncClient(transport=transport, timeout=60)
    tasks = []
    for n in range(streams):
        knobs = {"events": events, "pace_ms": pace_ms, "seed": n, "tools": 1 if n % 4 == 3 else 0}
        if provider == "openai":
            client = openai.AsyncOpenAI(
                api_key="sk-bench", base_url=emu.url(**knobs) + "/v1", http_client=http
            )
            tasks.append(_openai(client, n))
        else:
            client = anthropic.AsyncAnthropic(api_key="sk-bench", base_url=emu.url(**knobs), http_client=http)
            tasks.append(_anthropic(client, n))
    await asyncio.gather(*tasks)
    await transport.aflush()
    shutil.copy(path, path + ".live")  # the client is still open: what a killed process would leave
    await http.aclose()


def measure(provider: str, workdir: str, emu: Emulator, **kw: int | float) -> dict[str, float]:
    closed = os.path.join(workdir, f"{provider}.tape")
    asyncio.run(record(provider, closed, emu, **kw))  # type: ignore[arg-type]
    live = closed + ".live"
    tape = streamtape.open_tape(closed)
    raw = sum(len(e.body) for e in tape.exchanges)
    chunks = sum(len(e.chunks) for e in tape.exchanges)
    compacted = os.path.join(workdir, f"{provider}.compacted.tape")
    compact(closed, output=compacted)
    assert streamtape.open_tape(compacted).exchanges[0].body == tape.exchanges[0].body
    sizes = {
        name: os.path.getsize(path)
        for name, path in (("live", live), ("closed", closed), ("compacted", compacted))
    }
    return {"exchanges": len(tape.exchanges), "chunks": chunks, "raw": raw, **sizes}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--streams", type=int, default=8)
    parser.add_argument("--pace-ms", type=float, default=10.0)
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="streamtape-bench-")
    print(
        "| provider | streams | chunks | raw bytes | live tape | ratio | closed tape | ratio | compacted | ratio |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    with Emulator() as emu:
        for provider in ("openai", "anthropic"):
            r = measure(
                provider, workdir, emu, events=args.events, streams=args.streams, pace_ms=args.pace_ms
            )
            print(
                f"| {provider} | {r['exchanges']} | {r['chunks']} | {r['raw']:,} | "
                + " | ".join(f"{r[k]:,} | {r['raw'] / r[k]:.1f}x" for k in ("live", "closed", "compacted"))
                + " |"
            )
    shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
