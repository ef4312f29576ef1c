"""Generate ``spec/records.schema.json`` from the record types: the types are the schema.

Run ``python -m streamtape.schema > spec/records.schema.json``; a test fails when the file is stale.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec

from .records import FORMAT_MAJOR, FORMAT_MINOR, RECORD_TYPES, Record


def records_schema() -> dict[str, Any]:
    """JSON Schema of one decoded record (a MessagePack array; ``bytes`` are MessagePack bin values)."""
    schema = msgspec.json.schema(Record)
    for cls in RECORD_TYPES:  # name the array positions, which msgspec leaves anonymous
        items = schema["$defs"][cls.__name__]["prefixItems"]
        names = ["tag", *(f.name for f in msgspec.structs.fields(cls))]
        for item, name in zip(items, names, strict=True):
            item["title"] = name
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://streamtape.dev/spec/records-{FORMAT_MAJOR}.{FORMAT_MINOR}.schema.json",
        "title": f"streamtape tape record, format {FORMAT_MAJOR}.{FORMAT_MINOR}",
        "description": (
            "One record of a tape, as a MessagePack array whose first element is the tag. Fields typed "
            "as base64 strings here are MessagePack bin values in a tape. Generated from streamtape/records.py."
        ),
        **schema,
    }


def main() -> None:
    print(json.dumps(records_schema(), indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
