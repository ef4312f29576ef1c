"""Diagnose throughput: MB/s of a large OpenAI stream tape, against the OpenAI SDK decoding the same bytes.

The tape: 20,000 chat-completion events from the emulator's generator (realistic chunks with obfuscation),
as recorded network reads (some events split across reads). Timed in this process, interleaved rounds,
medians:

- SDK SSE: ``openai._streaming.SSEDecoder().iter_bytes()`` over the same chunks (the SDK's own decoder);
- SDK SSE + JSON: the same, plus ``sse.json()`` per event, the least the SDK does before building objects;
- SDK stream: ``client.chat.completions.create(stream=True)`` over an httpx2 transport that serves the
  same chunks from memory: the SDK's whole decoding path, objects included (one request's overhead too);
- streamtape diagnose: ``streamtape.diagnose(exchange)``: SSE decoding with hazard tracking, JSON, assembly
  of text / tool calls / usage, timing statistics.

    python benchmarks/diagnose.py
"""

from __future__ import annotations

import statistics
import time

import httpx2
import openai
from anthropic._streaming import SSEDecoder as AnthropicDecoder
from openai._streaming import SSEDecoder as OpenAIDecoder

import streamtape
from streamtape.emulator import Scenario, anthropic_messages
from streamtape.emulator.openai_chat import stream_events
from streamtape.format.records import Chunk, End, Request, Response
from streamtape.model import Exchange

ROUNDS = 7


class _Chunks(httpx2.SyncByteStream):
    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    def __iter__(self):
        yield from self.chunks


def build_exchange(events: int, provider: str = "openai") -> Exchange:
    if provider == "anthropic":
        request_body = (
            b'{"model":"claude-sonnet-4-5","stream":true,"messages":[{"role":"user","content":"hi"}]}'
        )
        url = "https://api.anthropic.com/v1/messages"
        raw = anthropic_messages.stream_events(
            Scenario(events=events, unicode=True), {"model": "claude-sonnet-4-5", "stream": True}
        )
    else:
        request_body = b'{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}'
        url = "https://api.openai.com/v1/chat/completions"
        raw = stream_events(Scenario(events=events, unicode=True), {"model": "gpt-4o", "stream": True})
    request = Request(1, 0, "POST", url, [], request_body)
    chunks, pending = [], b""
    for i, event in enumerate(raw):  # every third event arrives split across two reads
        if i % 3 == 0:
            half = len(event) // 2
            chunks.append(pending + event[:half])
            pending = event[half:]
        else:
            chunks.append(pending + event)
            pending = b""
    if pending:
        chunks.append(pending)
    records = [Chunk(1, 2_000 + i * 10_000_000, d) for i, d in enumerate(chunks)]
    head = Response(1, 1_000, 200, "HTTP/1.1", [("content-type", "text/event-stream")])
    return Exchange(0, 1, request, head, records, End(1, records[-1].t_ns + 1, "complete"))


def main() -> None:
    exchange = build_exchange(20_000)
    data = [c.data for c in exchange.chunks]
    megabytes = sum(map(len, data)) / 1e6

    def sdk_sse() -> int:
        return sum(1 for _ in OpenAIDecoder().iter_bytes(iter(data)))

    def sdk_sse_json() -> int:
        n = 0
        for sse in OpenAIDecoder().iter_bytes(iter(data)):
            if sse.data != "[DONE]":
                sse.json()
            n += 1
        return n

    def sdk_stream() -> int:
        class Memory(httpx2.BaseTransport):
            def handle_request(self, request: httpx2.Request) -> httpx2.Response:
                return httpx2.Response(
                    200, headers={"content-type": "text/event-stream"}, stream=_Chunks(data)
                )

        client = openai.OpenAI(
            api_key="sk-bench", http_client=httpx2.Client(transport=Memory()), max_retries=0
        )
        stream = client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        return sum(1 for _ in stream) + 1  # + the [DONE] event the SDK consumes

    def ours() -> int:
        return streamtape.diagnose(exchange).events

    contenders = (
        ("SDK SSE", sdk_sse),
        ("SDK SSE + JSON", sdk_sse_json),
        ("SDK stream", sdk_stream),
        ("streamtape diagnose", ours),
    )
    runs: dict[str, list[float]] = {name: [] for name, _ in contenders}
    counts = {}
    for _ in range(ROUNDS):
        for name, fn in contenders:
            start = time.perf_counter()
            counts[name] = fn()
            runs[name].append(megabytes / (time.perf_counter() - start))
    assert len(set(counts.values())) == 1, counts  # all saw the same events
    print(
        f"{len(exchange.chunks)} chunks, {megabytes:.1f} MB, {counts['SDK SSE']} events; medians of {ROUNDS} rounds"
    )
    print("| decoder | MB/s | streamtape diagnose is ... faster |")
    print("|---|---|---|")
    ours_rate = statistics.median(runs["streamtape diagnose"])
    for name, values in runs.items():
        rate = statistics.median(values)
        print(f"| {name} | {rate:.1f} | {ours_rate / rate:.2f}x |")
    anthropic_rows()


def anthropic_rows() -> None:
    """The same comparison on an Anthropic stream of similar size (``event:`` + ``data:`` events) against the
    Anthropic SDK's ``SSEDecoder``, timed in this run like the rows above."""
    exchange = build_exchange(50_000, "anthropic")
    data = [c.data for c in exchange.chunks]
    megabytes = sum(map(len, data)) / 1e6

    def sdk_sse() -> int:
        return sum(1 for _ in AnthropicDecoder().iter_bytes(iter(data)))

    def ours() -> int:
        return streamtape.diagnose(exchange).events

    runs: dict[str, list[float]] = {"Anthropic SDK SSE": [], "streamtape diagnose (Anthropic)": []}
    counts = {}
    for _ in range(ROUNDS):
        for name, fn in zip(runs, (sdk_sse, ours), strict=True):
            start = time.perf_counter()
            counts[name] = fn()
            runs[name].append(megabytes / (time.perf_counter() - start))
    assert len(set(counts.values())) == 1, counts
    print(
        f"\nAnthropic: {len(exchange.chunks)} chunks, {megabytes:.1f} MB, {counts['Anthropic SDK SSE']} events"
    )
    print("| decoder | MB/s | streamtape diagnose is ... faster |")
    print("|---|---|---|")
    ours_rate = statistics.median(runs["streamtape diagnose (Anthropic)"])
    for name, values in runs.items():
        rate = statistics.median(values)
        print(f"| {name} | {rate:.1f} | {ours_rate / rate:.2f}x |")


if __name__ == "__main__":
    main()
