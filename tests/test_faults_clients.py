"""Clients reading fault variants: re-chunkings read the same through every SSE reader, truncations and
resets fail as the same fault fails in production, a stall trips the read timeout without waiting, and a
naive tool-call buffer breaks on a cut stream while ``diagnose`` says why.

"Production" is the emulator on loopback misbehaving for real (a TCP reset, a FIN mid-body, a body that
ends without its closing events), read live through the SDKs; its fault variant is derived from a healthy
recording of the same stream, cut at the same byte, and replayed.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import anthropic
import httpx
import httpx2
import httpx_sse
import openai
import pytest
from helpers import HANG_GUARD_S, ROOT, load_samples_script
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import streamtape
import streamtape.httpx
import streamtape.httpx2
from streamtape import Match, faults
from streamtape.emulator import Emulator

pytestmark = pytest.mark.timeout(120)

samples = load_samples_script()
sys.path.insert(0, str(ROOT / "samples"))
from example_partial_tool_call import ToolCallBuffer  # noqa: E402  (the article's buffer, as the example runs it)

BY_FILE = {s.file: s for s in samples.SAMPLES}
HEALTHY = [
    "openai-complete.tape",
    "openai-tool-calls.tape",
    "openai-responses-complete.tape",
    "anthropic-tool-use.tape",
]
ANY_BODY = Match(on=("method", "path"))  # readers below send their own request bodies


def _root(tape: streamtape.Tape) -> str:
    url = tape.exchanges[0].request.url
    return url[: url.index("/v1/")]


def _sdk(file: str, tape: streamtape.Tape) -> tuple[Any, ...]:
    """What the sample's own SDK call makes of ``tape``: text, finish, tool calls, error and its cause."""
    out = samples.run(BY_FILE[file], _root(tape), streamtape.httpx2.ReplayTransport(tape, speed=math.inf))
    return _seen(out)


def _seen(out: Any) -> tuple[Any, ...]:
    """A call's result, its error as the class the SDK raised and, for an SDK error, the transport error
    under it (a raw httpx2 error's own cause is httpcore2's internals: not compared)."""
    error = out.error
    sdk_error = isinstance(error, openai.APIError | anthropic.APIError)
    cause = type(error.__cause__).__name__ if sdk_error and error.__cause__ is not None else None
    return out.text, out.finish, out.tool_calls, type(error).__name__ if error else None, cause


def _events(tape: streamtape.Tape) -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]]:
    """The events httpx2's ``EventSource`` and httpx-sse read from the tape's first exchange."""
    url = tape.exchanges[0].request.url
    native_transport = streamtape.httpx2.ReplayTransport(tape, speed=math.inf, match=ANY_BODY)
    with httpx2.Client(transport=native_transport) as c, c.sse(url, method="POST") as source:
        native = [(e.event, e.data, e.id) for e in source]
    peer_transport = streamtape.httpx.ReplayTransport(tape, speed=math.inf, match=ANY_BODY)
    with httpx.Client(transport=peer_transport) as c, httpx_sse.connect_sse(c, "POST", url) as source:
        peer = [(e.event, e.data, e.id) for e in source.iter_sse()]
    return native, peer


@pytest.mark.parametrize("file", HEALTHY)
def test_every_rechunking_of_the_matrix_reads_the_same_in_the_sdk_eventsource_and_httpx_sse(
    file: str,
) -> None:
    tape = streamtape.open_tape(ROOT / "samples" / file)
    expected_sdk, expected_events = _sdk(file, tape), _events(tape)
    assert expected_sdk[0] or expected_sdk[2]  # a real answer: text or tool calls
    assert expected_events[0] == expected_events[1] and len(expected_events[0]) >= 5
    variants = [v for v in faults.matrix(tape) if v.name.startswith("rechunk")]
    assert len(variants) == 4
    for variant in variants:
        assert len(variant.tape.exchanges[0].chunks) != len(tape.exchanges[0].chunks)
        assert _sdk(file, variant.tape) == expected_sdk, variant.name
        assert _events(variant.tape) == expected_events, variant.name


@pytest.mark.parametrize("file", ["openai-tool-calls.tape", "anthropic-tool-use.tape"])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=300))
def test_random_cut_points_never_change_what_the_readers_see(file: str, cuts: list[int]) -> None:
    tape = streamtape.open_tape(ROOT / "samples" / file)
    size, sizes = len(tape.exchanges[0].body), []
    for n in cuts:
        if sum(sizes) + n > size:
            break
        sizes.append(n)
    if not sizes:
        return
    variant = faults.rechunk(tape, sizes=sizes)
    assert _sdk(file, variant) == _sdk(file, tape)
    assert _events(variant) == _events(tape)


# -- faults as production has them -----------------------------------------------------------------------


def _live(emulator: Emulator, file: str, knobs: dict[str, Any], path: Path) -> tuple[Any, streamtape.Tape]:
    """The sample's SDK call against the emulator misbehaving as ``knobs`` say, recorded into ``path``."""
    sample = BY_FILE[file]
    chosen = samples.Sample(
        sample.file, sample.call, {**sample.knobs, **knobs}, sample.shows, prompt=sample.prompt
    )
    out = samples.run(chosen, emulator.url(), streamtape.httpx2.RecordingTransport(path))
    return _seen(out), streamtape.open_tape(path)


@pytest.mark.parametrize("file", ["openai-complete.tape", "anthropic-tool-use.tape"])
@pytest.mark.parametrize(
    ("knobs", "error"),
    [({"reset_at": 5}, "ReadError"), ({"cut_at": 5}, "RemoteProtocolError"), ({"drop_final": True}, None)],
    ids=["reset", "fin-mid-body", "no-closing-events"],
)
def test_truncations_fail_in_each_sdk_as_the_same_fault_does_in_production(
    emulator: Emulator, tmp_path: Path, file: str, knobs: dict[str, Any], error: str | None
) -> None:
    production, broken = _live(emulator, file, knobs, tmp_path / "production.tape")
    _, healthy = _live(emulator, file, {}, tmp_path / "healthy.tape")
    cut_at = len(broken.exchanges[0].body)
    assert 0 < cut_at < len(healthy.exchanges[0].body)
    assert healthy.exchanges[0].body[:cut_at] == broken.exchanges[0].body  # the same stream, until the fault
    assert broken.exchanges[0].end.error_type == error  # the fault's vocabulary is what production records
    variant = faults.truncate(healthy, after_bytes=cut_at, error=error)
    assert _sdk(file, variant) == production
    assert (
        streamtape.diagnose(variant.exchanges[0]).verdict == streamtape.diagnose(broken.exchanges[0]).verdict
    )


@pytest.mark.parametrize("file", ["openai-complete.tape", "anthropic-tool-use.tape"])
def test_a_90_s_stall_under_a_60_s_read_timeout_raises_the_timeout_without_waiting(file: str) -> None:
    tape = streamtape.open_tape(ROOT / "samples" / file)
    sample = BY_FILE[file]
    stalled = faults.stall(tape, at_chunk=4, seconds=90)
    slow = samples.Sample(
        sample.file, sample.call, sample.knobs, sample.shows, read_timeout=60.0, prompt=sample.prompt
    )
    started = time.monotonic()
    out = samples.run(slow, _root(stalled), streamtape.httpx2.ReplayTransport(stalled, speed=math.inf))
    assert time.monotonic() - started < HANG_GUARD_S  # a hang guard, not a timing assertion
    # openai wraps it as APITimeoutError; Anthropic's stream lets httpx2's own error out, as it does live.
    timeout = (
        out.error if isinstance(out.error, httpx2.ReadTimeout) else getattr(out.error, "__cause__", None)
    )
    assert isinstance(timeout, httpx2.ReadTimeout), repr(out.error)
    assert file.startswith("anthropic") or isinstance(out.error, openai.APITimeoutError)
    healthy = samples.run(slow, _root(tape), streamtape.httpx2.ReplayTransport(tape, speed=math.inf))
    assert healthy.error is None and healthy.text.startswith(out.text)


def test_a_naive_tool_call_buffer_runs_broken_arguments_from_a_cut_stream_and_diagnose_says_so() -> None:
    tape = streamtape.open_tape(ROOT / "samples" / "openai-tool-calls.tape")
    events = faults.event_spans(tape.exchanges[0].body)
    cut = faults.truncate(
        tape, after_bytes=events[len(events) // 2][1], error=None
    )  # a polite proxy, mid-calls
    client = openai.OpenAI(
        api_key="sk-test",
        base_url=_root(cut) + "/v1",
        http_client=httpx2.Client(
            transport=streamtape.httpx2.ReplayTransport(cut, speed=math.inf, match=ANY_BODY)
        ),
    )
    buffer, finished = ToolCallBuffer(), None
    for chunk in client.chat.completions.create(model="gpt-4o", messages=[], stream=True):
        finished = buffer.process_chunk(chunk) or finished
    assert finished is None  # no finish_reason ever came: the buffer never says "done"
    calls = list(
        buffer.buffers.values()
    )  # what code that runs the tools anyway at the end of the stream gets
    assert calls
    broken = []
    for call in calls:
        try:
            json.loads(call["arguments"])
        except json.JSONDecodeError:
            broken.append(call["name"])
    assert broken  # at least one tool would be called with half its arguments
    diagnosis = streamtape.diagnose(cut.exchanges[0])
    assert diagnosis.verdict == "truncated"
    assert sorted(c["name"] for c in diagnosis.tool_calls if not c["valid_json"]) == sorted(broken)


def test_variants_route_every_client_of_a_block_through_them() -> None:
    """``variant.use()``: the pytest plugin's routing, replay only, for a parametrised test over the matrix."""
    tape = streamtape.open_tape(ROOT / "samples" / "openai-complete.tape")
    sample = BY_FILE["openai-complete.tape"]
    seen = {}
    for variant in faults.matrix(tape):
        if variant.name in ("rechunk-seed-1", "reset-inside-event-3", "cut-after-event-2"):
            with variant.use() as session:
                out = samples.run(sample, _root(tape), httpx2.HTTPTransport())  # a real transport: routed
            assert len(session.matched) == 1 and not session.problems
            seen[variant.name] = _seen(out)
    healthy = _sdk("openai-complete.tape", tape)
    assert seen["rechunk-seed-1"] == healthy
    assert seen["reset-inside-event-3"][3:] == ("APIConnectionError", "ReadError")
    assert seen["cut-after-event-2"][3] is None and len(seen["cut-after-event-2"][0]) < len(healthy[0])
