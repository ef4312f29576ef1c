"""Record the sample tapes in this folder from the emulator, through the real SDKs.

    python samples/make_samples.py

Each sample is a small tape of one situation people debug: a complete stream, a tool call split into many
fragments, a reset mid-stream, a proxy-like stall past the read timeout, an overloaded API retried.
Times and ids differ from run to run (they are real recordings), so the files are rewritten, not compared.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import anthropic
import httpx2
import openai

import streamtape.httpx2
from streamtape.emulator import Emulator

HERE = Path(__file__).resolve().parent
PROMPT = [{"role": "user", "content": "What's the weather in Paris?"}]


def _openai(path: Path, base: str, **kwargs: object) -> None:
    client = openai.OpenAI(
        api_key="sk-sample",
        base_url=base + "/v1",
        http_client=httpx2.Client(
            transport=streamtape.httpx2.RecordingTransport(path, meta={"sample": path.stem})
        ),
        **kwargs,  # type: ignore[arg-type]
    )
    with client, contextlib.suppress(openai.APIError, httpx2.HTTPError):
        for _ in client.chat.completions.create(model="gpt-4o", messages=PROMPT, stream=True):  # type: ignore[arg-type]
            pass


def _anthropic(path: Path, base: str, **kwargs: object) -> None:
    client = anthropic.Anthropic(
        api_key="sk-ant-sample",
        base_url=base,
        http_client=httpx2.Client(
            transport=streamtape.httpx2.RecordingTransport(path, meta={"sample": path.stem})
        ),
        **kwargs,  # type: ignore[arg-type]
    )
    with client, client.messages.stream(model="claude-sonnet-5", max_tokens=512, messages=PROMPT) as s:  # type: ignore[arg-type]
        for _ in s:
            pass


def main() -> None:
    with Emulator() as emu:
        samples = {
            "openai-complete": lambda p: _openai(
                p, emu.url(events=30, pace_ms=5, unicode=True), max_retries=0
            ),
            "openai-tool-calls": lambda p: _openai(p, emu.url(events=12, tools=2, pace_ms=2), max_retries=0),
            "openai-reset": lambda p: _openai(p, emu.url(events=30, reset_at=18, pace_ms=2), max_retries=0),
            "openai-read-timeout": lambda p: _openai(
                p,
                emu.url(events=20, stall_at=12, stall_s=2, pace_ms=2),
                max_retries=0,
                timeout=httpx2.Timeout(5, read=0.5),
            ),
            "anthropic-tool-use": lambda p: _anthropic(
                p, emu.url(events=20, tools=1, pace_ms=2), max_retries=0
            ),
            "anthropic-overloaded-retry": lambda p: _anthropic(
                p, emu.url(events=20, status=529, retry_after=0.01, fail_first=1), max_retries=2
            ),
        }
        for name, make in samples.items():
            path = HERE / f"{name}.tape"
            path.unlink(missing_ok=True)
            make(path)
            print(path.name, path.stat().st_size, "bytes")


if __name__ == "__main__":
    main()
