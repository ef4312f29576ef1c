"""``streamtape export --har``: a tape as HAR 1.2, valid against the HAR community's JSON Schema (har-schema),
with every entry telling what the tape holds: statuses, bodies, times, chunks, outcomes, gaps."""

from __future__ import annotations

import base64
import json
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result
from helpers import optional_dependency_missing
from jsonschema import Draft6Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT6

import streamtape
from streamtape.cli import main
from streamtape.cli.export import export
from streamtape.format.records import Chunk, Header, Request, Response
from streamtape.model import Exchange, Tape
from streamtape.report.har import har_document

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = ROOT / ".ci" / "node" / "node_modules" / "har-schema" / "lib"
SAMPLES, VECTORS = ROOT / "samples", ROOT / "spec" / "vectors"
TAPES = [
    *(SAMPLES / f"{n}.tape" for n in ("openai-complete", "openai-reset", "anthropic-overloaded-retry")),
    SAMPLES / "openai-split-emoji.tape",
    *(VECTORS / f"{n}.tape" for n in ("errored", "interleaved", "gap", "cut")),
]


@pytest.fixture(scope="module")
def har_schema() -> Draft6Validator:
    """har.json with every other file of har-schema registered under the id its ``$ref``s use."""
    if not SCHEMAS.is_dir():
        if shutil.which("npm") is None:
            optional_dependency_missing("npm (to install the HAR community's JSON Schema, har-schema)")
        pytest.fail(f"har-schema is missing: run `npm install --prefix {ROOT / '.ci' / 'node'} har-schema@2`")
    schemas = {p.name: json.loads(p.read_text()) for p in SCHEMAS.glob("*.json")}
    registry: Registry[Any] = Registry().with_resources(
        (name, Resource.from_contents(schema, default_specification=DRAFT6))
        for name, schema in schemas.items()
    )
    return Draft6Validator(
        schemas["har.json"], registry=registry, format_checker=Draft6Validator.FORMAT_CHECKER
    )


@pytest.fixture
def cli() -> click.Group:
    """The ``streamtape`` group, with its one-line errors."""
    assert "export" in main.commands
    return main


def har(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(export, ["--har", *args])
    assert result.exit_code == 0, result.output
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc


def not_utf8(data: bytes) -> bool:
    """Whether decoding loses bytes (replacement characters stand for them)."""
    return data.decode("utf-8", "replace").encode("utf-8") != data


def as_bytes(form: dict[str, Any]) -> bytes:
    """A HAR body (``text`` and maybe ``encoding``) or a ``_chunks`` item (``text`` or ``base64``) as bytes."""
    if form.get("encoding") == "base64":
        return base64.b64decode(form["text"])
    if "base64" in form:
        return base64.b64decode(form["base64"])
    text: str = form["text"]
    return text.encode("utf-8")


def test_the_schema_rejects_a_broken_har(har_schema: Draft6Validator):
    """The validation below can fail: a wrong type deep inside an entry, through the schemas' $refs, is seen."""
    doc = har(str(TAPES[0]))
    doc["log"]["entries"][0]["response"]["status"] = "200"
    del doc["log"]["entries"][0]["timings"]["wait"]
    messages = {e.message for e in har_schema.iter_errors(doc)}
    assert messages == {"'200' is not of type 'integer'", "'wait' is a required property"}


@pytest.mark.parametrize("path", TAPES, ids=lambda p: p.name)
def test_every_entry_is_schema_valid_and_tells_what_the_tape_holds(path: Path, har_schema: Draft6Validator):
    doc = har(str(path))
    har_schema.validate(doc)
    tape = streamtape.open_tape(path)
    entries = doc["log"]["entries"]
    assert len(entries) == len(tape.exchanges)
    assert ("comment" in doc["log"]) == tape.incomplete
    for n, (entry, exchange) in enumerate(zip(entries, tape.exchanges, strict=True)):
        assert entry["_exchange"] == n
        assert entry["request"]["method"] == exchange.request.method
        assert entry["request"]["url"] == exchange.request.url
        status = exchange.response.status_code if exchange.response else 0
        assert entry["response"]["status"] == status
        if exchange.response is not None:
            assert as_bytes(entry["response"]["content"]) == exchange.body
            assert entry["response"]["content"]["size"] == entry["response"]["bodySize"] == len(exchange.body)
        if exchange.request.body:
            assert as_bytes(entry["request"]["postData"]) == exchange.request.body
        timings = entry["timings"]
        assert timings["send"] + timings["wait"] + timings["receive"] == pytest.approx(
            entry["time"], abs=1e-3
        )
        assert entry["time"] == pytest.approx(exchange.end.t_ns / 1e6, abs=2e-3)
        if exchange.response is not None:
            assert timings["wait"] == pytest.approx(exchange.response.t_ns / 1e6, abs=1e-3)
        chunks = entry["_chunks"]
        assert [c["size"] for c in chunks] == [len(c.data) for c in exchange.chunks]
        assert [as_bytes(c) for c in chunks] == [c.data for c in exchange.chunks]
        assert [c["t_ms"] for c in chunks] == pytest.approx([c.t_ns / 1e6 for c in exchange.chunks], abs=1e-3)
        assert entry["_outcome"]["outcome"] == exchange.end.outcome
        assert entry["_outcome"]["error_type"] == exchange.end.error_type
        assert entry["_verdict"] == streamtape.diagnose(exchange).verdict
        assert len(entry.get("_gaps", [])) == len(exchange.gaps)
        start_ns = tape.segments[exchange.segment].started_unix_ns + exchange.request.t_ns
        started = datetime.fromisoformat(entry["startedDateTime"]).timestamp()
        assert started == pytest.approx(start_ns / 1e9, abs=1e-3)


def test_a_chunk_that_cuts_a_character_is_given_in_base64_not_lossy_text():
    path = SAMPLES / "openai-split-emoji.tape"
    (exchange,) = streamtape.open_tape(path).exchanges
    (entry,) = har(str(path))["log"]["entries"]
    cut = [i for i, c in enumerate(exchange.chunks) if not_utf8(c.data)]
    assert cut, "the sample no longer cuts a character between chunks"
    for i, chunk in enumerate(entry["_chunks"]):
        assert ("base64" in chunk) == (i in cut)
        assert ("text" in chunk) != (i in cut)
    assert "\ufffd" not in json.dumps(entry["_chunks"], ensure_ascii=False)
    assert "encoding" not in entry["response"]["content"]  # the whole body is UTF-8: text, as received
    assert entry["response"]["content"]["text"] == exchange.body.decode("utf-8")


def test_a_refused_connection_is_status_0_with_the_error_as_browsers_write_it():
    path = VECTORS / "errored.tape"
    tape = streamtape.open_tape(path)
    refused = [n for n, e in enumerate(tape.exchanges) if e.response is None]
    assert refused
    entries = har(str(path))["log"]["entries"]
    for n in refused:
        end = tape.exchanges[n].end
        response = entries[n]["response"]
        assert (response["status"], response["headers"], response["content"]["size"]) == (0, [], 0)
        assert response["_error"] == f"{end.error_type}: {end.message}"
        assert entries[n]["_verdict"] == "error"


def test_a_reset_and_a_retry_keep_each_exchange_own_outcome():
    reset = har(str(SAMPLES / "openai-reset.tape"))["log"]["entries"][0]
    assert reset["_outcome"]["outcome"] == "error" and reset["_verdict"] == "error"
    assert reset["response"]["_error"].startswith(f"{reset['_outcome']['error_type']}: ")
    path = SAMPLES / "anthropic-overloaded-retry.tape"
    statuses = [e.response.status_code for e in streamtape.open_tape(path).exchanges if e.response]
    assert [e["response"]["status"] for e in har(str(path))["log"]["entries"]] == statuses
    assert len(statuses) == 2 and statuses[0] >= 500 > statuses[1]


def test_two_segments_take_each_its_own_start_and_bytes_that_are_not_utf8_go_base64():
    path = VECTORS / "interleaved.tape"
    tape = streamtape.open_tape(path)
    assert len(tape.segments) == 2
    entries = har(str(path))["log"]["entries"]
    binary = [n for n, e in enumerate(tape.exchanges) if not_utf8(e.body)]
    assert binary
    for n in binary:
        assert entries[n]["response"]["content"]["encoding"] == "base64"
    (later,) = [n for n, e in enumerate(tape.exchanges) if e.segment == 1]
    started = datetime.fromisoformat(entries[later]["startedDateTime"]).timestamp() * 1e9
    t_ns = tape.exchanges[later].request.t_ns
    assert started == pytest.approx(tape.segments[1].started_unix_ns + t_ns, abs=1e6)
    assert started != pytest.approx(tape.segments[0].started_unix_ns + t_ns, abs=1e6)


def test_gaps_say_what_the_recorder_lost():
    path = VECTORS / "gap.tape"
    (exchange,) = streamtape.open_tape(path).exchanges
    (entry,) = har(str(path))["log"]["entries"]
    assert [(g["records"], g["bytes"], g["reason"]) for g in entry["_gaps"]] == [
        (g.records, g.bytes, g.reason) for g in exchange.gaps
    ]
    assert "DAMAGED" in entry["comment"]


def test_bodies_not_utf8_or_cut_query_and_cookies_in_a_tape_built_in_memory(har_schema: Draft6Validator):
    header = Header("streamtape", (1, 1), "test", 1_767_225_600_000_000_000)
    request = Request(
        0, 5_000_000, "POST", "http://h/p?a=1&b=&a=%C3%A9", [("Cookie", "s=1; t=2")], b"\xff", 9
    )
    cookie = "id=REDACTED:ab; Path=/; Expires=Wed, 21 Oct 2026 07:28:00 GMT; Secure; HttpOnly"
    head = [("Set-Cookie", cookie), ("Location", "/next"), ("Content-Encoding", "gzip")]
    response = Response(0, 7_000_000, 302, "HTTP/2", head, "Found")
    tape = Tape(
        header, [Exchange(0, 0, request, response, [Chunk(0, 8_000_000, b"\x1f\x8b")])], segments=[header]
    )
    doc = har_document(tape)
    har_schema.validate(doc)
    (entry,) = doc["log"]["entries"]
    post = entry["request"]["postData"]
    assert (post["encoding"], base64.b64decode(post["text"])) == ("base64", b"\xff")
    assert entry["request"]["bodySize"] == 9 and "first 1 of 9 bytes" in post["comment"]
    assert [(q["name"], q["value"]) for q in entry["request"]["queryString"]] == [
        ("a", "1"),
        ("b", ""),
        ("a", "é"),
    ]
    assert entry["request"]["cookies"] == [{"name": "s", "value": "1"}, {"name": "t", "value": "2"}]
    assert entry["response"]["cookies"] == [
        {"name": "id", "value": "REDACTED:ab", "path": "/", "expires": "2026-10-21T07:28:00+00:00"}
        | {"secure": True, "httpOnly": True}
    ]
    assert (entry["response"]["redirectURL"], entry["response"]["statusText"]) == ("/next", "Found")
    assert "gzip" in entry["response"]["content"]["comment"]
    assert entry["startedDateTime"] == "2026-01-01T00:00:00.005+00:00"
    assert entry["_outcome"]["outcome"] == "incomplete"


def test_x_exports_the_exchange_info_numbers_so():
    path = str(VECTORS / "errored.tape")
    whole = har(path)["log"]["entries"]
    assert len(whole) > 1
    for n, entry in enumerate(whole):
        assert har("-x", str(n), path)["log"]["entries"] == [entry]


def test_o_writes_the_file_and_nothing_to_stdout(tmp_path: Path):
    path = str(SAMPLES / "anthropic-overloaded-retry.tape")
    out = tmp_path / "out.har"
    result = CliRunner().invoke(export, ["--har", path, "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert json.loads(out.read_text(encoding="utf-8")) == har(path)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["no-such.tape"], "no-such.tape: no such file"),
        ([str(VECTORS / "not-a-tape.tape")], "not-a-tape.tape: not a tape"),
        (["-x", "7", str(SAMPLES / "openai-complete.tape")], "no exchange #7"),
    ],
    ids=["missing", "not-a-tape", "no-such-exchange"],
)
def test_bad_input_is_one_line_and_exit_2(cli: click.Group, tmp_path: Path, args: list[str], message: str):
    out = tmp_path / "out.har"
    result: Result = CliRunner().invoke(cli, ["export", "--har", "-o", str(out), *args])
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("streamtape: error: ") and message in lines[0]
    assert not out.exists()
