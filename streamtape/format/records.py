"""The tape's record types: the single source of the format (``spec/records.schema.json`` is generated here).

A tape's decompressed content is a sequence of records, each a 4-byte big-endian length followed by a
MessagePack array whose first element is the record's tag. Records are ``array_like`` msgspec Structs:
a minor format version may append fields (older readers ignore them) and new record tags (older readers
skip them), which is why every field after the original ones must have a default.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

MAGIC = "streamtape"
FORMAT_MAJOR = 1
FORMAT_MINOR = 1

#: Hard limits that keep a reader's memory bounded on hostile files (see spec/tape-format.md).
MAX_RECORD_SIZE = 64 * 1024 * 1024
MAX_FRAME_SIZE = 128 * 1024 * 1024
MAX_WINDOW_SIZE = 32 * 1024 * 1024

#: ``incomplete`` is what a reader reports for an exchange with no end record; recorders never write it,
#: but a tool re-saving a damaged tape may.
Outcome = Literal["complete", "error", "client_closed", "incomplete"]

Headers = list[tuple[str, str]]


class Redaction(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    """What the writer redacted, so a reader knows which values are fingerprints and whether two tapes' agree."""

    headers: list[str]
    query: list[str]
    #: Identifies the fingerprint key: equal key ids mean equal secrets have equal fingerprints.
    key_id: str
    scheme: str = "hmac-sha256-48"


class Header(msgspec.Struct, tag="header", array_like=True, frozen=True):
    """First record of a tape, and of every segment appended to it later."""

    magic: str
    version: tuple[int, int]
    writer: str
    #: Wall-clock time (Unix epoch, ns) at which the segment started; the zero of its requests' ``t_ns``.
    started_unix_ns: int
    meta: dict[str, Any] = {}
    redaction: Redaction | None = None


class Request(msgspec.Struct, tag="request", array_like=True, frozen=True):
    """A request as the transport received it. ``t_ns`` counts from the segment's start."""

    x: int
    t_ns: int
    method: str
    url: str
    #: Ordered (name, value) pairs; each string is the latin-1 decoding of the raw header bytes.
    headers: Headers
    body: bytes = b""
    #: The body's full length when the body stored was cut at the record limit, else None.
    body_size: int | None = None


class Response(msgspec.Struct, tag="response", array_like=True, frozen=True):
    """The response head. ``t_ns`` counts from the exchange's request."""

    x: int
    t_ns: int
    status_code: int
    http_version: str
    headers: Headers
    reason: str = ""


class Chunk(msgspec.Struct, tag="chunk", array_like=True, frozen=True):
    """Bytes exactly as the network layer yielded them (de-chunked, not content-decoded)."""

    x: int
    t_ns: int
    data: bytes


class End(msgspec.Struct, tag="end", array_like=True, frozen=True):
    """How the exchange ended, as the client saw it. ``error_type`` is the exception's class name."""

    x: int
    t_ns: int
    outcome: Outcome
    error_type: str | None = None
    message: str | None = None


class Gap(msgspec.Struct, tag="gap", array_like=True, frozen=True):
    """Format 1.1: the recorder lost ``records`` records (``bytes`` of chunk data) of this exchange here.

    Written when a writer could not keep up (its queue was full) or failed to write, so a reader sees
    that the exchange is damaged instead of a stream that looks shorter than it was.
    """

    x: int
    t_ns: int
    records: int
    bytes: int
    reason: str


Record = Header | Request | Response | Chunk | End | Gap

RECORD_TYPES: tuple[type, ...] = (Header, Request, Response, Chunk, End, Gap)
