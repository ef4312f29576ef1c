"""The command line: what it prints, and how it fails (one line, exit 2 for bad input, no traceback)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import streamtape
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


def test_cat_of_one_exchange_prints_the_exchange_info_numbers_so():
    tape = streamtape.open_tape(VECTORS / "errored.tape")
    for n, exchange in enumerate(tape.exchanges):
        result = CliRunner().invoke(main, ["cat", "-x", str(n), str(VECTORS / "errored.tape")])
        assert result.exit_code == 0, result.output
        records = [json.loads(line) for line in result.output.splitlines()]
        assert records[0]["type"] == "header"
        assert {r["x"] for r in records[1:]} == {exchange.id}
        assert [r["type"] for r in records[1:]] == [type(r).__name__.lower() for r in exchange.records()]


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
def test_bad_tapes_exit_2_on_one_line_without_a_traceback(verb: str, name: str, message: str):
    result = run(verb, str(VECTORS / name))
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("streamtape: error: ") and name in lines[0] and message in lines[0]
    assert "Traceback" not in result.stderr


def test_wrong_usage_exits_2_with_a_hint():
    result = run("info")
    assert result.returncode == 2
    assert "Missing argument 'TAPE...'" in result.stderr


def test_demo_records_a_real_openai_stream_and_shows_it(tmp_path: Path):
    tape = tmp_path / "demo.tape"
    result = run("demo", "--tape", str(tape))
    assert result.returncode == 0, result.stderr
    assert f"recorded  {tape}" in result.stdout
    assert "/v1/chat/completions  200  client_closed" in result.stdout  # the SDK stops at [DONE]
    assert tape.stat().st_size > 0
    assert b"sk-demo-not-a-real-key" not in tape.read_bytes()


def test_diagnose_names_a_missing_exchange_on_one_line_and_exits_2():
    result = run("diagnose", "-x", "9", str(VECTORS / "complete.tape"))
    assert result.returncode == 2
    assert result.stderr.strip().endswith("complete.tape: no exchange #9: the tape has 1 (numbered from 0)")


SAMPLES = Path(__file__).resolve().parents[1] / "samples"


def test_info_of_two_tapes_prints_one_block_each_with_a_blank_line_between():
    a, b = VECTORS / "complete.tape", VECTORS / "errored.tape"
    result = CliRunner().invoke(main, ["info", str(a), str(b)])
    assert result.exit_code == 0, result.output
    first, second = result.output.split("\n\n")
    assert first == "\n".join(CliRunner().invoke(main, ["info", str(a)]).output.splitlines())
    assert second == CliRunner().invoke(main, ["info", str(b)]).output
    assert first.startswith(f"tape      {a}") and second.startswith(f"tape      {b}")


def test_info_json_of_two_tapes_is_a_list_and_of_one_tape_an_object():
    a, b = VECTORS / "complete.tape", VECTORS / "errored.tape"
    both = json.loads(CliRunner().invoke(main, ["info", "--json", str(a), str(b)]).output)
    one = json.loads(CliRunner().invoke(main, ["info", "--json", str(b)]).output)
    assert isinstance(both, list) and [d["path"] for d in both] == [str(a), str(b)]
    assert isinstance(one, dict) and both[1] == one
    assert [e["number"] for e in one["exchanges"]] == [0, 1, 2]


def test_info_of_a_good_and_a_bad_tape_prints_nothing_but_one_error_line():
    result = run("info", str(VECTORS / "complete.tape"), str(VECTORS / "no-such.tape"))
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [f"streamtape: error: {VECTORS / 'no-such.tape'}: no such file"]


def test_info_x_shows_only_that_exchange_under_the_header():
    result = CliRunner().invoke(main, ["info", "-x", "1", str(VECTORS / "errored.tape")])
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if line.startswith("  #")]
    assert len(rows) == 1 and rows[0].startswith("  #1 ") and "error (ConnectError)" in rows[0]
    assert "exchanges 3, showing 1" in result.output


@pytest.mark.parametrize("as_json", [[], ["--json"]], ids=["text", "json"])
def test_diagnose_check_exits_0_when_every_verdict_is_complete(as_json: list[str]):
    result = CliRunner().invoke(
        main, ["diagnose", "--check", *as_json, str(SAMPLES / "openai-complete.tape")]
    )
    assert result.exit_code == 0, result.output
    assert "COMPLETE" in result.output or '"verdict": "complete"' in result.output


@pytest.mark.parametrize("as_json", [[], ["--json"]], ids=["text", "json"])
def test_diagnose_check_exits_1_on_a_reset_stream_and_still_prints_the_diagnosis(as_json: list[str]):
    result = CliRunner().invoke(main, ["diagnose", "--check", *as_json, str(SAMPLES / "openai-reset.tape")])
    assert result.exit_code == 1, result.output
    assert "ERROR" in result.output or '"verdict": "error"' in result.output


def test_diagnose_without_check_exits_0_even_when_a_stream_broke():
    result = CliRunner().invoke(main, ["diagnose", str(SAMPLES / "openai-reset.tape")])
    assert result.exit_code == 0, result.output


def test_diagnose_check_judges_only_the_exchange_chosen_with_x():
    tape = streamtape.open_tape(SAMPLES / "anthropic-overloaded-retry.tape")
    verdicts = [streamtape.diagnose(e).verdict for e in tape.exchanges]
    assert "complete" in verdicts and set(verdicts) != {"complete"}, verdicts
    for n, verdict in enumerate(verdicts):
        result = CliRunner().invoke(
            main, ["diagnose", "--check", "-x", str(n), str(SAMPLES / "anthropic-overloaded-retry.tape")]
        )
        assert result.exit_code == (0 if verdict == "complete" else 1), (n, verdict)


def test_diagnose_takes_several_tapes_and_check_judges_them_all(tmp_path: Path):
    good, bad = str(SAMPLES / "openai-complete.tape"), str(SAMPLES / "openai-reset.tape")
    result = CliRunner().invoke(main, ["diagnose", "--check", good, bad])
    assert result.exit_code == 1, result.output
    assert [line for line in result.output.splitlines() if line.startswith("tape ")] == [
        f"tape {good}",
        f"tape {bad}",
    ]
    assert CliRunner().invoke(main, ["diagnose", "--check", good, good]).exit_code == 0
    lists = json.loads(CliRunner().invoke(main, ["diagnose", "--json", good, bad]).output)
    assert [[d["verdict"] for d in one] for one in lists] == [["complete"], ["error"]]
    (tmp_path / "empty.tape").write_bytes(b"")
    broken = CliRunner().invoke(main, ["diagnose", good, str(tmp_path / "empty.tape")])
    assert broken.exit_code == 2 and "COMPLETE" not in broken.output  # every tape is read before printing


def test_cat_into_a_reader_that_leaves_early_exits_0_without_a_traceback(tmp_path: Path):
    from streamtape.format.records import Chunk, End, Header, Request
    from streamtape.storage.atomic import write_tape

    path = tmp_path / "big.tape"
    chunks = [Chunk(1, i, b"data: " + b"x" * 200 + b"\n\n") for i in range(5000)]
    header = Header("streamtape", (1, 0), "streamtape 0.1.0", 0)
    write_tape(path, [header, Request(1, 0, "GET", "http://h/", []), *chunks, End(1, 5000, "complete")])
    proc = subprocess.Popen(
        [sys.executable, "-c", "from streamtape.cli import main; main()", "cat", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert json.loads(proc.stdout.readline())["type"] == "header"
    proc.stdout.close()
    assert proc.wait(timeout=60) == 0
    assert proc.stderr.read() == b""


def test_compact_rewrites_a_closed_tape_smaller_with_the_same_records(tmp_path: Path) -> None:
    source = Path(__file__).resolve().parents[1] / "samples" / "openai-complete.tape"
    out = tmp_path / "small.tape"
    result = CliRunner().invoke(main, ["compact", str(source), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert list(streamtape.iter_records(out)) == list(streamtape.iter_records(source))
    assert f"{out}: {source.stat().st_size} -> {out.stat().st_size} bytes" in result.output


def test_compact_refuses_an_incomplete_tape_on_one_line(tmp_path: Path) -> None:
    source = Path(__file__).resolve().parents[1] / "samples" / "openai-complete.tape"
    cut = tmp_path / "cut.tape"
    cut.write_bytes(source.read_bytes()[:-5])
    result = CliRunner().invoke(main, ["compact", str(cut)])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and "not compacting an incomplete tape" in result.output
    assert cut.read_bytes() == source.read_bytes()[:-5]


def test_demo_without_the_openai_sdk_says_which_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "openai", None)  # what `import openai` finds when it is not installed
    result = CliRunner().invoke(main, ["demo"])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1
    assert "pip install 'streamtape[demo]'" in result.output
