"""The fleet: ``streamtape upload`` and ``streamtape index`` against a real S3 API on 127.0.0.1 (moto's
server, started here), the index queried with DuckDB, and what it says checked against what the tapes hold
(``open_tape`` + ``diagnose``, computed here independently of the index).

The tapes are real recordings: the emulator's streams through ``streamtape.httpx2.RecordingTransport`` into
a directory, one tape per exchange, as a flight recorder on a pod writes them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import httpx2
import pytest
import s3fs
from click.testing import CliRunner
from conftest import REDACT_KEY
from moto.server import ThreadedMotoServer

import streamtape
import streamtape.httpx2
from streamtape.cli import main
from streamtape.emulator import Emulator
from streamtape.fleet import manifest as manifest_module
from streamtape.fleet.index import build_index
from streamtape.fleet.rows import NAMES, usage_tokens

ROOT = Path(__file__).resolve().parents[1]
CHAT = "/v1/chat/completions"


def _chat(model: str, **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": True, **extra}


#: (knobs, path, body): one exchange each, one tape each. Two chat models, so verdicts group by model.
EXCHANGES: list[tuple[dict[str, Any], str, dict[str, Any]]] = [
    ({"events": 6}, CHAT, _chat("gpt-a", stream_options={"include_usage": True})),
    ({"events": 9}, CHAT, _chat("gpt-b")),
    ({"events": 8, "reset_at": 3}, CHAT, _chat("gpt-a")),  # a TCP reset mid-stream
    ({"events": 8, "cut_at": 4}, CHAT, _chat("gpt-b")),  # the server closes mid-event
    ({"events": 5, "drop_final": True}, CHAT, _chat("gpt-a")),  # no finish_reason: truncated
    ({"status": 429}, CHAT, _chat("gpt-b")),
    ({"status": 500}, CHAT, _chat("gpt-a")),
    ({"events": 7}, "/v1/messages", {"model": "claude-t", "max_tokens": 32, "stream": True}),
    ({"events": 7}, "/v1/responses", {"model": "gpt-r", "input": "hi", "stream": True}),
]
CRASHED = "20261125T000000.000000Z-99-000001.tape"  # a crashed recorder's .partial, renamed
STILL_RECORDING = "20261125T000000.000000Z-99-000002.partial"


@dataclass(frozen=True)
class Recorded:
    """A directory of tapes as a pod's recorder leaves it, and a copy of the crashed tape's ``.partial``."""

    directory: Path
    partial: Path


def _record(emu: Emulator, directory: Path) -> Path:
    """One tape per exchange of ``EXCHANGES`` into ``directory``; returns a copy of a ``.partial`` taken
    while a stream was open (what a recorder killed at that moment leaves)."""
    transport = streamtape.httpx2.RecordingTransport(f"{directory}/")
    with httpx2.Client(transport=transport, timeout=10) as client:
        for knobs, path, body in EXCHANGES:
            with contextlib.suppress(httpx2.TransportError):
                client.post(emu.url(**knobs) + path, json=body).read()
        url = emu.url(events=30, pace_ms=5) + CHAT
        with client.stream("POST", url, json=_chat("gpt-a")) as response:
            pieces = response.iter_raw()
            for _ in range(4):
                next(pieces)
            transport.flush()  # on disk now: the request, the head, the chunks so far
            (open_tape,) = directory.glob("*.partial")
            saved = directory.parent / "saved.partial"
            shutil.copyfile(open_tape, saved)
            for _ in pieces:
                pass
    return saved


@pytest.fixture(scope="module")
def recorded(_emulator_server: Emulator, tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    root = tmp_path_factory.mktemp("recorded")
    with pytest.MonkeyPatch.context() as mp:  # the autouse key fixture is per test; this runs before it
        mp.setenv("STREAMTAPE_REDACT_KEY", REDACT_KEY)
        partial = _record(_emulator_server, root / "pod")
    return Recorded(root / "pod", partial)


def _pod(recorded: Recorded, where: Path) -> Path:
    """A fresh copy of the recorded directory, plus the crashed tape, a ``.partial`` still being written
    and a file that is not a tape."""
    shutil.copytree(recorded.directory, where)
    shutil.copyfile(recorded.partial, where / CRASHED)
    shutil.copyfile(recorded.partial, where / STILL_RECORDING)
    (where / "notes.tape").write_bytes(b"not a tape at all\n")
    return where


def _tapes(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*.tape") if p.name != "notes.tape")


def _asked(exchange: streamtape.Exchange) -> str | None:
    return json.loads(exchange.request.body).get("model")


@dataclass(frozen=True)
class Truth:
    """An exchange as ``open_tape`` and ``diagnose`` see it, computed without the index."""

    name: str
    number: int
    model: str | None
    verdict: str
    outcome: str
    error_type: str | None
    ttft_ms: float | None
    hour: datetime
    incomplete: bool


def _truth(directory: Path) -> list[Truth]:
    out = []
    for path in _tapes(directory):
        tape = streamtape.open_tape(path)
        for number, exchange in enumerate(tape.exchanges):
            found = streamtape.diagnose(exchange)
            wall = (tape.segments[exchange.segment].started_unix_ns + exchange.request.t_ns) / 1e9
            hour = datetime.fromtimestamp(wall, UTC).replace(minute=0, second=0, microsecond=0)
            out.append(
                Truth(
                    path.name,
                    number,
                    found.model or _asked(exchange),
                    found.verdict,
                    exchange.end.outcome,
                    exchange.end.error_type,
                    found.first_token_ms,
                    hour,
                    tape.incomplete,
                )
            )
    return out


def _rows(sql: str, parquet: Path | str) -> list[tuple[Any, ...]]:
    with duckdb.connect() as db:
        db.execute("SET TimeZone = 'UTC'")
        return db.execute(sql.replace("INDEX", f"read_parquet('{parquet}')")).fetchall()


def _cli(*args: str) -> Any:
    return CliRunner().invoke(main, list(args))


# -- S3 ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3() -> Iterator[str]:
    """moto's S3 server on 127.0.0.1; boto (so s3fs, in this process and in any child) pointed at it with
    dummy credentials, no config files and no metadata service: nothing leaves the machine."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    with pytest.MonkeyPatch.context() as mp:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            "NO_PROXY": "127.0.0.1,localhost",
        }.items():
            mp.setenv(name, value)
        mp.delenv("AWS_PROFILE", raising=False)
        s3fs.S3FileSystem.clear_instance_cache()
        s3fs.S3FileSystem().mkdir("fleet")
        try:
            yield endpoint
        finally:
            s3fs.S3FileSystem.clear_instance_cache()
            server.stop()


def test_upload_then_index_on_s3_queried_with_duckdb(recorded: Recorded, s3: str, tmp_path: Path):
    pod = _pod(recorded, tmp_path / "pod")
    truth = _truth(pod)
    names = [p.name for p in _tapes(pod)]
    fs = s3fs.S3FileSystem()

    # upload: every finished tape, never the .partial; local tapes deleted once the store holds them
    result = _cli("upload", str(pod), "s3://fleet/pods/pod-a/")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"moved {len(names) + 1} tapes (")  # the not-a-tape is a .tape too
    assert "1 .partial file left (still being written)" in result.stdout
    assert sorted(p.name for p in pod.iterdir()) == [STILL_RECORDING]
    fs.invalidate_cache()
    uploaded = sorted(os.path.basename(k) for k in fs.find("fleet/pods"))
    assert uploaded == sorted([*names, "notes.tape"])
    again = _cli("upload", str(pod), "s3://fleet/pods/pod-a/")
    assert again.exit_code == 0 and again.stdout.startswith("moved 0 tapes (0 bytes)"), again.output

    # index, read in worker processes (batches of 3), straight from S3 into S3
    report = build_index(["s3://fleet/pods/"], "s3://fleet/index", jobs=2, batch_size=3)
    assert (report.indexed, report.exchanges, report.unchanged) == (len(names), len(truth), 0)
    assert [(os.path.basename(t), r) for t, r in report.unreadable] == [
        ("notes.tape", "not a tape: the file does not start with a zstd frame")
    ]
    local = tmp_path / "index"
    fs.invalidate_cache()
    fs.get("fleet/index/", f"{local}/", recursive=True)
    parts = sorted(local.glob("*.parquet"))
    assert len(parts) == 1
    manifest = manifest_module.decode((local / "_manifest.json").read_bytes())
    assert manifest.tapes["s3://fleet/pods/pod-a/notes.tape"].error is not None
    assert all(entry.stamp.etag for entry in manifest.tapes.values())  # an object store's change marker

    every = _rows(
        "SELECT tape, exchange, model, verdict, outcome, error_type FROM INDEX", local / "*.parquet"
    )
    assert len(every) == len(truth)
    assert sorted((os.path.basename(t), n, m, v, o, e) for t, n, m, v, o, e in every) == sorted(
        (t.name, t.number, t.model, t.verdict, t.outcome, t.error_type) for t in truth
    )
    by_model = _rows("SELECT model, verdict, count(*) FROM INDEX GROUP BY ALL", local / "*.parquet")
    assert Counter({(m, v): n for m, v, n in by_model}) == Counter((t.model, t.verdict) for t in truth)
    assert {row[0] for row in _rows("SELECT DISTINCT tape FROM INDEX", local / "*.parquet")} == {
        f"s3://fleet/pods/pod-a/{name}" for name in names
    }

    # a new tape arrives: the next run adds one part with it alone; the others are unchanged (same ETag)
    newcomer = tmp_path / "later"
    newcomer.mkdir()
    shutil.copyfile(
        _tapes(recorded.directory)[0], newcomer / "20261125T010000.000000Z-7-000001-200-complete.tape"
    )
    assert _cli("upload", str(newcomer), "s3://fleet/pods/pod-b").exit_code == 0
    result = _cli("index", "s3://fleet/pods/", "-o", "s3://fleet/index")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"indexed 1 tape (1 exchange), skipped {len(names) + 1} unchanged")
    fs.invalidate_cache()
    assert len(fs.glob("fleet/index/*.parquet")) == 2
    manifest = manifest_module.decode(fs.cat_file("fleet/index/_manifest.json"))
    newest = manifest.tapes["s3://fleet/pods/pod-b/20261125T010000.000000Z-7-000001-200-complete.tape"].part
    assert newest is not None
    fs.get(f"fleet/index/{newest}", str(tmp_path / newest))
    assert _rows("SELECT DISTINCT tape FROM INDEX", tmp_path / newest) == [
        ("s3://fleet/pods/pod-b/20261125T010000.000000Z-7-000001-200-complete.tape",)
    ]

    # a tape replaced in the store (a new ETag): its rows are replaced, never counted twice
    rate_limited = next(name for name in names if "-429-" in name)
    reset = next(name for name in names if "-error" in name)
    fs.pipe_file(f"fleet/pods/pod-a/{rate_limited}", fs.cat_file(f"fleet/pods/pod-a/{reset}"))
    result = _cli("index", "s3://fleet/pods/", "-o", "s3://fleet/index")
    assert result.stdout.startswith(f"indexed 1 tape (1 exchange), skipped {len(names) + 1} unchanged")
    assert "1 changed tape re-indexed" in result.stdout
    final = tmp_path / "final"
    fs.invalidate_cache()
    fs.get("fleet/index/", f"{final}/", recursive=True)
    counts = _rows("SELECT tape, count(*), any_value(outcome) FROM INDEX GROUP BY tape", final / "*.parquet")
    assert len(counts) == len(names) + 1 and all(n == 1 for _, n, _ in counts)
    assert {t: o for t, _, o in counts}[f"s3://fleet/pods/pod-a/{rate_limited}"] == "error"


# -- the README's queries ------------------------------------------------------------------------------------


def _readme_queries() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    fleet = readme.split("\n## Fleet\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sql\n(.*?)```", fleet, re.S)
    assert block is not None, "the README's Fleet section has no ```sql block"
    return [q.strip() for q in block.group(1).split(";") if q.strip()]


def _p95(values: list[float]) -> float:
    """DuckDB's ``quantile_cont(x, 0.95)``: linear interpolation between the closest ranks."""
    ordered = sorted(values)
    at = (len(ordered) - 1) * 0.95
    low = int(at)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (at - low)


def test_the_readme_queries_run_verbatim_and_answer_right(
    recorded: Recorded, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    pod = _pod(recorded, tmp_path / "pod")
    truth = _truth(pod)
    monkeypatch.chdir(tmp_path)
    assert _cli("index", "pod", "-o", "index").exit_code == 0
    truncated, ttft, resets = _readme_queries()
    with duckdb.connect() as db:
        db.execute("SET TimeZone = 'UTC'")
        by_hour = db.execute(truncated).fetchall()
        by_host = db.execute(ttft).fetchall()
        reset_rows = db.execute(resets).fetchall()

    expected = Counter((t.model, t.hour) for t in truth if t.verdict == "truncated")
    assert {(model, hour): n for model, hour, n in by_hour} == expected
    assert ("gpt-a", max(t.hour for t in truth)) in expected  # the dropped ending and the crashed tape

    ((host, streams, p95),) = by_host  # one emulator, one host
    assert host.startswith("127.0.0.1:")
    firsts = [t.ttft_ms for t in truth if t.ttft_ms is not None]
    assert streams == len(firsts)
    assert p95 == round(_p95(firsts), 1)

    wanted = {(t.name, t.number) for t in truth if t.error_type in ("ReadError", "RemoteProtocolError")}
    assert len(wanted) == 2  # the reset and the cut
    assert {(os.path.basename(row[1]), row[2]) for row in reset_rows} == wanted


# -- incremental ---------------------------------------------------------------------------------------------


def test_a_reindex_writes_one_part_for_new_tapes_and_replaces_a_changed_tapes_rows(
    recorded: Recorded, tmp_path: Path
):
    pod = _pod(recorded, tmp_path / "pod")
    out = tmp_path / "index"
    first = _cli("index", str(pod), "-o", str(out))
    assert first.exit_code == 0, first.output
    (part_one,) = out.glob("*.parquet")
    tapes = _tapes(pod)

    # two new tapes; one indexed tape replaced by another recording (a different size)
    fresh = [pod / "20261125T020000.000000Z-8-000001-200-complete.tape", pod / "sub" / "x.tape"]
    fresh[1].parent.mkdir()
    for target, source in zip(fresh, tapes[:2], strict=True):
        shutil.copyfile(source, target)
    changed = next(p for p in tapes if "-429-" in p.name)
    reset = next(p for p in tapes if "-error" in p.name)
    shutil.copyfile(reset, changed)
    second = _cli("index", str(pod), "-o", str(out))
    assert second.exit_code == 0, second.output
    assert second.stdout.startswith(f"indexed 3 tapes (3 exchanges), skipped {len(tapes) - 1 + 1} unchanged")
    assert "1 changed tape re-indexed" in second.stdout

    parts = sorted(out.glob("*.parquet"))
    assert part_one not in parts and len(parts) == 2  # the new part, and the first one rewritten
    manifest = manifest_module.decode((out / "_manifest.json").read_bytes())
    new_part = manifest.tapes[str(fresh[0])].part
    assert new_part is not None
    in_new = {row[0] for row in _rows("SELECT DISTINCT tape FROM INDEX", out / new_part)}
    assert in_new == {str(p) for p in [*fresh, changed]}  # new and changed tapes only
    counts = _rows("SELECT tape, count(*), any_value(outcome) FROM INDEX GROUP BY tape", out / "*.parquet")
    assert all(n == 1 for _, n, _ in counts)  # never counted twice
    assert dict((t, o) for t, _, o in counts)[str(changed)] == "error"  # the new content's row
    assert len(counts) == len(_truth(pod))

    third = _cli("index", str(pod), "-o", str(out))
    assert third.stdout.startswith(f"indexed 0 tapes (0 exchanges), skipped {len(tapes) + 3} unchanged")
    assert sorted(out.glob("*.parquet")) == parts

    # --prune: a tape deleted since drops its rows (without it, they stay)
    fresh[1].unlink()
    kept = _cli("index", str(pod), "-o", str(out))
    assert "1 tape no longer found, rows kept" in kept.stdout
    pruned = _cli("index", str(pod), "-o", str(out), "--prune")
    assert "1 tape no longer found, pruned" in pruned.stdout
    assert str(fresh[1]) not in {row[0] for row in _rows("SELECT tape FROM INDEX", out / "*.parquet")}


def test_a_part_left_by_an_interrupted_run_is_removed(recorded: Recorded, tmp_path: Path):
    pod = _pod(recorded, tmp_path / "pod")
    out = tmp_path / "index"
    assert _cli("index", str(pod), "-o", str(out)).exit_code == 0
    (part,) = out.glob("*.parquet")
    shutil.copyfile(part, out / "part-20260101T000000Z-0000000000000000.parquet")  # a crash before commit
    report = build_index([str(pod)], str(out))
    assert report.leftovers == 1 and report.unchanged == len(_tapes(pod)) + 1
    assert list(out.glob("*.parquet")) == [part]


# -- cut tapes, non-tapes, .partial --------------------------------------------------------------------------


def test_a_tape_cut_mid_write_is_indexed_incomplete_and_nothing_is_skipped_silently(
    recorded: Recorded, tmp_path: Path
):
    pod = _pod(recorded, tmp_path / "pod")
    whole = next(p for p in _tapes(pod) if "-200-complete" in p.name)
    data = whole.read_bytes()
    (pod / "cut-early.tape").write_bytes(data[: len(data) // 2])  # inside the exchange's one block
    out = tmp_path / "index"
    result = _cli("index", str(pod), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "2 cut short" in result.stdout
    assert "1 unreadable" in result.stdout
    assert "1 .partial file left (still being written)" in result.stdout
    warnings = result.stderr.splitlines()
    assert f"streamtape: warning: {pod / 'notes.tape'}: not a tape" in warnings[0]
    assert warnings[1].startswith(f"streamtape: warning: {pod / 'cut-early.tape'}: holds no exchange (")

    rows = _rows(
        "SELECT outcome, verdict, tape_incomplete, chunks FROM INDEX WHERE tape LIKE '%" + CRASHED + "'",
        out / "*.parquet",
    )
    assert rows == [("incomplete", "truncated", True, 4)]
    manifest = manifest_module.decode((out / "_manifest.json").read_bytes())
    assert set(manifest.tapes) == {str(p) for p in pod.glob("*.tape")}  # every tape, no .partial
    assert manifest.tapes[str(pod / CRASHED)].incomplete
    assert manifest.tapes[str(pod / "cut-early.tape")].exchanges == 0
    assert manifest.tapes[str(pod / "notes.tape")].error


def test_upload_leaves_a_partial_alone_and_takes_it_once_renamed(_emulator_server: Emulator, tmp_path: Path):
    """A recorder writing into the directory while upload runs: the open exchange's .partial stays; once the
    exchange ends (renamed .tape), the next run moves it."""
    spool, store = tmp_path / "spool", tmp_path / "store"
    transport = streamtape.httpx2.RecordingTransport(f"{spool}/")
    url = _emulator_server.url(events=20, pace_ms=5) + CHAT
    with httpx2.Client(transport=transport, timeout=10) as client:
        client.post(_emulator_server.url(events=3) + CHAT, json=_chat("gpt-a")).read()
        transport.flush()  # the writer thread has renamed it .tape
        with client.stream("POST", url, json=_chat("gpt-a")) as response:
            pieces = response.iter_raw()
            next(pieces)
            during = _cli("upload", str(spool), f"file://{store}")
            assert [p.suffix for p in spool.iterdir()] == [".partial"]
            for _ in pieces:
                pass
    assert during.stdout.startswith("moved 1 tape (") and "1 .partial file left" in during.stdout
    after = _cli("upload", str(spool), f"file://{store}", "--keep")
    assert after.stdout.startswith("copied 1 tape (") and ".partial" not in after.stdout
    (kept,) = spool.glob("*.tape")  # --keep: still here
    assert len(list(store.glob("*.tape"))) == 2 and (store / kept.name).read_bytes() == kept.read_bytes()


# -- errors --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("verb", "blocked"),
    [("index", "pyarrow"), ("index", "fsspec"), ("index", "s3fs"), ("upload", "fsspec"), ("upload", "s3fs")],
)
def test_a_missing_extra_is_one_line_and_exit_2(verb: str, blocked: str, tmp_path: Path):
    args = (
        ["index", "s3://fleet/pods/", "-o", str(tmp_path / "out")]
        if verb == "index"
        else ["upload", str(tmp_path), "s3://b/x"]
    )
    code = (
        f"import sys; sys.modules[{blocked!r}] = None; from streamtape.cli import main; "
        f"sys.argv = ['streamtape', *{args!r}]; main()"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert (
        done.stderr == f"streamtape: error: {verb} needs the fleet extra: pip install 'streamtape[fleet]'\n"
    )
    assert done.stdout == ""


def test_bad_paths_and_a_bad_manifest_are_one_line_errors(tmp_path: Path):
    missing = _cli("index", str(tmp_path / "nowhere"), "-o", str(tmp_path / "out"))
    assert missing.exit_code == 2
    assert missing.stderr == f"streamtape: error: {tmp_path / 'nowhere'}: no such file or directory\n"
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "_manifest.json").write_text("{not json")
    bad = _cli("index", str(tmp_path), "-o", str(tmp_path / "out"))
    assert bad.exit_code == 2 and bad.stderr.count("\n") == 1
    assert bad.stderr.startswith(
        f"streamtape: error: {tmp_path / 'out'}/_manifest.json: not a streamtape index"
    )
    nodir = _cli("upload", str(tmp_path / "nowhere"), str(tmp_path / "store"))
    assert nodir.exit_code == 2


def test_usage_is_normalized_across_providers():
    assert usage_tokens({"prompt_tokens": 16, "completion_tokens": 12, "total_tokens": 28}) == (16, 12)
    assert usage_tokens({"input_tokens": 9, "output_tokens": 12, "input_tokens_details": {}}) == (9, 12)
    anthropic = {"input_tokens": 8, "cache_creation_input_tokens": 100, "cache_read_input_tokens": 2000}
    assert usage_tokens({**anthropic, "output_tokens": 5}) == (2108, 5)
    assert usage_tokens(None) == (None, None)
    assert "input_tokens" in NAMES and "output_tokens" in NAMES
