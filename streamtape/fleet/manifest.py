"""What an index holds, and what a new run must read. Sans-IO.

An index is a directory of Parquet part files and ``_manifest.json``. The manifest lists every part and
every tape the index has seen, with the tape's stamp (size, and mtime or ETag) and the one part holding its
rows. Parts are never changed in place; each run:

- reads the tapes that are new or whose stamp changed (``plan``), and writes their rows to new parts;
- for the tapes that changed (or, with ``--prune``, vanished), rewrites each part that held their rows
  without them, under a new name (``parts_to_rewrite``), so every exchange has exactly one row and a plain
  ``read_parquet('OUT/*.parquet')`` counts each once;
- writes the manifest (the commit), then deletes the parts it no longer lists. A part the manifest does not
  list was left by an interrupted run and is deleted at the start of the next.

Names starting with ``_`` are skipped by Hive, Spark, Trino and Athena, so the manifest never reads as data.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

import msgspec

FORMAT = "streamtape-index 1"
MANIFEST_NAME = "_manifest.json"
PART_PREFIX = "part-"
PART_SUFFIX = ".parquet"


class Stamp(msgspec.Struct, frozen=True, omit_defaults=True):
    """What says a tape has not changed since it was indexed: its size, and its ETag or its mtime."""

    size: int
    mtime: float | str | None = None
    etag: str | None = None

    def same(self, other: Stamp) -> bool:
        """Same size, and the same ETag when both have one, else the same mtime."""
        if self.size != other.size:
            return False
        if self.etag is not None and other.etag is not None:
            return self.etag == other.etag
        return self.mtime == other.mtime


class Entry(msgspec.Struct, omit_defaults=True):
    """One tape the index has seen."""

    stamp: Stamp
    #: The part file holding its rows; None when it has none (no exchanges, or unreadable).
    part: str | None = None
    exchanges: int = 0
    #: Why the tape could not be read (not a tape, damaged beyond reading): it has no rows.
    error: str | None = None
    #: How an indexed tape is incomplete (cut short, frames missing), as ``Tape.problem`` says.
    incomplete: str | None = None


class Part(msgspec.Struct):
    """One part file: its rows and the tapes they come from."""

    rows: int
    tapes: int
    written_at: str


class Manifest(msgspec.Struct):
    """The whole manifest: every part (by file name), every tape seen (by path or URL)."""

    format: str = FORMAT
    parts: dict[str, Part] = {}
    tapes: dict[str, Entry] = {}


def encode(manifest: Manifest) -> bytes:
    return msgspec.json.format(msgspec.json.encode(manifest), indent=1)


def decode(data: bytes) -> Manifest:
    """The manifest in ``data``; ``ValueError`` saying what is wrong when it is not one."""
    try:
        manifest = msgspec.json.decode(data, type=Manifest)
    except msgspec.DecodeError as exc:
        raise ValueError(f"not a streamtape index manifest ({exc})") from None
    if manifest.format != FORMAT:
        raise ValueError(f"an index manifest of another format ({manifest.format!r}, this is {FORMAT!r})")
    return manifest


def part_name(now: datetime) -> str:
    """A new part's file name: sorts by time, never taken twice (64 random bits)."""
    return f"{PART_PREFIX}{now.strftime('%Y%m%dT%H%M%S')}Z-{secrets.token_hex(8)}{PART_SUFFIX}"


def is_part_name(name: str) -> bool:
    return name.startswith(PART_PREFIX) and name.endswith(PART_SUFFIX)


@dataclass
class Plan:
    """What a run does with the tapes listed: read some, skip the rest, drop the rows of some."""

    #: New tapes, and tapes whose stamp changed, in listing order.
    read: list[str] = field(default_factory=list)
    unchanged: int = 0
    #: Tapes whose rows in their current part must go: changed ones (re-read) and pruned ones.
    drop: set[str] = field(default_factory=set)
    #: Tapes the index holds that were not listed (dropped from the manifest with ``prune``).
    missing: list[str] = field(default_factory=list)


def plan(listed: Mapping[str, Stamp], manifest: Manifest, *, prune: bool = False) -> Plan:
    """Compare what is listed now with what the manifest holds."""
    out = Plan()
    for key, stamp in listed.items():
        known = manifest.tapes.get(key)
        if known is not None and known.stamp.same(stamp):
            out.unchanged += 1
            continue
        out.read.append(key)
        if known is not None and known.part is not None:
            out.drop.add(key)
    out.missing = [key for key in manifest.tapes if key not in listed]
    if prune:
        out.drop.update(key for key in out.missing if manifest.tapes[key].part is not None)
    return out


def parts_to_rewrite(manifest: Manifest, drop: set[str]) -> dict[str, set[str]]:
    """Each part holding rows of a tape in ``drop``, with the tapes it holds that stay."""
    touched = {manifest.tapes[key].part for key in drop if manifest.tapes[key].part is not None}
    staying: dict[str, set[str]] = {part: set() for part in touched if part is not None}
    for key, entry in manifest.tapes.items():
        if entry.part in staying and key not in drop:
            staying[entry.part].add(key)
    return staying


__all__ = [
    "FORMAT",
    "MANIFEST_NAME",
    "Entry",
    "Manifest",
    "Part",
    "Plan",
    "Stamp",
    "decode",
    "encode",
    "is_part_name",
    "part_name",
    "parts_to_rewrite",
    "plan",
]
