"""What does recording cost per chunk? The recorder's hot path against a plain ``list.append``.

Both run in this process on the same realistic chunks (OpenAI chat chunks from the emulator's generator),
interleaved in rounds, and the figure is the ratio of medians, so machine noise cancels out:

- baseline: ``chunks.append(data)``: the least any code that keeps the bytes can do;
- encode: building the ``Chunk`` record and encoding it into the frame buffer (``codec.encode_record``);
- record: ``ExchangeLog.chunk(data)``, the recording transport's whole per-chunk path: clock read,
  record, lock, encode, with the writer's background flushes (compression + write) running as they do live.

    python benchmarks/record_cost.py
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from streamtape.emulator import Scenario
from streamtape.emulator.openai_chat import stream_events
from streamtape.format.codec import encode_record
from streamtape.format.records import Chunk
from streamtape.record.recorder import Recorder

ROUNDS = 15


def chunks() -> list[bytes]:
    request = {"model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    return stream_events(Scenario(events=2000), request)


def per_chunk_ns(fn, data: list[bytes]) -> float:
    start = time.perf_counter_ns()
    fn(data)
    return (time.perf_counter_ns() - start) / len(data)


def main() -> None:
    data = chunks()

    def baseline(items: list[bytes]) -> None:
        kept: list[bytes] = []
        for d in items:
            kept.append(d)

    def encode(items: list[bytes]) -> None:
        buf = bytearray()
        for i, d in enumerate(items):
            encode_record(Chunk(1, i, d), buf)

    with tempfile.TemporaryDirectory() as tmp:
        recorder = Recorder(Path(tmp) / "bench.tape", redact=False)
        log = recorder.begin("POST", "http://127.0.0.1/v1/chat/completions", [], b"{}")
        log.response(200, "HTTP/1.1", [])

        def record(items: list[bytes]) -> None:
            for d in items:
                log.chunk(d)

        results: dict[str, list[float]] = {"baseline": [], "encode": [], "record": []}
        for _ in range(ROUNDS):
            for name, fn in (("baseline", baseline), ("encode", encode), ("record", record)):
                results[name].append(per_chunk_ns(fn, data))
        log.complete()
        recorder.close()

    base = statistics.median(results["baseline"])
    size = sum(map(len, data)) / len(data)
    print(f"{len(data)} chunks of {size:.0f} B on average, {ROUNDS} rounds, medians")
    print("| path | ns per chunk | ratio to list.append |")
    print("|---|---|---|")
    for name in ("baseline", "encode", "record"):
        med = statistics.median(results[name])
        print(f"| {name} | {med:.0f} | {med / base:.1f}x |")


if __name__ == "__main__":
    main()
