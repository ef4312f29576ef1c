"""The spec's artefacts agree with the code: the schema is generated, the vectors decode as written."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import pytest

import streamtape
from streamtape.format.jsonform import record_to_json
from streamtape.format.schema import records_schema

SPEC = Path(__file__).resolve().parents[1] / "spec"
VECTORS = sorted((SPEC / "vectors").glob("*.tape"))


def test_schema_file_is_generated_from_the_record_types():
    on_disk = json.loads((SPEC / "records.schema.json").read_text())
    assert on_disk == records_schema(), (
        "spec/records.schema.json is stale: python -m streamtape.format.schema > it"
    )


def test_vectors_on_disk_are_what_the_generator_writes():
    module = runpy.run_path(str(SPEC / "vectors" / "generate.py"))
    for name, (_, data, *_rest) in module["vectors"]().items():
        assert (SPEC / "vectors" / f"{name}.tape").read_bytes() == data, (
            f"{name}.tape is stale: rerun generate.py"
        )


def test_there_are_vectors_for_complete_errored_and_cut_tapes():
    names = {p.stem for p in VECTORS}
    assert {"complete", "errored", "cut", "interleaved", "future-version", "corrupt-frame"} <= names


@pytest.mark.parametrize("path", VECTORS, ids=lambda p: p.stem)
def test_vector_decodes_to_its_expected_form(path: Path):
    expected = json.loads(path.with_suffix(".json").read_text())
    if expected["error"]:
        with pytest.raises(streamtape.TapeError) as info:
            list(streamtape.iter_records(path))
        assert type(info.value).__name__ == expected["error"]
        assert str(path) in str(info.value)
        return
    stream = streamtape.iter_records(path)
    records = json.loads(json.dumps([record_to_json(r) for r in stream]))
    assert records == expected["records"]
    assert stream.incomplete == expected["incomplete"]
    tape = streamtape.open_tape(path)
    assert tape.incomplete == expected["incomplete"]
