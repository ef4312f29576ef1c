"""Replaying tapes through the OpenAI and Anthropic SDKs (both on httpx2), sync and async.

Each scenario is recorded through the real SDK from an emulator of its own, which is stopped before the
replay, so nothing the replay does can reach a server. The SDK then gets the tape through streamtape's
replay transport, with the same settings (retries, timeouts), and must assemble the same thing: text,
tool-call arguments, finish / stop reason, the same exception (class, library, message, cause), and the
same HTTP statuses in the same order (its own retry logic runs again against the recorded attempts).
Raw chunk boundaries are not visible through an SDK, so the replay is also recorded and the two tapes
compared chunk for chunk.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import openai
import pytest
from helpers import MESSAGES, comparable, unused_port

import streamtape
import streamtape.httpx2
from streamtape.emulator import Emulator, Scenario, expected_text, expected_tool_calls

pytestmark = pytest.mark.timeout(30)

IS_ASYNC = pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])


@dataclass
class Outcome:
    """What an SDK call came to, in plain values that compare with ``==``."""

    text: str = ""
    tools: list[Any] = field(default_factory=list)
    finish: str | None = None
    error: tuple[str, str, str] | None = None  # (module, class, message)
    cause: tuple[str, str, str] | None = None
    statuses: list[int] = field(default_factory=list)


def _describe(exc: BaseException | None) -> tuple[str, str, str] | None:
    return None if exc is None else (type(exc).__module__.partition(".")[0], type(exc).__name__, str(exc))


def _caught(outcome: Outcome, exc: BaseException) -> None:
    """The exception, and when the SDK wrapped an httpx2 one, that one too (a raw httpx2 exception's own
    cause is the network layer's, which a replay has no reason to fake)."""
    outcome.error = _describe(exc)
    if isinstance(exc, openai.OpenAIError | anthropic.AnthropicError):
        outcome.cause = _describe(exc.__cause__)


@dataclass(frozen=True)
class Case:
    name: str
    knobs: dict[str, Any] | None  # None: nothing listens
    read_timeout: float | None = None
    max_retries: int = 0


def _timeout(case: Case) -> httpx2.Timeout:
    return httpx2.Timeout(5.0) if case.read_timeout is None else httpx2.Timeout(5.0, read=case.read_timeout)


def _transports(is_async: bool) -> tuple[type, type]:
    adapter = streamtape.httpx2
    if is_async:
        return adapter.AsyncRecordingTransport, adapter.AsyncReplayTransport
    return adapter.RecordingTransport, adapter.ReplayTransport


def _hooks(outcome: Outcome, is_async: bool) -> dict[str, list[Callable[..., Any]]]:
    """An httpx2 response hook noting every status the SDK receives, retried attempts included."""
    if is_async:

        async def note_async(response: httpx2.Response) -> None:
            outcome.statuses.append(response.status_code)

        return {"response": [note_async]}

    def note(response: httpx2.Response) -> None:
        outcome.statuses.append(response.status_code)

    return {"response": [note]}


# -- OpenAI -------------------------------------------------------------------------------------------


def _openai_chunk(outcome: Outcome, chunk: Any, arguments: dict[int, str]) -> None:
    for choice in chunk.choices:
        outcome.text += choice.delta.content or ""
        for call in choice.delta.tool_calls or []:
            arguments[call.index] = arguments.get(call.index, "") + (call.function.arguments or "")
        outcome.finish = choice.finish_reason or outcome.finish


def run_openai(transport: Any, base_url: str, case: Case, *, is_async: bool) -> Outcome:
    outcome, arguments = Outcome(), {}
    options = {"api_key": "sk-test", "max_retries": case.max_retries, "timeout": _timeout(case)}
    request = {"model": "gpt-test", "messages": MESSAGES, "stream": True}
    if is_async:

        async def run() -> None:
            http = httpx2.AsyncClient(transport=transport, event_hooks=_hooks(outcome, True))
            async with openai.AsyncOpenAI(http_client=http, base_url=base_url + "/v1", **options) as client:
                try:
                    async for chunk in await client.chat.completions.create(**request):
                        _openai_chunk(outcome, chunk, arguments)
                except openai.OpenAIError as exc:
                    _caught(outcome, exc)

        asyncio.run(run())
    else:
        http = httpx2.Client(transport=transport, event_hooks=_hooks(outcome, False))
        with openai.OpenAI(http_client=http, base_url=base_url + "/v1", **options) as client:
            try:
                for chunk in client.chat.completions.create(**request):
                    _openai_chunk(outcome, chunk, arguments)
            except openai.OpenAIError as exc:
                _caught(outcome, exc)
    outcome.tools = [arguments[i] for i in sorted(arguments)]
    return outcome


OPENAI_CASES = [
    Case("text", {"events": 8, "unicode": True, "split_utf8": True}),
    Case("tools", {"events": 4, "tools": 2, "unicode": True, "split": 3}),
    Case("gzip", {"events": 5, "gzip": True}),
    Case("reset", {"reset_at": 3}),
    Case("cut", {"cut_at": 3}),
    Case("read-timeout", {"stall_at": 2, "stall_s": 0.3}, read_timeout=0.1),
    Case("refused", None),
    Case("retry-429", {"status": 429, "retry_after": 0.01, "fail_first": 1, "events": 3}, max_retries=1),
]


# -- Anthropic ----------------------------------------------------------------------------------------


def _anthropic_event(outcome: Outcome, event: Any, arguments: list[str]) -> None:
    if event.type == "content_block_delta":
        if event.delta.type == "text_delta":
            outcome.text += event.delta.text
        elif event.delta.type == "input_json_delta":
            arguments.append(event.delta.partial_json)


def _anthropic_final(outcome: Outcome, message: Any, arguments: list[str]) -> None:
    outcome.finish = message.stop_reason
    # Both what the SDK parsed and the argument pieces as they came.
    outcome.tools = [[b.input for b in message.content if b.type == "tool_use"], "".join(arguments)]


def run_anthropic(transport: Any, base_url: str, case: Case, *, is_async: bool) -> Outcome:
    outcome, arguments = Outcome(), []
    options = {"api_key": "sk-test", "max_retries": case.max_retries, "timeout": _timeout(case)}
    request = {"model": "claude-test", "max_tokens": 100, "messages": MESSAGES}
    caught = (anthropic.AnthropicError, httpx2.HTTPError)
    if is_async:

        async def run() -> None:
            http = httpx2.AsyncClient(transport=transport, event_hooks=_hooks(outcome, True))
            async with anthropic.AsyncAnthropic(http_client=http, base_url=base_url, **options) as client:
                try:
                    async with client.messages.stream(**request) as stream:
                        async for event in stream:
                            _anthropic_event(outcome, event, arguments)
                        _anthropic_final(outcome, await stream.get_final_message(), arguments)
                except caught as exc:
                    _caught(outcome, exc)

        asyncio.run(run())
        return outcome
    http = httpx2.Client(transport=transport, event_hooks=_hooks(outcome, False))
    with anthropic.Anthropic(http_client=http, base_url=base_url, **options) as client:
        try:
            with client.messages.stream(**request) as stream:
                for event in stream:
                    _anthropic_event(outcome, event, arguments)
                _anthropic_final(outcome, stream.get_final_message(), arguments)
        except caught as exc:
            _caught(outcome, exc)
    return outcome


TOOL_USE = {"events": 5, "tools": 1, "unicode": True, "text": "Let me check ✓.", "split": 2}
ANTHROPIC_CASES = [
    Case("tool-use", TOOL_USE),
    Case("split-utf8", {"events": 6, "split_utf8": True}),
    Case("reset", {"reset_at": 3}),
    Case("read-timeout", {"stall_at": 2, "stall_s": 0.3}, read_timeout=0.1),
    Case("refused", None),
    Case("retry-529", {"status": 529, "fail_first": 1, "retry_after": 0.01, "events": 3}, max_retries=2),
]

SDKS: dict[str, Callable[..., Outcome]] = {"openai": run_openai, "anthropic": run_anthropic}


# -- recordings ---------------------------------------------------------------------------------------


@dataclass
class Recorded:
    path: Path
    base_url: str
    outcome: Outcome
    tape: streamtape.Tape


class Recordings:
    """Each (sdk, sync/async, case) recorded once per module, on first use, from an emulator of its own."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._done: dict[tuple[str, bool, str], Recorded] = {}

    def get(self, sdk: str, is_async: bool, case: Case) -> Recorded:
        key = (sdk, is_async, case.name)
        if key not in self._done:
            self._done[key] = self._record(sdk, is_async, case)
        return self._done[key]

    def _record(self, sdk: str, is_async: bool, case: Case) -> Recorded:
        path = self.directory / f"{sdk}-{'async' if is_async else 'sync'}-{case.name}.tape"
        recording, _ = _transports(is_async)
        if case.knobs is None:
            base_url = f"http://127.0.0.1:{unused_port()}"
            outcome = SDKS[sdk](recording(path), base_url, case, is_async=is_async)
        else:
            with Emulator() as emu:
                base_url = emu.url(**case.knobs)
                outcome = SDKS[sdk](recording(path), base_url, case, is_async=is_async)
                assert len(emu.requests) == 1 + (case.max_retries and 1)
            assert emu.errors == []
        tape = streamtape.open_tape(path)
        assert not tape.incomplete
        return Recorded(path, base_url, outcome, tape)


@pytest.fixture(scope="module")
def sdk_recordings(tmp_path_factory: pytest.TempPathFactory) -> Recordings:
    return Recordings(tmp_path_factory.mktemp("sdk-recordings"))


def replay(sdk: str, is_async: bool, case: Case, rec: Recorded, *, into: Path | None = None) -> Outcome:
    """The SDK call again, answered by the tape (and recorded ``into`` a new tape, if given)."""
    recording, replaying = _transports(is_async)
    transport = replaying(rec.path, speed=math.inf)
    if into is not None:
        transport = recording(into, transport=transport)
    return SDKS[sdk](transport, rec.base_url, case, is_async=is_async)


def assert_same_outcome(replayed: Outcome, recorded: Outcome, case: Case) -> None:
    if case.name != "read-timeout":
        assert replayed == recorded
        return
    # Under the recording's own read timeout, the replay raises ReadTimeout from its virtual clock, in its
    # own words: the SDK's exception (or the raw httpx2 one) is of the same class, the rest is the same.
    assert (replayed.text, replayed.tools, replayed.finish) == (
        recorded.text,
        recorded.tools,
        recorded.finish,
    )
    assert replayed.statuses == recorded.statuses
    assert replayed.error is not None and recorded.error is not None
    assert replayed.error[:2] == recorded.error[:2]
    if replayed.error[0] != "httpx2":
        assert replayed.error == recorded.error
        assert replayed.cause is not None and recorded.cause is not None
        assert replayed.cause[:2] == recorded.cause[:2] == ("httpx2", "ReadTimeout")
    else:
        assert replayed.error[1] == "ReadTimeout"


# -- the SDKs get what they got -------------------------------------------------------------------------


@IS_ASYNC
@pytest.mark.parametrize("case", OPENAI_CASES, ids=[c.name for c in OPENAI_CASES])
def test_openai_replay_gives_the_sdk_what_it_got_when_recording(
    sdk_recordings: Recordings, is_async: bool, case: Case
) -> None:
    rec = sdk_recordings.get("openai", is_async, case)
    replayed = replay("openai", is_async, case, rec)
    assert_same_outcome(replayed, rec.outcome, case)


@IS_ASYNC
@pytest.mark.parametrize("case", ANTHROPIC_CASES, ids=[c.name for c in ANTHROPIC_CASES])
def test_anthropic_replay_gives_the_sdk_what_it_got_when_recording(
    sdk_recordings: Recordings, is_async: bool, case: Case
) -> None:
    rec = sdk_recordings.get("anthropic", is_async, case)
    replayed = replay("anthropic", is_async, case, rec)
    assert_same_outcome(replayed, rec.outcome, case)


@IS_ASYNC
def test_openai_replay_of_text_and_tool_calls_is_what_the_emulator_sent(
    sdk_recordings: Recordings, is_async: bool
) -> None:
    text_case, tools_case = OPENAI_CASES[0], OPENAI_CASES[1]
    text = replay("openai", is_async, text_case, sdk_recordings.get("openai", is_async, text_case))
    assert text.error is None and text.finish == "stop"
    assert text.text == expected_text(Scenario(**text_case.knobs))
    tools = replay("openai", is_async, tools_case, sdk_recordings.get("openai", is_async, tools_case))
    assert tools.error is None and tools.finish == "tool_calls"
    expected = expected_tool_calls(Scenario(**tools_case.knobs))
    assert [json.loads(a) for a in tools.tools] == [arguments for _, arguments in expected]


@IS_ASYNC
def test_anthropic_replay_of_tool_use_is_what_the_emulator_sent(
    sdk_recordings: Recordings, is_async: bool
) -> None:
    case = ANTHROPIC_CASES[0]
    replayed = replay("anthropic", is_async, case, sdk_recordings.get("anthropic", is_async, case))
    assert replayed.error is None and replayed.finish == "tool_use"
    assert replayed.text == "Let me check ✓."
    inputs, arguments = replayed.tools
    expected = expected_tool_calls(Scenario(**TOOL_USE))[0][1]
    assert inputs == [expected] and json.loads(arguments) == expected


@IS_ASYNC
def test_openai_errors_replay_with_the_sdk_wrapping_the_httpx2_exception(
    sdk_recordings: Recordings, is_async: bool
) -> None:
    wanted = {
        "reset": ("APIConnectionError", "ReadError"),
        "cut": ("APIConnectionError", "RemoteProtocolError"),
        "read-timeout": ("APITimeoutError", "ReadTimeout"),
        "refused": ("APIConnectionError", "ConnectError"),
    }
    for case in OPENAI_CASES:
        if case.name not in wanted:
            continue
        replayed = replay("openai", is_async, case, sdk_recordings.get("openai", is_async, case))
        error, cause = wanted[case.name]
        assert replayed.error is not None and replayed.error[:2] == ("openai", error), case.name
        assert replayed.cause is not None and replayed.cause[:2] == ("httpx2", cause), case.name
        if case.name == "refused":
            assert replayed.statuses == [] and replayed.text == ""
        else:
            assert replayed.statuses == [200] and replayed.text, case.name  # the text before the error


@IS_ASYNC
def test_anthropic_errors_replay_as_the_httpx2_exception_after_the_same_text(
    sdk_recordings: Recordings, is_async: bool
) -> None:
    for case, name in ((ANTHROPIC_CASES[2], "ReadError"), (ANTHROPIC_CASES[3], "ReadTimeout")):
        rec = sdk_recordings.get("anthropic", is_async, case)
        replayed = replay("anthropic", is_async, case, rec)
        assert replayed.error is not None and replayed.error[:2] == ("httpx2", name)
        assert replayed.text == rec.outcome.text


# -- retries through the SDKs' own retry logic ----------------------------------------------------------


@IS_ASYNC
def test_anthropic_retry_after_529_gets_the_529_then_the_stream(
    sdk_recordings: Recordings, is_async: bool
) -> None:
    case = ANTHROPIC_CASES[-1]
    rec = sdk_recordings.get("anthropic", is_async, case)
    assert [e.response.status_code for e in rec.tape.exchanges] == [529, 200]
    replayed = replay("anthropic", is_async, case, rec)
    assert replayed.statuses == rec.outcome.statuses == [529, 200]
    assert replayed.error is None
    assert replayed.text == rec.outcome.text == expected_text(Scenario(**case.knobs))
    assert replayed.finish == "end_turn"


@IS_ASYNC
def test_openai_retry_after_429_gets_the_429_then_the_stream(
    sdk_recordings: Recordings, is_async: bool
) -> None:
    case = OPENAI_CASES[-1]
    rec = sdk_recordings.get("openai", is_async, case)
    assert [e.response.status_code for e in rec.tape.exchanges] == [429, 200]
    replayed = replay("openai", is_async, case, rec)
    assert replayed.statuses == rec.outcome.statuses == [429, 200]
    assert replayed.error is None
    assert replayed.text == rec.outcome.text == expected_text(Scenario(**case.knobs))
    assert replayed.finish == "stop"


@IS_ASYNC
def test_sdk_without_retries_against_a_retry_tape_gets_the_error_status(
    sdk_recordings: Recordings, is_async: bool
) -> None:
    """The same tape, replayed to an SDK that does not retry: it sees the 529 and stops there."""
    case = ANTHROPIC_CASES[-1]
    rec = sdk_recordings.get("anthropic", is_async, case)
    no_retries = Case(case.name, case.knobs, max_retries=0)
    replayed = replay("anthropic", is_async, no_retries, rec)
    assert replayed.statuses == [529]
    assert replayed.error is not None and replayed.error[:2] == ("anthropic", "OverloadedError")


# -- the SDK's view of the chunks: recording the replay gives the same tape --------------------------------


@IS_ASYNC
@pytest.mark.parametrize(
    ("sdk", "case"),
    [("openai", c) for c in OPENAI_CASES] + [("anthropic", c) for c in ANTHROPIC_CASES],
    ids=[f"openai-{c.name}" for c in OPENAI_CASES] + [f"anthropic-{c.name}" for c in ANTHROPIC_CASES],
)
def test_recording_an_sdk_replay_gives_the_same_chunks_and_ends(
    sdk_recordings: Recordings, tmp_path: Path, is_async: bool, sdk: str, case: Case
) -> None:
    rec = sdk_recordings.get(sdk, is_async, case)
    copy = tmp_path / "copy.tape"
    replayed = replay(sdk, is_async, case, rec, into=copy)
    assert_same_outcome(replayed, rec.outcome, case)
    again = streamtape.open_tape(copy)
    assert not again.incomplete
    # The end's message is left out: a replayed read timeout is raised in the replay's own words.
    mine = [comparable(e, end_message=False) for e in again.exchanges]
    assert mine == [comparable(e, end_message=False) for e in rec.tape.exchanges]
