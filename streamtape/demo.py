"""``streamtape demo``: the whole loop on one machine, no network, no API key.

Starts the SSE emulator on a free loopback port, streams a chat completion through the real OpenAI SDK with
a recording transport in its HTTP client, and shows what the tape holds.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from collections.abc import Callable

from .analysis.diagnose import diagnose
from .emulator import Emulator
from .report.diagnosis import diagnosis_lines
from .report.summary import info_lines
from .storage.reader import open_tape

Echo = Callable[[str], None]


class MissingExtra(RuntimeError):
    """An optional dependency the demo needs is not installed (the CLI: one line, exit 2)."""


def _require_sdk() -> None:
    try:
        import openai  # noqa: F401
    except ImportError as exc:  # the demo extra was not installed
        raise MissingExtra(
            f"streamtape demo needs the OpenAI SDK ({exc.name} is missing): pip install 'streamtape[demo]'"
        ) from None


def openai_chat_text(base_url: str, transport: object) -> str:
    """Stream one chat completion through the OpenAI SDK over ``transport``; return the SDK's text."""
    _require_sdk()
    import httpx2
    import openai

    client = openai.OpenAI(
        api_key="sk-demo-not-a-real-key",
        base_url=base_url,
        http_client=httpx2.Client(transport=transport),  # type: ignore[arg-type]
        max_retries=0,
    )
    with client:
        stream = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "Say something about tapes."}],
            stream=True,
            stream_options={"include_usage": True},
        )
        return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)


def _preview(text: str) -> str:
    return f"{text[:60]!r}{'...' if len(text) > 60 else ''}"


def run_demo(path: str | None, echo: Echo = print) -> str:
    """Run the demo; returns the tape's path (kept, so the user can look at it afterwards)."""
    _require_sdk()
    from .httpx2 import RecordingTransport, ReplayTransport

    if path is None:
        path = os.path.join(tempfile.mkdtemp(prefix="streamtape-demo-"), "demo.tape")
    with Emulator() as emulator:
        echo(f"emulator  listening on {emulator.url()} (OpenAI Chat Completions wire format)")
        base_url = emulator.url(events=40, pace_ms=15, split_utf8=True) + "/v1"
        started = time.perf_counter()
        text = openai_chat_text(base_url, RecordingTransport(path, meta={"demo": True}))
        elapsed = time.perf_counter() - started
    echo(f"recorded  {path} in {elapsed * 1000:.0f} ms through the OpenAI SDK: {_preview(text)}")
    echo("")
    tape = open_tape(path)
    for line in info_lines(tape):
        echo(line)
    echo("")
    echo("emulator  stopped: the replays below touch no network")
    for label, speed in (("instantly", math.inf), ("at 10x", 10.0)):
        started = time.perf_counter()
        again = openai_chat_text(base_url, ReplayTransport(tape, speed=speed))
        elapsed = time.perf_counter() - started
        verdict = "the same text" if again == text else "A DIFFERENT TEXT"
        echo(f"replayed  {label:<9} in {elapsed * 1000:6.1f} ms through the OpenAI SDK: {verdict}")
    echo("")
    exchange = tape.exchanges[0]
    for line in diagnosis_lines(0, exchange, diagnose(exchange), colour=False):
        echo(line)
    echo("")
    echo(
        f"next      streamtape diagnose {path}; streamtape play {path} --speed 2; streamtape cat {path} | head"
    )
    return path
