"""``streamtape demo``: the whole loop on one machine, no network, no API key.

Starts the SSE emulator on a free loopback port, streams a chat completion through the real OpenAI SDK with
a recording transport in its HTTP client, and shows what the tape holds.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable

from .emulator import Emulator
from .tape import open_tape

Echo = Callable[[str], None]


def record_openai_stream(path: str, emulator: Emulator, **knobs: object) -> str:
    """Stream one chat completion through the OpenAI SDK, recording it to ``path``; return the SDK's text."""
    try:
        import httpx2
        import openai
    except ImportError as exc:  # the demo extra was not installed
        raise SystemExit(
            f"streamtape demo needs the OpenAI SDK ({exc.name} is missing): pip install 'streamtape[demo]'"
        ) from None
    from .httpx2 import RecordingTransport

    transport = RecordingTransport(path, meta={"demo": True})
    client = openai.OpenAI(
        api_key="sk-demo-not-a-real-key",
        base_url=emulator.url(**knobs) + "/v1",
        http_client=httpx2.Client(transport=transport),
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


def run_demo(path: str | None, echo: Echo = print) -> str:
    """Run the demo; returns the tape's path (kept, so the user can look at it afterwards)."""
    if path is None:
        path = os.path.join(tempfile.mkdtemp(prefix="streamtape-demo-"), "demo.tape")
    with Emulator() as emulator:
        echo(f"emulator  listening on {emulator.url()} (OpenAI Chat Completions wire format)")
        started = time.perf_counter()
        text = record_openai_stream(path, emulator, events=40, pace_ms=15, split_utf8=True)
        elapsed = time.perf_counter() - started
    echo(f"recorded  {path} in {elapsed * 1000:.0f} ms through the OpenAI SDK")
    echo(f"text      {text[:72]!r}{'...' if len(text) > 72 else ''}")
    echo("")
    from .cli import info_lines

    for line in info_lines(open_tape(path)):
        echo(line)
    echo("")
    echo(f"next      streamtape cat {path} | head")
    return path
