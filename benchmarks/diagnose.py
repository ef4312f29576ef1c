"""Diagnose throughput: MB/s of large provider stream tapes, against each SDK decoding the same bytes.

The tapes: 20,000 OpenAI chat-completion events, 20,000 Responses API events and 50,000 Anthropic events
(about 6 MB each) from the emulator's generators (realistic events with obfuscation), as recorded network
reads (every third event split across two reads); and the OpenAI chat stream again with a ``: ping``
keep-alive comment every 50 events, with ``\\n`` and with ``\\r\\n`` line ends (streams that are unusual
here and there, or throughout). Timed in this process, interleaved rounds, medians:

- SDK SSE: ``openai._streaming.SSEDecoder().iter_bytes()`` over the same chunks (the SDK's own decoder);
  for Anthropic, ``anthropic._streaming.SSEDecoder``;
- SDK SSE + JSON: the same, plus ``sse.json()`` per event, the least the SDK does before building objects;
- SDK stream: ``client.chat.completions.create(stream=True)`` over an httpx2 transport that serves the
  same chunks from memory: the SDK's whole decoding path, objects included (one request's overhead too);
- streamtape diagnose: ``streamtape.diagnose(exchange)``: SSE decoding with hazard tracking, JSON, assembly
  of text / tool calls / usage, timing statistics.

    python benchmarks/diagnose.py
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Iterator

import httpx2
import openai
from anthropic._streaming import SSEDecoder as AnthropicDecoder
from openai._streaming import SSEDecoder as OpenAIDecoder

import streamtape
from streamtape.emulator import Scenario, anthropic_messages, openai_chat, openai_responses
from streamtape.format.records import Chunk, End, Request, Response
from streamtape.model import Exchange

ROUNDS = 7


class _Chunks(httpx2.SyncByteStream):
    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        yield from self.chunks


#: provider -> (URL, request body, event generator)
PROVIDERS = {
    "openai": (
        "https://api.openai.com/v1/chat/completions",
        {"model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": "hi"}]},
        openai_chat.stream_events,
    ),
    "responses": (
        "https://api.openai.com/v1/responses",
        {"model": "gpt-4o", "stream": True, "input": "hi"},
        openai_responses.stream_events,
    ),
    "anthropic": (
        "https://api.anthropic.com/v1/messages",
        {"model": "claude-sonnet-4-5", "stream": True, "messages": [{"role": "user", "content": "hi"}]},
        anthropic_messages.stream_events,
    ),
}


def build_exchange(
    events: int, provider: str = "openai", *, ping_every: int = 0, crlf: bool = False
) -> Exchange:
    url, body, generate = PROVIDERS[provider]
    request = Request(1, 0, "POST", url, [], json.dumps(body, separators=(",", ":")).encode())
    raw = generate(Scenario(events=events, unicode=True), body)
    if ping_every:  # a keep-alive comment block after every ``ping_every`` events
        pinged: list[bytes] = []
        for i, event in enumerate(raw, 1):
            pinged += [event, b": ping\n\n"] if i % ping_every == 0 else [event]
        raw = pinged
    if crlf:
        raw = [event.replace(b"\n", b"\r\n") for event in raw]
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


def race(contenders: dict[str, Callable[[], int]], megabytes: float) -> tuple[dict[str, float], int]:
    """Each contender's median MB/s over interleaved rounds, and the event count they all agree on."""
    runs: dict[str, list[float]] = {name: [] for name in contenders}
    counts = {}
    for _ in range(ROUNDS):
        for name, fn in contenders.items():
            start = time.perf_counter()
            counts[name] = fn()
            runs[name].append(megabytes / (time.perf_counter() - start))
    assert len(set(counts.values())) == 1, counts  # all saw the same events
    return {name: statistics.median(values) for name, values in runs.items()}, counts[next(iter(counts))]


def table(rates: dict[str, float], ours: str) -> None:
    print("| decoder | MB/s | streamtape diagnose is ... faster |")
    print("|---|---|---|")
    for name, rate in rates.items():
        print(f"| {name} | {rate:.1f} | {rates[ours] / rate:.2f}x |")


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

    rates, events = race(
        {
            "SDK SSE": sdk_sse,
            "SDK SSE + JSON": sdk_sse_json,
            "SDK stream": sdk_stream,
            "streamtape diagnose": ours,
        },
        megabytes,
    )
    print(f"{len(exchange.chunks)} chunks, {megabytes:.1f} MB, {events} events; medians of {ROUNDS} rounds")
    table(rates, "streamtape diagnose")
    sdk_rows("Responses API", build_exchange(20_000, "responses"), "OpenAI SDK SSE", OpenAIDecoder)
    sdk_rows("Anthropic", build_exchange(50_000, "anthropic"), "Anthropic SDK SSE", AnthropicDecoder)
    pings = build_exchange(20_000, ping_every=50)
    sdk_rows("OpenAI chat, a ping every 50 events", pings, "OpenAI SDK SSE", OpenAIDecoder)
    crlf = build_exchange(20_000, ping_every=50, crlf=True)
    sdk_rows("OpenAI chat, a ping every 50 events, CRLF", crlf, "OpenAI SDK SSE", OpenAIDecoder)


def sdk_rows(
    title: str, exchange: Exchange, sdk: str, decoder: type[OpenAIDecoder | AnthropicDecoder]
) -> None:
    """The same comparison on another provider's stream (``event:`` + ``data:`` events) of similar size,
    against its SDK's ``SSEDecoder``, timed in this run like the rows above."""
    data = [c.data for c in exchange.chunks]
    megabytes = sum(map(len, data)) / 1e6

    def sdk_sse() -> int:
        return sum(1 for _ in decoder().iter_bytes(iter(data)))

    def ours() -> int:
        return streamtape.diagnose(exchange).events

    ours_name = f"streamtape diagnose ({title})"
    rates, events = race({sdk: sdk_sse, ours_name: ours}, megabytes)
    print(f"\n{title}: {len(exchange.chunks)} chunks, {megabytes:.1f} MB, {events} events")
    table(rates, ours_name)


if __name__ == "__main__":
    main()
