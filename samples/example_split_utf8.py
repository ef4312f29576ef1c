"""The split UTF-8 character: an emoji's four bytes arrive in two reads.

Starts from ``openai-split-emoji.tape``, where the 🚀 of the answer is cut across two network reads. The SDK
joins bytes before decoding, so it is right; a hand-written SSE reader that decodes each read on its own
(``chunk.decode()``) fails, or with ``errors="replace"`` shows two replacement characters instead.

    python samples/example_split_utf8.py
"""

from __future__ import annotations

import math
from pathlib import Path

import httpx2

import streamtape
import streamtape.httpx2

HERE = Path(__file__).resolve().parent


def main() -> None:
    tape = streamtape.open_tape(HERE / "openai-split-emoji.tape")
    url = tape.exchanges[0].request.url
    transport = streamtape.httpx2.ReplayTransport(tape, speed=math.inf, match="sequence")
    with httpx2.Client(transport=transport) as client, client.stream("POST", url, json={}) as response:
        pieces = list(response.iter_raw())
    try:
        "".join(piece.decode() for piece in pieces)  # the naive reader: decode every read by itself
    except UnicodeDecodeError as exc:
        print(f"naive client: UnicodeDecodeError: {exc.reason} at byte {exc.start} of a read")
    lossy = "".join(piece.decode(errors="replace") for piece in pieces)
    print(f"              with errors='replace': {lossy.count(chr(0xFFFD))} replacement characters")
    d = streamtape.diagnose(tape.exchanges[0])
    print(
        f"streamtape:   verdict {d.verdict}; hazards: {'; '.join(d.hazards)}; text has 🚀: {'🚀' in d.text}"
    )


if __name__ == "__main__":
    main()
