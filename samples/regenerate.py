"""Regenerate every sample tape in this directory: ``python samples/regenerate.py`` from the repository root.

Each sample is one call through a real SDK (OpenAI 3.x or Anthropic 2.x, both on httpx2) to streamtape's
SSE emulator on 127.0.0.1, recorded by ``streamtape.httpx2.RecordingTransport`` with the default redaction
(the fake API key is replaced by a fingerprint). ``SAMPLES`` drives everything: the file, the SDK call, the
emulator's scenario knobs (``streamtape/emulator/scenario.py``), the client's options, and what it shows.

The tapes are recorded into a temporary directory beside this script and renamed into place only once all
of them are recorded, so a failed run leaves the previous samples as they were. The script prints each file
with its size and the verdict of ``streamtape.diagnose`` on each of its exchanges. ``tests/test_samples.py``
replays every sample through the same SDK call (``run``) and checks the verdicts against README.md.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import openai

import streamtape
import streamtape.httpx2
from streamtape.emulator import Emulator, Scenario
from streamtape.emulator.server import SCENARIO_HEADER

HERE = Path(__file__).resolve().parent

OPENAI_KEY = "sk-test-streamtape-samples-0000"
ANTHROPIC_KEY = "sk-ant-test-streamtape-samples-0000"
QUESTION = "What does a tape keep?"
ANSWER = (
    "A tape keeps every chunk of a stream with the time it arrived, so a bug report can carry the stream."
)
TOOL_QUESTION = "What's the weather in Oslo, and where is my order?"
# The tools the emulator's tool calls use (streamtape/emulator/content.py), offered as a real request would.
TOOL_ARGUMENTS = {"get_weather": "location", "search_docs": "query", "lookup_order": "order_id"}


@dataclass
class Result:
    """What the SDK call came to: the text and tool calls it assembled, why it stopped, what it raised."""

    text: str = ""
    finish: str | None = None  # finish_reason, the Responses status, or the Anthropic stop_reason
    tool_calls: dict[int, list[str]] = field(default_factory=dict)  # index -> [name, arguments]
    statuses: list[int] = field(default_factory=list)  # every HTTP status the client received
    error: Exception | None = None


# -- the SDK calls ------------------------------------------------------------------------------------


def _schema(argument: str) -> dict[str, Any]:
    return {"type": "object", "properties": {argument: {"type": "string"}}, "required": [argument]}


def chat_completions(client: openai.OpenAI, out: Result, prompt: str, tools: bool) -> None:
    """``client.chat.completions.create(stream=True)``: text and tool-call pieces joined as they come."""
    extra: dict[str, Any] = {}
    if tools:
        functions = [{"name": n, "parameters": _schema(a)} for n, a in TOOL_ARGUMENTS.items()]
        extra = {"tools": [{"type": "function", "function": f} for f in functions]}
    messages: Any = [{"role": "user", "content": prompt}]
    with client.chat.completions.create(
        model="gpt-4o-mini", messages=messages, stream=True, **extra
    ) as stream:
        for chunk in stream:
            for choice in chunk.choices:
                out.text += choice.delta.content or ""
                for call in choice.delta.tool_calls or []:
                    entry = out.tool_calls.setdefault(call.index, ["", ""])
                    entry[0] += (call.function and call.function.name) or ""
                    entry[1] += (call.function and call.function.arguments) or ""
                out.finish = choice.finish_reason or out.finish


def responses(client: openai.OpenAI, out: Result, prompt: str, tools: bool) -> None:
    """``client.responses.create(stream=True)``: the output text deltas, and the final response's status."""
    with client.responses.create(model="gpt-4o-mini", input=prompt, stream=True) as stream:
        for event in stream:
            if event.type == "response.output_text.delta":
                out.text += event.delta
            elif event.type in ("response.completed", "response.incomplete", "response.failed"):
                out.finish = event.response.status


def messages(client: anthropic.Anthropic, out: Result, prompt: str, tools: bool) -> None:
    """``client.messages.create(stream=True)``: text and tool input pieces, and ``message_delta``'s stop reason."""
    extra: dict[str, Any] = {}
    if tools:
        extra = {"tools": [{"name": n, "input_schema": _schema(a)} for n, a in TOOL_ARGUMENTS.items()]}
    conversation: Any = [{"role": "user", "content": prompt}]
    request = {"model": "claude-sonnet-5", "max_tokens": 300, "messages": conversation, **extra}
    with client.messages.create(**request, stream=True) as stream:
        for event in stream:
            if event.type == "content_block_start" and event.content_block.type == "tool_use":
                out.tool_calls[event.index] = [event.content_block.name, ""]
            elif event.type == "content_block_delta" and event.delta.type == "text_delta":
                out.text += event.delta.text
            elif event.type == "content_block_delta" and event.delta.type == "input_json_delta":
                out.tool_calls[event.index][1] += event.delta.partial_json
            elif event.type == "message_delta":
                out.finish = event.delta.stop_reason or out.finish


# SDK call -> (the SDK's package, the function making it)
CALLS: dict[str, tuple[str, Callable[[Any, Result, str, bool], None]]] = {
    "chat.completions.create": ("openai", chat_completions),
    "responses.create": ("openai", responses),
    "messages.create": ("anthropic", messages),
}

# -- the samples --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    file: str
    call: str  # a key of CALLS, always with stream=True
    knobs: dict[str, Any]  # the emulator's scenario
    shows: str
    max_retries: int = 0
    read_timeout: float = 5.0  # seconds (connect, write and pool: 5 s)
    prompt: str = QUESTION

    @property
    def sdk(self) -> str:
        return CALLS[self.call][0]


PACE = {"events": 18, "text": ANSWER, "pace_ms": 15}  # 18 text deltas, 15 ms apart

SAMPLES = [
    Sample(
        "openai-complete.tape",
        "chat.completions.create",
        PACE,
        "a healthy stream: finish_reason stop, [DONE]",
    ),
    Sample(
        "openai-tool-calls.tape",
        "chat.completions.create",
        {"tools": 2, "pace_ms": 5},
        "two parallel tool calls whose argument fragments interleave",
        prompt=TOOL_QUESTION,
    ),
    Sample(
        "openai-responses-complete.tape",
        "responses.create",
        PACE,
        "a healthy Responses API stream: response.completed",
    ),
    Sample(
        "openai-cut-no-finish-reason.tape",
        "chat.completions.create",
        {**PACE, "drop_final": True},
        "a well-formed body that ends without the finish_reason chunk and [DONE]",
    ),
    Sample(
        "openai-reset.tape",
        "chat.completions.create",
        {**PACE, "reset_at": 9},
        "half an event, then a TCP reset",
    ),
    Sample(
        "openai-read-timeout.tape",
        "chat.completions.create",
        {**PACE, "stall_at": 9, "stall_s": 1.0},
        "a 1 s stall mid-stream under a 0.25 s read timeout",
        read_timeout=0.25,
    ),
    Sample(
        "openai-split-emoji.tape",
        "chat.completions.create",
        {"events": 8, "text": "Shipped on time 🚀 and the tests pass.", "pace_ms": 15, "split_utf8": True},
        "every event sent in two pieces, one of them cut inside the 4-byte rocket emoji",
        prompt="How did the release go?",
    ),
    Sample(
        "anthropic-tool-use.tape",
        "messages.create",
        {"events": 6, "text": "Let me look that up.", "tools": 1, "pace_ms": 10},
        "a healthy stream: a text block, a tool_use block, stop_reason tool_use",
        prompt=TOOL_QUESTION,
    ),
    Sample(
        "anthropic-overloaded-while-streaming.tape",
        "messages.create",
        {**PACE, "error_at": 9},
        "HTTP 200, some text, then an `error` event of type overloaded_error",
    ),
    Sample(
        "anthropic-overloaded-retry.tape",
        "messages.create",
        {**PACE, "status": 529, "fail_first": 1, "retry_after": 0.01},
        "HTTP 529 with its JSON error body, then the SDK's retry, which streams",
        max_retries=2,
    ),
]

# -- running a sample ---------------------------------------------------------------------------------


def run(sample: Sample, root: str, transport: Any) -> Result:
    """Make the sample's SDK call to ``root`` (the URL before ``/v1``) over ``transport``.

    The scenario travels in the emulator's ``x-emulator-scenario`` request header, so the recorded URL is
    the API's own path (``/v1/chat/completions``). The httpx2 client notes every status it receives and
    reads the body of every error response: the SDKs close a response they are about to retry without
    reading it, so without this hook the tape would hold the 529's head and no body.
    """
    out = Result()

    def on_response(response: httpx2.Response) -> None:
        out.statuses.append(response.status_code)
        if response.status_code >= 400:
            response.read()

    options: dict[str, Any] = {
        "http_client": httpx2.Client(transport=transport, event_hooks={"response": [on_response]}),
        "max_retries": sample.max_retries,
        "timeout": httpx2.Timeout(5.0, read=sample.read_timeout),
        "default_headers": {SCENARIO_HEADER: Scenario(**sample.knobs).encode()},
    }
    client: Any
    if sample.sdk == "openai":
        client = openai.OpenAI(api_key=OPENAI_KEY, base_url=root + "/v1", **options)
    else:
        client = anthropic.Anthropic(api_key=ANTHROPIC_KEY, base_url=root, **options)
    with client:  # closing the client closes the transport: a recording is whole on disk after this
        try:
            CALLS[sample.call][1](client, out, sample.prompt, bool(sample.knobs.get("tools")))
        except (openai.APIError, anthropic.APIError, httpx2.TransportError) as exc:
            out.error = (
                exc  # what the SDK raised is part of the sample (Anthropic's lets httpx2's errors out)
            )
    return out


def record(sample: Sample, emulator: Emulator, path: Path) -> Result:
    """Record the sample through its SDK into ``path`` (a new file)."""
    meta = {
        "sample": sample.file.removesuffix(".tape"),
        "sdk": f"{sample.sdk} {version(sample.sdk)}",
        "call": sample.call,
        "shows": sample.shows,
    }
    emulator.reset()  # fail_first counts attempts from 1 again
    return run(sample, emulator.url(), streamtape.httpx2.RecordingTransport(path, meta=meta))


def regenerate(directory: Path) -> list[Path]:
    """Record every sample into ``directory``, replacing each file atomically; returns the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory, prefix=".regenerate-") as scratch:
        with Emulator() as emulator:
            recorded = [Path(scratch) / sample.file for sample in SAMPLES]
            for sample, path in zip(SAMPLES, recorded, strict=True):
                record(sample, emulator, path)
        if emulator.errors:
            raise RuntimeError(f"the emulator failed while serving: {emulator.errors!r}")
        for path in recorded:  # every tape is recorded: only now replace the previous ones
            os.replace(path, directory / path.name)
    return [directory / path.name for path in recorded]


def verdicts(path: Path) -> list[str]:
    """The verdict of ``streamtape.diagnose`` on each exchange of the tape, in order."""
    return [streamtape.diagnose(exchange).verdict for exchange in streamtape.open_tape(path).exchanges]


def main() -> int:
    paths = regenerate(HERE)
    width = max(len(os.path.relpath(path)) for path in paths)
    for path in paths:
        print(f"{os.path.relpath(path):<{width}}  {path.stat().st_size:>5} B  {', '.join(verdicts(path))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
