"""``streamtape play``: a recorded stream shown at its recorded pace, like a terminal-session player.

The timing is the replay transports' own plan (``schedule.plan``), so what the terminal shows is what a
replaying client would have received, when it would have received it.
"""

from __future__ import annotations

import time
from typing import TextIO

from ..analysis.providers import detect, new_assembler
from ..analysis.sse import SSEDecoder
from ..model import Exchange
from ..replay.schedule import plan


def play_exchange(exchange: Exchange, *, speed: float, max_gap: float | None, raw: bool, out: TextIO) -> None:
    """Write the exchange's text (or raw bytes) to ``out`` as it arrived; then how it ended."""
    steps = plan(exchange, speed=speed, max_gap=max_gap)
    request = exchange.request
    content_type = ""
    if exchange.response is not None:
        content_type = next((v for n, v in exchange.response.headers if n.lower() == "content-type"), "")
    raw = raw or "text/event-stream" not in content_type.lower()  # not a stream: show the body itself
    decoder = SSEDecoder()
    assembler = None
    shown = 0
    binary = getattr(out, "buffer", None)

    def show(data: bytes) -> None:
        nonlocal assembler, shown
        if raw:
            if binary is not None:
                out.flush()
                binary.write(data)
                binary.flush()
            else:
                out.write(data.decode("utf-8", "replace"))
            return
        events = decoder.feed(data, 0)
        if events and assembler is None:
            assembler = new_assembler(detect(request.url, request.body, content_type, events))
        for event in events:
            assembler.feed(event)  # type: ignore[union-attr]
        if assembler is not None:
            text = assembler.result().text
            if len(text) > shown:
                out.write(text[shown:])
                shown = len(text)
        out.flush()

    start = time.perf_counter()
    for step in steps:
        delay = start + step.at - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        if step.kind == "chunk":
            show(step.data)
        elif step.kind == "chunks":
            for data in step.run or []:
                show(data)
        elif step.kind == "error":
            out.write(f"\n[{step.error_type}: {step.message}]\n")
        elif step.kind == "end":
            out.write(f"\n[{exchange.end.outcome}]\n")
    out.flush()
