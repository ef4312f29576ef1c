"""``info``, ``info --json`` and ``cat`` on a header whose ``meta`` holds more than JSON (issue 9).

``meta`` is MessagePack from a stranger's file: bin values, maps whose keys are not strings, extension
types, timestamps. Every verb shows it (bytes as ``{"text"}`` / ``{"base64"}``, as record fields are) and
exits 0; none prints a ``TypeError`` traceback.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
from click.testing import CliRunner, Result

import streamtape
from streamtape.cli import main
from streamtape.format.jsonform import MAX_DEPTH, to_json
from streamtape.report.summary import info_document, info_lines
from streamtape.storage.atomic import write_tape

pytestmark = pytest.mark.timeout(60)

BYTES_META: dict[str, Any] = {"service": "chat", "blob": b"\xff\x00\xfe", "note": b"hi", "list": [b"x", 1]}
BYTES_META_JSON = {
    "service": "chat",
    "blob": {"base64": "/wD+"},
    "note": {"text": "hi"},
    "list": [{"text": "x"}, 1],
}


def header(meta: dict[str, Any], started_unix_ns: int = 1_767_225_600 * 10**9) -> streamtape.Header:
    return streamtape.Header("streamtape", (1, 1), "streamtape test", started_unix_ns, meta=meta)


def crafted(path: Path, *headers: streamtape.Header) -> Path:
    """A tape of the given headers (one segment each) and one exchange, written as any writer would."""
    request = streamtape.Request(0, 0, "GET", "http://example.invalid/", [])
    end = streamtape.End(0, 5_000_000, "error", "ConnectError", "refused")
    records: list[Any] = []
    for h in headers:
        records += [h, request, end]
    write_tape(path, records)
    return path


def invoke(*args: str) -> Result:
    result = CliRunner().invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert result.exit_code == 0, result.output
    return result


def test_info_on_a_header_whose_meta_holds_bytes_exits_0_and_shows_them_as_text_or_base64(
    tmp_path: Path,
) -> None:
    tape = crafted(tmp_path / "bytes.tape", header(BYTES_META))
    assert streamtape.open_tape(tape).header.meta["blob"] == b"\xff\x00\xfe"  # the file really holds bin
    lines = invoke("info", str(tape)).output.splitlines()
    (meta,) = [line for line in lines if line.startswith("meta ")]
    assert json.loads(meta.removeprefix("meta").strip()) == BYTES_META_JSON


def test_info_json_on_a_header_whose_meta_holds_bytes_marks_them_text_or_base64(tmp_path: Path) -> None:
    tape = crafted(tmp_path / "bytes.tape", header(BYTES_META))
    doc = json.loads(invoke("info", "--json", str(tape)).output)
    assert doc["header"]["meta"] == BYTES_META_JSON
    assert [s["meta"] for s in doc["segments"]] == [BYTES_META_JSON]


def test_cat_on_a_header_whose_meta_holds_bytes_marks_them_text_or_base64(tmp_path: Path) -> None:
    tape = crafted(tmp_path / "bytes.tape", header(BYTES_META))
    first = json.loads(invoke("cat", str(tape)).output.splitlines()[0])
    assert first["type"] == "header" and first["meta"] == BYTES_META_JSON


def test_info_on_appended_segments_whose_meta_holds_bytes_shows_each(tmp_path: Path) -> None:
    tape = crafted(tmp_path / "two.tape", header({"a": b"\x80"}), header({"b": b"ok"}))
    lines = invoke("info", str(tape)).output.splitlines()
    metas = [line.split("meta", 1)[1].strip() for line in lines if line.strip().startswith("meta ")]
    assert [json.loads(m) for m in metas] == [{"a": {"base64": "gA=="}}, {"b": {"text": "ok"}}]


def test_info_on_meta_with_integer_and_bytes_keys_extension_types_and_timestamps_exits_0(
    tmp_path: Path,
) -> None:
    """Written as raw MessagePack: a map with non-string keys, an ext type, a timestamp, nested bin."""
    meta = {
        "keys": {1: "one", b"\xff": "bin key", b"k": [b"v"]},
        "ext": msgspec.msgpack.Ext(5, b"\xc0\x01"),
        "when": datetime(2026, 1, 1, tzinfo=UTC),
    }
    tape = crafted(tmp_path / "odd.tape", header(meta))
    expected = {
        "keys": {"1": "one", '{"base64": "/w=="}': "bin key", '{"text": "k"}': [{"text": "v"}]},
        "ext": {"ext": 5, "base64": "wAE="},
        "when": "2026-01-01T00:00:00+00:00",
    }
    assert json.loads(invoke("info", "--json", str(tape)).output)["header"]["meta"] == expected
    assert json.loads(invoke("cat", str(tape)).output.splitlines()[0])["meta"] == expected
    assert '"ext": {"base64": "wAE=", "ext": 5}' in invoke("info", str(tape)).output


def test_json_form_of_meta_nested_past_the_depth_limit_is_cut_not_a_recursion_error() -> None:
    nested: Any = b"bottom"
    for _ in range(10_000):
        nested = [nested]
    tape = streamtape.Tape(header({"deep": nested}), [])
    text = "\n".join(info_lines(tape))
    assert '{"too_deep": 1}' in text
    meta = json.dumps(info_document(tape)["header"]["meta"])
    assert meta.count("[") == MAX_DEPTH - 1  # meta is level 1, its lists levels 2 to MAX_DEPTH
    assert to_json([[[b"\x00"]]]) == [[[{"text": "\x00"}]]]


def test_info_on_a_header_whose_start_is_not_a_date_shows_the_number() -> None:
    """A ``Tape`` in memory (or a reader that lets it through): a start past year 9999 is shown as it is."""
    for started in (10**22, -(10**22), 2**400):
        lines = info_lines(streamtape.Tape(header({}, started), []))
        assert f"started {started} ns after the Unix epoch (not a date)" in "\n".join(lines)
