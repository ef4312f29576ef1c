"""``-x N`` means one exchange in every verb: number N as ``info`` shows it, counted across segments."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import httpx2
import openai
import pytest
from click.testing import CliRunner

import streamtape
import streamtape.httpx2
from streamtape.cli import main
from streamtape.emulator import Emulator
from streamtape.format.records import Chunk, End, Header, Record, Request, Response
from streamtape.storage.atomic import write_tape

URL = "http://127.0.0.1:8000/v1/chat/completions"
START = 1_767_225_600_000_000_000


def _header(meta: dict[str, str], start: int) -> Header:
    return Header("streamtape", (1, 0), "streamtape 0.1.0", start, meta)


def _sse(words: list[str]) -> list[bytes]:
    def event(delta: dict[str, str], finish: str | None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        doc = {"id": "c", "object": "chat.completion.chunk", "model": "gpt-4o", "choices": [choice]}
        return f"data: {json.dumps(doc)}\n\n".encode()

    return [*(event({"content": w}, None) for w in words), event({}, "stop"), b"data: [DONE]\n\n"]


def _exchange(x: int, t_ns: int, words: list[str]) -> tuple[list[Record], list[Record]]:
    """An OpenAI chat stream saying ``words``: (its request, the rest), so a tape can interleave them."""
    body = json.dumps({"model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": "hi"}]})
    request = Request(x, t_ns, "POST", URL, [("content-type", "application/json")], body.encode())
    chunks = [Chunk(x, 2_000_000 * (i + 1), data) for i, data in enumerate(_sse(words))]
    rest: list[Record] = [
        Response(x, 1_000_000, 200, "HTTP/1.1", [("content-type", "text/event-stream")]),
        *chunks,
        End(x, chunks[-1].t_ns + 1_000_000, "complete"),
    ]
    return [request], rest


#: What exchange number N of ``two_segments`` says, and the meta of its segment.
EXPECTED = [("alpha", "first"), ("bravo two", "first"), ("charlie three more", "second")]


@pytest.fixture
def two_segments(tmp_path: Path) -> Path:
    """Two recordings in one tape, ids restarting at 1 in each; segment 0's exchanges interleaved in the file.

    Numbers: #0 is segment 0 id 1, #1 segment 0 id 2, #2 segment 1 id 1 (so the old ``cat -x 2``, a record
    id within a segment, would have printed #1, and ``cat -x 1`` two exchanges at once).
    """
    a_request, a_rest = _exchange(1, 1_000, ["alpha"])
    b_request, b_rest = _exchange(2, 3_000_000, ["bravo", " two"])
    c_request, c_rest = _exchange(1, 500, ["charlie", " three", " more"])
    path = tmp_path / "two-segments.tape"
    records: list[Record] = [
        _header({"run": "first"}, START),
        *a_request,
        *b_request,
        *b_rest,  # the second request finished first
        *a_rest,
        _header({"run": "second"}, START + 60_000_000_000),
        *c_request,
        *c_rest,
    ]
    write_tape(path, records)
    return path


def _invoke(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_the_fixture_numbers_its_exchanges_across_segments_as_the_model_does(two_segments: Path):
    tape = streamtape.open_tape(two_segments)
    assert [(e.segment, e.id) for e in tape.exchanges] == [(0, 1), (0, 2), (1, 1)]
    assert [streamtape.diagnose(e).text for e in tape.exchanges] == [text for text, _ in EXPECTED]


@pytest.mark.parametrize("n", range(len(EXPECTED)))
def test_info_x_shows_the_exchange_that_diagnose_play_and_cat_x_show(two_segments: Path, n: int):
    text, run = EXPECTED[n]
    tape = streamtape.open_tape(two_segments)
    exchange = tape.exchanges[n]

    rows = [line for line in _invoke("info", "-x", str(n), str(two_segments)).splitlines() if "#" in line]
    (row,) = [line for line in rows if line.startswith("  #")]
    assert row.startswith(f"  #{n} ") and f"  {len(exchange.chunks)} chunks  " in row

    diagnosis = _invoke("diagnose", "-x", str(n), str(two_segments)).splitlines()
    assert diagnosis[0] == f"#{n} POST {URL}"
    assert f"  text      {text!r}" in diagnosis

    assert _invoke("play", "-x", str(n), "--speed", "inf", str(two_segments)) == f"{text}\n[complete]\n"

    records = [json.loads(line) for line in _invoke("cat", "-x", str(n), str(two_segments)).splitlines()]
    assert records[0]["type"] == "header" and records[0]["meta"] == {"run": run}
    assert [r["type"] for r in records].count("header") == 1
    assert {r["x"] for r in records[1:]} == {exchange.id}
    said = "".join(r["data"]["text"] for r in records if r["type"] == "chunk")
    assert said.encode() == exchange.body


def test_cat_x_2_prints_the_second_segments_exchange_not_record_id_2_of_the_first(two_segments: Path):
    records = [json.loads(line) for line in _invoke("cat", "-x", "2", str(two_segments)).splitlines()]
    assert records[0]["meta"] == {"run": "second"}
    assert [r["type"] for r in records] == ["header", "request", "response", *["chunk"] * 5, "end"]
    assert "charlie" in "".join(r["data"]["text"] for r in records if r["type"] == "chunk")


def test_cat_x_1_prints_one_exchange_even_when_both_segments_have_a_record_id_1(two_segments: Path):
    records = [json.loads(line) for line in _invoke("cat", "-x", "1", str(two_segments)).splitlines()]
    assert [r["type"] for r in records].count("request") == 1
    assert records[1]["x"] == 2 and records[0]["meta"] == {"run": "first"}


def test_cat_x_keeps_file_order_for_an_exchange_whose_records_interleave(two_segments: Path):
    records = [json.loads(line) for line in _invoke("cat", "-x", "0", str(two_segments)).splitlines()]
    assert [r["type"] for r in records] == ["header", "request", "response", "chunk", "chunk", "chunk", "end"]
    assert {r["x"] for r in records[1:]} == {1}


def test_compare_exchange_numbers_count_across_segments_too(two_segments: Path):
    path = str(two_segments)
    same = CliRunner().invoke(main, ["compare", path, path, "--exchange-a", "2", "--exchange-b", "2"])
    assert same.exit_code == 0 and same.output.startswith("same: 18 characters of text")
    differ = CliRunner().invoke(main, ["compare", path, path, "--exchange-a", "1", "--exchange-b", "2"])
    assert differ.exit_code == 1 and "text differs at 0: 'bravo two' vs 'charlie three more'" in differ.output


def test_info_lists_each_segments_format_and_meta_and_which_exchanges_it_holds(two_segments: Path):
    lines = _invoke("info", str(two_segments)).splitlines()
    assert "segments  2 (recordings appended to one tape)" in lines
    assert (
        "segment 0 format 1.0, written by streamtape 0.1.0, started 2026-01-01T00:00:00.000+00:00; "
        "exchanges #0-#1"
    ) in lines
    assert (
        "segment 1 format 1.0, written by streamtape 0.1.0, started 2026-01-01T00:01:00.000+00:00; exchange #2"
    ) in lines
    assert [line.split(None, 1)[1] for line in lines if line.strip().startswith("meta")] == [
        '{"run": "first"}',
        '{"run": "second"}',
    ]


def test_info_json_holds_every_segments_header(two_segments: Path):
    doc = json.loads(_invoke("info", "--json", str(two_segments)))
    assert doc["header"]["meta"] == {"run": "first"}
    assert [h["meta"] for h in doc["segments"]] == [{"run": "first"}, {"run": "second"}]
    assert [(e["number"], e["segment"], e["id"]) for e in doc["exchanges"]] == [
        (0, 0, 1),
        (1, 0, 2),
        (2, 1, 1),
    ]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from streamtape.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    "args",
    [
        ["info", "-x", "3"],
        ["cat", "-x", "3"],
        ["diagnose", "-x", "3"],
        ["play", "-x", "3"],
        ["diagnose", "-x", "-1"],
        ["compare", "--exchange-b", "3", "{tape}"],
    ],
    ids=["info", "cat", "diagnose", "play", "negative", "compare"],
)
def test_an_exchange_number_the_tape_does_not_hold_exits_2_on_one_line(two_segments: Path, args: list[str]):
    n = next(a for a in args if a.lstrip("-").isdigit())
    result = _cli(*(a.replace("{tape}", str(two_segments)) for a in args), str(two_segments))
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"streamtape: error: {two_segments}: no exchange #{n}: the tape has 3 (numbered from 0)"
    ]


# -- the same, on a tape the recorder appended to twice ---------------------------------------------
def _record(emulator: Emulator, path: Path, run: str, events: int) -> None:
    transport = streamtape.httpx2.RecordingTransport(path, meta={"run": run})
    client = openai.OpenAI(
        api_key="sk-test",
        base_url=emulator.url(events=events) + "/v1",
        http_client=httpx2.Client(transport=transport),
        max_retries=0,
    )
    with client:
        for _ in client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hi"}], stream=True
        ):
            pass


def test_x_1_selects_the_second_recording_in_every_verb_after_recording_twice_into_one_tape(
    emulator: Emulator, tmp_path: Path
):
    path = tmp_path / "appended.tape"
    _record(emulator, path, "first", events=3)
    _record(emulator, path, "second", events=9)
    tape = streamtape.open_tape(path)
    assert [e.segment for e in tape.exchanges] == [0, 1]
    first, second = (streamtape.diagnose(e).text for e in tape.exchanges)
    assert first != second and second

    info = _invoke("info", str(path))
    assert "segments  2" in info and '{"run": "first"}' in info and '{"run": "second"}' in info
    assert f"  text      {second!r}" in _invoke("diagnose", "-x", "1", str(path)).splitlines()
    assert _invoke("play", "-x", "1", "--speed", "inf", str(path)).startswith(second)
    records = [json.loads(line) for line in _invoke("cat", "-x", "1", str(path)).splitlines()]
    assert records[0]["meta"] == {"run": "second"}
    data = [r["data"] for r in records if r["type"] == "chunk"]
    said = b"".join(d["text"].encode() if "text" in d else base64.b64decode(d["base64"]) for d in data)
    assert len(data) == len(tape.exchanges[1].chunks) > 0 and said == tape.exchanges[1].body
