"""The sample tapes in ``samples/``: what ``samples/README.md`` says of each, checked against the tapes.

The verdicts are read from the README's table, so the README and the tapes cannot drift apart; the facts each
row states (error types, statuses, tool calls, hazards) are checked here against ``streamtape.diagnose`` and
the emulator's own account of what it sent. Every sample is also replayed through the SDK call that recorded
it (``run`` in ``samples/regenerate.py``), and recorded afresh from the emulator through the real SDKs.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from helpers import load_samples_script

import streamtape
import streamtape.httpx2
from streamtape.emulator import Scenario, expected_text, expected_tool_calls

pytestmark = pytest.mark.timeout(30)

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
VERDICT = re.compile(r"`(complete|truncated|error)`")


regenerate = load_samples_script()
BY_FILE = {sample.file: sample for sample in regenerate.SAMPLES}


def readme_verdicts() -> dict[str, list[str]]:
    """File -> the verdicts its README row states, one per exchange, in order."""
    rows = {}
    for line in (SAMPLES / "README.md").read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("| `") and cells[0].endswith(".tape`"):
            rows[cells[0].strip("`")] = VERDICT.findall(cells[-1])
    return rows


def diagnoses(path: Path) -> tuple[streamtape.Tape, list[streamtape.Diagnostics]]:
    tape = streamtape.open_tape(path)
    return tape, [streamtape.diagnose(exchange) for exchange in tape.exchanges]


def scenario(file: str) -> Scenario:
    return Scenario(**BY_FILE[file].knobs)


def value(headers: list[tuple[str, str]], name: str) -> str | None:
    return next((v for n, v in headers if n.lower() == name), None)


# -- the facts each README row states: (file, tape, its diagnoses) -> assertions ----------------------------

Facts = Callable[[str, streamtape.Tape, list[streamtape.Diagnostics]], None]


def healthy(finish: str, outcome: str | None = None) -> Facts:
    def check(file: str, tape: streamtape.Tape, d: list[streamtape.Diagnostics]) -> None:
        (one,) = d
        assert (one.status, one.finish_reason, one.errors, one.hazards) == (200, finish, [], [])
        assert outcome is None or one.outcome == outcome
        assert one.text == expected_text(scenario(file))
        calls = [(call["name"], json.loads(call["arguments"])) for call in one.tool_calls]
        assert calls == expected_tool_calls(scenario(file))  # [] for a text-only answer
        assert all(call["valid_json"] for call in one.tool_calls)

    return check


def parallel_tools(file: str, tape: streamtape.Tape, d: list[streamtape.Diagnostics]) -> None:
    healthy("tool_calls")(file, tape, d)
    assert len(d[0].tool_calls) == 2 and len({call["id"] for call in d[0].tool_calls}) == 2
    # The fragments interleave: a piece of call 0 comes after call 1 has begun.
    events = [json.loads(e[6:]) for e in tape.exchanges[0].body.decode().split("\n\n") if e[6:7] == "{"]
    order = [c["index"] for e in events for ch in e["choices"] for c in ch["delta"].get("tool_calls") or []]
    assert 0 in order[order.index(1) :], order


def cut(file: str, tape: streamtape.Tape, d: list[streamtape.Diagnostics]) -> None:
    (one,) = d
    assert tape.exchanges[0].end.outcome == "complete"  # the HTTP body itself ended well
    assert (one.status, one.finish_reason, one.terminal, one.errors) == (200, None, False, [])
    assert one.text == expected_text(scenario(file))  # every text delta came, only the end did not


def broken(error_type: str, hazards: list[str]) -> Facts:
    def check(file: str, tape: streamtape.Tape, d: list[streamtape.Diagnostics]) -> None:
        (exchange,), (one,) = tape.exchanges, d
        assert (exchange.end.outcome, exchange.end.error_type) == ("error", error_type)
        assert one.errors == [f"{error_type}: {exchange.end.message}"] and one.hazards == hazards
        assert one.finish_reason is None
        full = expected_text(scenario(file))
        assert one.text and full.startswith(one.text) and one.text != full

    return check


def read_timeout(file: str, tape: streamtape.Tape, d: list[streamtape.Diagnostics]) -> None:
    broken("ReadTimeout", [])(file, tape, d)
    exchange = tape.exchanges[0]
    waited_s = (exchange.end.t_ns - exchange.chunks[-1].t_ns) / 1e9
    # The client gave up after its read timeout, before the stall was over.
    assert BY_FILE[file].read_timeout <= waited_s < scenario(file).stall_s


def split_emoji(file: str, tape: streamtape.Tape, d: list[streamtape.Diagnostics]) -> None:
    (one,) = d
    assert (one.finish_reason, one.errors) == ("stop", [])
    assert one.text == expected_text(scenario(file)) and "🚀" in one.text
    counts = [re.fullmatch(r"(\d+) UTF-8 characters? split across chunks", h) for h in one.hazards]
    assert [int(m[1]) for m in counts if m] == [1], one.hazards
    assert one.chunks_received == 2 * one.events  # every event in two reads
    assert any(c.data.endswith("🚀".encode()[:1]) for c in tape.exchanges[0].chunks)  # its lead byte, alone


def overloaded_while_streaming(file: str, tape: streamtape.Tape, d: list[streamtape.Diagnostics]) -> None:
    (one,) = d
    assert (one.status, one.finish_reason, one.errors) == (200, None, ["overloaded_error: Overloaded"])
    assert one.text and expected_text(scenario(file)).startswith(one.text)


def retry_after_529(file: str, tape: streamtape.Tape, d: list[streamtape.Diagnostics]) -> None:
    failed, retried = tape.exchanges
    assert [x.status for x in d] == [529, 200]
    assert json.loads(failed.body)["error"]["type"] == "overloaded_error"  # the body is on the tape
    assert d[0].errors[0].startswith("HTTP 529: ") and value(failed.response.headers, "retry-after")
    assert value(retried.request.headers, "x-stainless-retry-count") == "1"
    assert (d[1].finish_reason, d[1].errors) == ("end_turn", [])
    assert d[1].text == expected_text(scenario(file))


FACTS: dict[str, Facts] = {
    "openai-complete.tape": healthy("stop", "client_closed"),
    "openai-tool-calls.tape": parallel_tools,
    "openai-responses-complete.tape": healthy("completed"),
    "openai-cut-no-finish-reason.tape": cut,
    "openai-reset.tape": broken("ReadError", ["the stream ends inside an event (no blank line after it)"]),
    "openai-read-timeout.tape": read_timeout,
    "openai-split-emoji.tape": split_emoji,
    "anthropic-tool-use.tape": healthy("tool_use"),
    "anthropic-overloaded-while-streaming.tape": overloaded_while_streaming,
    "anthropic-overloaded-retry.tape": retry_after_529,
}
# What the SDK raises when the sample is replayed (nothing, for the others).
SDK_ERRORS = {
    "openai-reset.tape": openai.APIConnectionError,
    "openai-read-timeout.tape": openai.APITimeoutError,
    "anthropic-overloaded-while-streaming.tape": anthropic.APIStatusError,
}
FILES = sorted(BY_FILE)


def test_every_tape_is_in_the_readme_the_facts_and_regenerate_py() -> None:
    on_disk = {path.name for path in SAMPLES.glob("*.tape")}
    assert on_disk == set(readme_verdicts()) == set(BY_FILE) == set(FACTS)


@pytest.mark.parametrize("file", FILES)
def test_the_readme_verdicts_and_facts_hold(file: str) -> None:
    tape, d = diagnoses(SAMPLES / file)
    assert not tape.incomplete and tape.exchanges
    assert [x.verdict for x in d] == readme_verdicts()[file]
    FACTS[file](file, tape, d)
    sample = BY_FILE[file]
    assert tape.header.meta["sample"] == file.removesuffix(".tape")
    assert tape.header.meta["sdk"].startswith(sample.sdk + " ")
    for exchange in tape.exchanges:  # the fake key is on the tape only as a fingerprint
        secrets = [v for n, v in exchange.request.headers if n.lower() in ("authorization", "x-api-key")]
        assert secrets and all("REDACTED:" in v and "sk-" not in v for v in secrets), secrets


@pytest.mark.parametrize("file", FILES)
def test_the_sdk_sees_the_same_stream_when_the_sample_is_replayed(file: str) -> None:
    sample, path = BY_FILE[file], SAMPLES / file
    tape, d = diagnoses(path)
    root = tape.exchanges[0].request.url.partition("/v1/")[0]
    result = regenerate.run(sample, root, streamtape.httpx2.ReplayTransport(path, speed=math.inf))
    assert result.statuses == [x.status for x in d]
    last, end = d[-1], tape.exchanges[-1].end
    assert (result.text, result.finish) == (last.text, last.finish_reason)
    assert [[call["name"], call["arguments"]] for call in last.tool_calls] == list(result.tool_calls.values())
    expected = SDK_ERRORS.get(file)
    if expected is None:
        assert result.error is None
        return
    assert type(result.error) is expected, repr(result.error)
    if end.outcome == "error":  # a transport error: the SDK's cause is the recorded httpx2 exception
        cause = result.error.__cause__
        assert (type(cause).__module__.partition(".")[0], type(cause).__name__) == ("httpx2", end.error_type)
    else:  # a provider error event
        assert isinstance(result.error, anthropic.APIStatusError)
        assert result.error.status_code == last.status == 200
        body: Any = result.error.body
        assert f"{body['error']['type']}: {body['error']['message']}" in last.errors


def test_regenerate_records_every_sample_with_the_readme_verdicts(tmp_path: Path) -> None:
    paths = regenerate.regenerate(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths) == FILES
    for path in paths:
        tape, d = diagnoses(path)
        assert [x.verdict for x in d] == readme_verdicts()[path.name], path.name
        FACTS[path.name](path.name, tape, d)
