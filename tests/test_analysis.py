"""Stream analysis: the SSE decoder, diagnose, compare, and the CLI that reads tapes with them."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import anthropic
import httpx2
import openai
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

import streamtape
import streamtape.httpx2
from streamtape.analysis.sse import decode
from streamtape.cli import main
from streamtape.emulator import Emulator
from streamtape.format.records import Chunk, End, Request, Response
from streamtape.model import Exchange

# -- the SSE decoder ---------------------------------------------------------------------------------
STREAM = (
    b"\xef\xbb\xbf: a comment\r\n"
    b"event: greeting\r\ndata: caf\xc3\xa9\r\ndata:second line\r\nid: 7\r\nretry: 1500\r\n\r\n"
    b'data: {"x": 1}\n\n'
    b"data: lone cr\rdata: same event\r\r"
    b"event: empty-data-is-not-dispatched\n\n"
    b"data:  two spaces\nid: bad\x00id\n\n"
)


def events_of(pieces: list[bytes]) -> list[tuple[str, str, str, int | None]]:
    events, _ = decode([(i, p) for i, p in enumerate(pieces)])
    return [(e.event, e.data, e.id, e.retry) for e in events]


def test_sse_decoder_follows_the_whatwg_rules():
    assert events_of([STREAM]) == [
        ("greeting", "café\nsecond line", "7", 1500),
        ("message", '{"x": 1}', "7", 1500),
        ("message", "lone cr\nsame event", "7", 1500),
        ("message", " two spaces", "7", 1500),  # one space dropped; an id with NUL is ignored
    ]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=25))
def test_sse_decoder_yields_the_same_events_for_every_rechunking(cuts: list[int]):
    points = sorted(set(cuts))
    pieces = [STREAM[a:b] for a, b in zip([0, *points], [*points, len(STREAM)], strict=True)]
    assert events_of(pieces) == events_of([STREAM])


def test_decoder_reports_split_events_split_characters_and_lone_crs():
    chunks = [(1, b"data: caf\xc3"), (2, b"\xa9\n\ndata: b\r\r"), (3, b"data: c\r"), (4, b"\n\r\n")]
    events, hazards = decode(chunks)
    assert [(e.data, e.t_ns, e.first_chunk, e.last_chunk) for e in events] == [
        ("café", 2, 0, 1),
        ("b", 2, 1, 1),
        ("c", 4, 2, 3),
    ]
    assert hazards.split_utf8 == 1 and hazards.split_events == 2
    assert hazards.lone_cr == 2  # the CRLF split across chunks 3 and 4 is not a lone CR
    assert not hazards.unterminated


def test_hostile_bodies_give_a_diagnosis_not_a_crash():
    invalid = Exchange(0, 1, Request(1, 0, "POST", "http://h/v1/chat/completions", [], b""))
    headers = [("content-type", "text/event-stream")]
    for body in (b"data: \xff\xfe{not json\n\n", b"data: " + b"x" * 10_000_000, b"data: a\n" * 100_000):
        exchange = Exchange(
            0,
            1,
            invalid.request,
            Response(1, 1, 200, "HTTP/1.1", headers),
            [Chunk(1, 2, body)],
            End(1, 3, "complete"),
        )
        d = streamtape.diagnose(exchange)
        assert d.verdict in ("truncated", "error")
        assert d.chunks_received == 1


# -- diagnose against real recordings ----------------------------------------------------------------
def _record(emu: Emulator, path: Path, timeout: float = 5.0, **knobs) -> streamtape.Exchange:
    client = openai.OpenAI(
        api_key="sk-test",
        base_url=emu.url(**knobs) + "/v1",
        http_client=httpx2.Client(transport=streamtape.httpx2.RecordingTransport(path)),
        max_retries=0,
        timeout=httpx2.Timeout(5, read=timeout),
    )
    with client:
        try:
            for _ in client.chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": "hi"}], stream=True
            ):
                pass
        except (openai.APIError, httpx2.HTTPError):
            pass
    return streamtape.open_tape(path).exchanges[0]


def test_complete_stream_gets_verdict_complete_with_the_seed_fields(emulator: Emulator, tmp_path: Path):
    d = streamtape.diagnose(_record(emulator, tmp_path / "t.tape", events=15, pace_ms=2))
    assert d.verdict == "complete"
    assert d.finish_reason == "stop"
    assert d.total_content_length == len(d.text) > 0
    assert len(d.chunk_gaps_ms) == d.chunks_received
    assert 0 < d.first_chunk_ms <= d.first_token_ms <= d.last_chunk_ms
    assert d.errors == []


def test_stream_ending_without_finish_reason_is_truncated(emulator: Emulator, tmp_path: Path):
    d = streamtape.diagnose(_record(emulator, tmp_path / "t.tape", events=15, drop_final=True))
    assert d.verdict == "truncated"
    assert d.finish_reason is None and not d.terminal


def test_reset_and_timeout_and_provider_errors_get_verdict_error(emulator: Emulator, tmp_path: Path):
    reset = streamtape.diagnose(_record(emulator, tmp_path / "a.tape", events=15, reset_at=8))
    stall = streamtape.diagnose(
        _record(emulator, tmp_path / "b.tape", timeout=0.2, events=15, stall_at=5, stall_s=1)
    )
    provider = streamtape.diagnose(_record(emulator, tmp_path / "c.tape", events=15, error_at=6))
    assert reset.verdict == stall.verdict == provider.verdict == "error"
    assert any("ReadError" in e or "RemoteProtocolError" in e for e in reset.errors)
    assert any(e.startswith("ReadTimeout") for e in stall.errors)
    assert provider.errors and provider.outcome != "error"  # the HTTP body was fine; the provider said no


def test_compare_finds_where_a_cut_stream_diverges_from_its_baseline(emulator: Emulator, tmp_path: Path):
    whole = _record(emulator, tmp_path / "a.tape", events=30)
    cut = _record(emulator, tmp_path / "b.tape", events=30, reset_at=20)
    assert streamtape.compare(whole, whole).equal
    result = streamtape.compare(whole, cut)
    assert not result.equal
    text = next(d for d in result.differences if d.what == "text")
    assert text.offset == len(streamtape.diagnose(cut).text)
    assert any(d.what == "finish_reason" for d in result.differences)


# -- the CLI -----------------------------------------------------------------------------------------
def test_diagnose_json_has_exactly_the_documented_fields(emulator: Emulator, tmp_path: Path):
    _record(emulator, tmp_path / "t.tape", events=5)
    result = CliRunner().invoke(main, ["diagnose", "--json", str(tmp_path / "t.tape")])
    (doc,) = json.loads(result.output)
    for name in (
        "chunks_received",
        "total_content_length",
        "first_chunk_ms",
        "last_chunk_ms",
        "finish_reason",
        "errors",
        "chunk_gaps_ms",
        "provider",
        "first_token_ms",
        "text",
        "tool_calls",
        "usage",
        "gap_p50_ms",
        "gap_p95_ms",
        "gap_max_ms",
        "hazards",
        "verdict",
    ):
        assert name in doc, name
    assert doc["verdict"] == "complete"


def test_diagnose_report_puts_the_verdict_first(emulator: Emulator, tmp_path: Path):
    _record(emulator, tmp_path / "t.tape", events=8, reset_at=4)
    result = CliRunner().invoke(main, ["diagnose", str(tmp_path / "t.tape")])
    lines = result.output.splitlines()
    assert lines[1].split()[:2] == ["verdict", "ERROR"]
    assert any(line.strip().startswith("error") for line in lines)


def test_compare_exits_0_when_same_1_when_different_2_on_bad_input(emulator: Emulator, tmp_path: Path):
    _record(emulator, tmp_path / "a.tape", events=10)
    _record(emulator, tmp_path / "b.tape", events=10, reset_at=6)
    runner = CliRunner()
    assert runner.invoke(main, ["compare", str(tmp_path / "a.tape"), str(tmp_path / "a.tape")]).exit_code == 0
    differ = runner.invoke(main, ["compare", str(tmp_path / "a.tape"), str(tmp_path / "b.tape")])
    assert differ.exit_code == 1 and "text differs at" in differ.output
    missing = subprocess.run(
        [
            sys.executable,
            "-c",
            "from streamtape.cli import main; main()",
            "compare",
            str(tmp_path / "a.tape"),
            "nope",
        ],
        capture_output=True,
        text=True,
    )
    assert (
        missing.returncode == 2 and missing.stderr.count("\n") == 1 and "nope: no such file" in missing.stderr
    )


def test_play_shows_the_assembled_text_and_how_it_ended(emulator: Emulator, tmp_path: Path):
    exchange = _record(emulator, tmp_path / "t.tape", events=10, reset_at=7)
    result = CliRunner().invoke(main, ["play", "--speed", "inf", str(tmp_path / "t.tape")])
    assert result.exit_code == 0
    assert result.output.startswith(streamtape.diagnose(exchange).text)
    assert result.output.rstrip().endswith(f"[{exchange.end.error_type}: {exchange.end.message}]")
    raw = CliRunner().invoke(main, ["play", "--raw", "--speed", "inf", str(tmp_path / "t.tape")])
    assert raw.stdout_bytes.startswith(exchange.body)


def test_play_rejects_a_speed_of_zero(tmp_path: Path):
    result = CliRunner().invoke(main, ["play", "--speed", "0", "x.tape"])
    assert result.exit_code == 2 and "must be > 0" in result.output


# -- diagnose agrees with the official SDKs, reading the same replayed bytes ---------------------------
def _sdk_text_openai_chat(http: httpx2.Client, base: str) -> tuple[str, list[tuple[str, str]], str | None]:
    client = openai.OpenAI(api_key="sk-test", base_url=base + "/v1", http_client=http, max_retries=0)
    with client.chat.completions.stream(
        model="gpt-4o", messages=[{"role": "user", "content": "hi"}], stream_options={"include_usage": True}
    ) as stream:
        final = stream.get_final_completion()
    message = final.choices[0].message
    calls = [(c.function.name, c.function.arguments) for c in message.tool_calls or []]
    return message.content or "", calls, final.choices[0].finish_reason


def _sdk_text_openai_responses(
    http: httpx2.Client, base: str
) -> tuple[str, list[tuple[str, str]], str | None]:
    client = openai.OpenAI(api_key="sk-test", base_url=base + "/v1", http_client=http, max_retries=0)
    with client.responses.stream(model="gpt-4o", input="hi") as stream:
        final = stream.get_final_response()
    calls = [(item.name, item.arguments) for item in final.output if item.type == "function_call"]
    return final.output_text, calls, final.status


def _sdk_text_anthropic(http: httpx2.Client, base: str) -> tuple[str, list[tuple[str, str]], str | None]:
    client = anthropic.Anthropic(api_key="sk-test", base_url=base, http_client=http, max_retries=0)
    with client.messages.stream(
        model="claude-sonnet-5", max_tokens=256, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        final = stream.get_final_message()
    text = "".join(b.text for b in final.content if b.type == "text")
    calls = [
        (b.name, json.dumps(b.input, separators=(",", ":"))) for b in final.content if b.type == "tool_use"
    ]
    return text, calls, final.stop_reason


@pytest.mark.parametrize(
    ("provider", "read"),
    [
        ("openai-chat", _sdk_text_openai_chat),
        ("openai-responses", _sdk_text_openai_responses),
        ("anthropic", _sdk_text_anthropic),
    ],
)
@pytest.mark.parametrize(
    "knobs", [{"unicode": True, "split_utf8": True}, {"tools": 2}], ids=["text", "tools"]
)
def test_diagnose_agrees_with_the_official_sdk_on_the_same_replay(
    emulator: Emulator, tmp_path: Path, provider: str, read, knobs: dict
):
    path = tmp_path / "t.tape"
    base = emulator.url(events=12, **knobs)
    with httpx2.Client(transport=streamtape.httpx2.RecordingTransport(path)) as http:
        read(http, base)
    tape = streamtape.open_tape(path)
    replayed = read(httpx2.Client(transport=streamtape.httpx2.ReplayTransport(tape, speed=math.inf)), base)
    d = streamtape.diagnose(tape.exchanges[0])
    assert d.provider == provider
    assert d.verdict == "complete"
    text, calls, finish = replayed
    assert d.text == text
    assert [(c["name"], json.loads(c["arguments"] or "{}")) for c in d.tool_calls] == [
        (name, json.loads(args or "{}")) for name, args in calls
    ]
    assert all(c["valid_json"] for c in d.tool_calls)
    assert d.finish_reason == finish


def test_stream_compares_equal_to_its_non_streamed_baseline(emulator: Emulator, tmp_path: Path):
    """The seed's verify_stream_completeness: the same prompt streamed and not streamed."""
    base = emulator.url(events=20, tools=1) + "/v1"
    for name, stream in (("stream.tape", True), ("baseline.tape", False)):
        client = openai.OpenAI(
            api_key="sk-test",
            base_url=base,
            http_client=httpx2.Client(transport=streamtape.httpx2.RecordingTransport(tmp_path / name)),
            max_retries=0,
        )
        with client:
            result = client.chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": "hi"}], stream=stream
            )
            if stream:
                for _ in result:
                    pass
    streamed = streamtape.open_tape(tmp_path / "stream.tape").exchanges[0]
    baseline = streamtape.open_tape(tmp_path / "baseline.tape").exchanges[0]
    assert not streamtape.diagnose(baseline).streamed
    result = streamtape.compare(streamed, baseline)
    assert result.equal, [str(d) for d in result.differences]
    assert result.a.tool_calls and result.a.tool_calls[0]["arguments"] == result.b.tool_calls[0]["arguments"]
