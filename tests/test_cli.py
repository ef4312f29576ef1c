"""The command line: what it prints, and how it fails (one line, exit 1, no traceback)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from streamtape.cli import main

VECTORS = Path(__file__).resolve().parents[1] / "spec" / "vectors"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    """The real console entry point in a subprocess, as a user or a script would call it."""
    return subprocess.run(
        [sys.executable, "-c", "from streamtape.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_info_shows_header_and_a_line_per_exchange():
    result = CliRunner().invoke(main, ["info", str(VECTORS / "errored.tape")])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].endswith("errored.tape")
    assert "format    1.0, written by streamtape 0.1.0, started 2026-01-01T00:00:00.000+00:00" in lines
    rows = [line for line in lines if line.startswith("  #")]
    assert len(rows) == 3
    assert "200  error (ReadError)  2 chunks  128 B  ttfb 160.0ms  61190.0ms" in rows[0]
    assert "---  error (ConnectError)  0 chunks" in rows[1]
    assert "client_closed  1 chunks" in rows[2]


def test_info_json_is_machine_readable():
    result = CliRunner().invoke(main, ["info", "--json", str(VECTORS / "complete.tape")])
    doc = json.loads(result.output)
    assert doc["header"]["meta"] == {"test": "vector"}
    (summary,) = doc["exchanges"]
    assert summary["outcome"] == "complete"
    assert summary["chunks"] == 5
    assert summary["ttfb_ns"] == 200_000_000


def test_info_flags_a_cut_tape_as_incomplete():
    result = CliRunner().invoke(main, ["info", str(VECTORS / "cut.tape")])
    assert result.exit_code == 0
    assert "INCOMPLETE the tape is cut at byte" in result.output
    assert " incomplete " in result.output.splitlines()[-1]


def test_cat_prints_every_record_as_json_with_bytes_marked_text_or_base64():
    result = CliRunner().invoke(main, ["cat", str(VECTORS / "complete.tape")])
    records = [json.loads(line) for line in result.output.splitlines()]
    assert [r["type"] for r in records] == ["header", "request", "response", *["chunk"] * 5, "end"]
    split = records[4]["data"]  # ends in the middle of a two-byte character
    assert set(split) == {"base64"}
    assert base64.b64decode(split["base64"]).endswith(b"Caf\xc3")
    assert records[3]["data"] == {"text": records[3]["data"]["text"]}
    assert records[1]["body"]["text"].startswith('{"model":"gpt-4o"')


def test_cat_of_one_exchange():
    result = CliRunner().invoke(main, ["cat", "-x", "2", str(VECTORS / "errored.tape")])
    records = [json.loads(line) for line in result.output.splitlines()]
    assert {r.get("x") for r in records if r["type"] != "header"} == {2}


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("empty.tape", "empty file"),
        ("not-a-tape.tape", "not a tape"),
        ("future-version.tape", "written in tape format 2.0"),
        ("corrupt-frame.tape", "corrupt zstd frame at byte"),
        ("no-such.tape", "no such file"),
    ],
)
@pytest.mark.parametrize("verb", ["info", "cat", "diagnose", "play"])
def test_bad_tapes_fail_on_one_line_without_a_traceback(verb: str, name: str, message: str):
    result = run(verb, str(VECTORS / name))
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("streamtape: error: ") and name in lines[0] and message in lines[0]
    assert "Traceback" not in result.stderr


def test_wrong_usage_exits_2_with_a_hint():
    result = run("info")
    assert result.returncode == 2
    assert "Missing argument 'TAPE'" in result.stderr


def test_demo_records_a_real_openai_stream_and_shows_it(tmp_path: Path):
    tape = tmp_path / "demo.tape"
    result = run("demo", "--tape", str(tape))
    assert result.returncode == 0, result.stderr
    assert f"recorded  {tape}" in result.stdout
    assert "/v1/chat/completions  200  client_closed" in result.stdout  # the SDK stops at [DONE]
    assert tape.stat().st_size > 0
    assert b"sk-demo-not-a-real-key" not in tape.read_bytes()


def test_diagnose_names_a_missing_exchange_on_one_line():
    result = run("diagnose", "-x", "9", str(VECTORS / "complete.tape"))
    assert result.returncode == 1
    assert result.stderr.strip().endswith("complete.tape: no exchange #9: the tape has 1 (numbered from 0)")
