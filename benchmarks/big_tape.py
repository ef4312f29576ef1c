"""Reading one huge tape: the peak memory of diagnosing it, of `info`, and of opening it whole (issue 13).

A 200 MB streamed body (``--mb``; 20 MB with ``--quick``) of OpenAI chat completion events (~270 B each, one
a chunk, ~740,000 chunks) is written as one exchange of a tape. Each reading then runs in a fresh Python
process that reports its own peak RSS (``VmHWM``, Linux); the baseline is a process that imports streamtape
and reads nothing, measured the same way in the same run. Figures: peak RSS, the part above the baseline,
that part per chunk, and as a share of the body.

- ``streamtape diagnose`` and ``info``: the CLI, which reads a tape in one pass holding no body.
- ``open_tape``: the whole tape in memory (the body plus compact chunk arrays).
- ``diagnose(open_tape(...))``: the library's diagnosis of an opened tape.

    python benchmarks/big_tape.py [--quick] [--mb 200]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

from streamtape.format.records import Chunk, End, Header, Record, Request, Response
from streamtape.storage.atomic import write_tape

#: The process's own peak RSS (``VmHWM``; ``ru_maxrss`` would keep the parent's peak across the exec).
_REPORT = "print(next(int(l.split()[1]) * 1024 for l in open('/proc/self/status') if l.startswith('VmHWM')))"
READINGS = {
    "baseline (import streamtape)": "import streamtape",
    "streamtape info": "from streamtape.cli import main; main(['info', sys.argv[1]], standalone_mode=False)",
    "streamtape diagnose": (
        "from streamtape.cli import main; main(['diagnose', sys.argv[1]], standalone_mode=False)"
    ),
    "open_tape": "import streamtape; tape = streamtape.open_tape(sys.argv[1])",
    "diagnose(open_tape(...))": (
        "import streamtape; tape = streamtape.open_tape(sys.argv[1]); streamtape.diagnose(tape.exchanges[0])"
    ),
}


def records(mb: int) -> Iterator[Record]:
    """One OpenAI chat stream of about ``mb`` MB, an event a chunk, 1 ms apart."""
    yield Header("streamtape", (1, 1), "benchmark", time.time_ns())
    yield Request(0, 0, "POST", "https://api.openai.com/v1/chat/completions", [], b'{"stream": true}')
    yield Response(0, 1_000_000, 200, "HTTP/1.1", [("content-type", "text/event-stream")], "OK")
    t = 2_000_000
    size = n = 0
    while size < mb * 1_000_000:
        delta = {"choices": [{"index": 0, "delta": {"content": f" token{n % 1000}"}, "finish_reason": None}]}
        event = {
            "id": "chatcmpl-AbCdEfGhIjKlMnOpQrStUvWxYz012",
            "object": "chat.completion.chunk",
            "created": 1764000000 + n // 50,
            "model": "gpt-4o-2024-08-06",
            "system_fingerprint": "fp_5f20662549",
            **delta,
        }
        data = f"data: {json.dumps(event)}\n\n".encode()
        yield Chunk(0, t, data)
        t += 1_000_000
        size += len(data)
        n += 1
    done = {"id": "chatcmpl-bench", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    yield Chunk(0, t, f"data: {json.dumps(done)}\n\ndata: [DONE]\n\n".encode())
    yield End(0, t + 1_000_000, "complete")


def peak_rss(code: str, path: str) -> tuple[int, float]:
    """The peak RSS in bytes of a fresh process running ``code`` on ``path``, and its wall time."""
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", f"import sys\n{code}\n{_REPORT}", path],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return int(out.strip().splitlines()[-1]), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="20 MB")
    args = parser.parse_args()
    mb = 20 if args.quick else args.mb
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "big.tape")
        write_tape(path, records(mb), level=3)
        import streamtape

        tape = streamtape.open_tape(path)
        chunks, body = len(tape.exchanges[0].chunks), tape.exchanges[0].chunks.nbytes
        del tape
        print(
            f"one stream: {body / 1e6:.0f} MB body, {chunks:,} chunks; tape {os.path.getsize(path) / 1e6:.1f} MB\n"
        )
        print(
            "| reading | peak RSS (MB) | above baseline (MB) | per chunk (B) | share of the body | time (s) |"
        )
        print("|---|---|---|---|---|---|")
        base = 0
        for name, code in READINGS.items():
            rss, took = peak_rss(code, path)
            if not base:
                base = rss
                print(f"| {name} | {rss / 1e6:.0f} | - | - | - | {took:.1f} |")
                continue
            above = rss - base
            print(
                f"| {name} | {rss / 1e6:.0f} | {above / 1e6:.0f} | {above / chunks:.0f} | "
                f"{above / body:.2f} | {took:.1f} |"
            )


if __name__ == "__main__":
    main()
