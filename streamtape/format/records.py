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
#: Format 1.1 limits on objects, not bytes (spec §4): a file of a few KB can hold millions of tiny records.
#: Records completed in one frame (a writer's frame of a few MiB holds under 400,000 of the smallest).
MAX_FRAME_RECORDS = 1 << 20
#: Arrays and maps nested in one record, counting the record's own array (no record type needs 5).
MAX_DEPTH = 64
#: A header record's size: its ``meta`` is small JSON-like metadata, decoded into as many objects as it holds.
MAX_HEADER_SIZE = 1 << 20
#: Header (name, value) pairs in one request or response.
MAX_HEADERS = 1 << 16

#: Reader defaults, configurable per call (``iter_records``/``open_tape`` keywords).
#: Records per tape: far above the ~4 million chunks of a real 1 GB stream.
MAX_RECORDS = 50_000_000
#: What ``open_tape`` holds in memory: records, and bytes of record content.
MAX_HELD_RECORDS = 8_000_000
MAX_HELD_BYTES = 2 << 30
#: Times from an exchange's request (response, chunk, end, gap): a day. A request's own time (from the
#: segment's start) only has to be a 63-bit monotonic reading.
MAX_TIME_NS = 86_400 * 10**9
MAX_REQUEST_TIME_NS = 2**63 - 1

#: ``incomplete`` is what a reader reports for an exchange with no end record; recorders never write it,
#: but a tool re-saving a damaged tape may.
Outcome = Literal["complete", "error", "client_closed", "incomplete"]

Headers = list[tuple[str, str]]


class RedactionPass(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    """Format 1.1: one rewrite of a recorded tape that redacted more (``streamtape redact``), and its key.

    A pass's key may differ from the recorder's: the fingerprints it wrote compare only with fingerprints
    under the same ``key_id``.
    """

    #: The program that rewrote the tape, e.g. ``"streamtape 0.2.0"``.
    tool: str
    key_id: str


class Redaction(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    """What the writer redacted, so a reader knows which values are fingerprints and whether two tapes' agree.

    The fields after ``scheme`` are format 1.1 ("richer redaction"), written by ``streamtape redact``; each
    has a default, so older tapes read as they were and older readers ignore them.
    """

    headers: list[str]
    query: list[str]
    #: Identifies the recorder's fingerprint key (or, when the recorder redacted nothing, the first pass's):
    #: equal key ids mean equal secrets have equal fingerprints.
    key_id: str
    scheme: str = "hmac-sha256-48"
    #: JSON fields replaced whole (names, matched at any depth, or ``$.``-paths), in request bodies and in
    #: the JSON ``data:`` payloads of response events.
    body_fields: list[str] = []
    #: Kinds of secret replaced wherever they were found (``openai-key``, ``jwt``, ...).
    kinds: list[str] = []
    #: The user's own patterns, each as the fingerprint of its text (a pattern may be a literal secret).
    patterns: list[str] = []
    #: Whether the prompts of request bodies (the user's messages, system prompts, instructions) were replaced.
    prompts: bool = False
    #: The rewrites after recording, oldest first; empty for a tape as its recorder wrote it.
    passes: list[RedactionPass] = []


class Applied(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    """Format 1.1: one fault applied to a recorded tape to derive this one (``streamtape.faults``)."""

    #: The fault's name: ``truncate``, ``stall``, ``rechunk``, ``drop``, ``duplicate``, ``delay_head``, ...
    fault: str
    #: The exchange it was applied to, numbered as ``info`` shows them; None for every one it applied to.
    exchange: int | None
    #: Its parameters as given (those left unset are not listed).
    params: dict[str, Any] = {}


class Header(msgspec.Struct, tag="header", array_like=True, frozen=True):
    """First record of a tape, and of every segment appended to it later."""

    magic: str
    version: tuple[int, int]
    writer: str
    #: Wall-clock time (Unix epoch, ns) at which the segment started; the zero of its requests' ``t_ns``.
    started_unix_ns: int
    meta: dict[str, Any] = {}
    redaction: Redaction | None = None
    #: Format 1.1: the faults applied, in order, when this tape was derived from a recording (its provenance).
    provenance: list[Applied] | None = None


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
