"""Write the test vectors: small tapes and their expected decoded form.

Run ``python spec/vectors/generate.py`` from the repository root. Output is deterministic (fixed times,
fixed zstd level), so a run on an unchanged format rewrites identical files; ``tests/test_spec.py``
checks both that the files are current and that the reader decodes each tape to its ``.json``.

Each ``NAME.json`` holds ``{"description", "incomplete", "records", "error"}``: ``records`` in the JSON form
of ``streamtape cat`` (bytes as ``{"text": ...}`` or ``{"base64": ...}``), ``error`` null or the class of
``TapeError`` a reader raises (then ``records`` is empty).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import msgspec

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from streamtape.format.codec import encode_frame, encode_record, new_compressor  # noqa: E402
from streamtape.format.encoder import TapeEncoder  # noqa: E402
from streamtape.format.jsonform import record_to_json  # noqa: E402
from streamtape.format.records import (  # noqa: E402
    MAX_FRAME_SIZE,
    Chunk,
    End,
    Gap,
    Header,
    Redaction,
    Request,
    Response,
)
from streamtape.model import build_tape  # noqa: E402
from streamtape.scrub import RedactOptions, redact_tape  # noqa: E402

STARTED = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z
HEADER = Header(
    "streamtape",
    (1, 0),
    "streamtape 0.1.0",
    STARTED,
    {"test": "vector"},
    Redaction(headers=["authorization"], query=["key"], key_id="000000000000"),
)
URL = "http://127.0.0.1:8000/v1/chat/completions"
REQ_HEADERS = [
    ("host", "127.0.0.1:8000"),
    ("authorization", "Bearer REDACTED:5dbd6628b1bc"),
    ("content-type", "application/json"),
]
BODY = b'{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}'
SSE_HEADERS = [("content-type", "text/event-stream; charset=utf-8"), ("transfer-encoding", "chunked")]
EVENTS = [
    b'data: {"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}\n\n',
    b'data: {"choices":[{"index":0,"delta":{"content":"Caf\xc3',  # a UTF-8 character split across reads
    b'\xa9 \xe2\x98\x95"}}]}\n\n',
    b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n',
    b"data: [DONE]\n\n",
]


def complete() -> list[list]:
    """One exchange in two frames: request and head, then chunks and end."""
    x = 1
    return [
        [
            HEADER,
            Request(x, 1_000_000, "POST", URL, REQ_HEADERS, BODY),
            Response(x, 180_000_000, 200, "HTTP/1.1", SSE_HEADERS, "OK"),
        ],
        [
            *(Chunk(x, 200_000_000 + i * 25_000_000, e) for i, e in enumerate(EVENTS)),
            End(x, 310_000_000, "complete"),
        ],
    ]


def errored() -> list[list]:
    """A reset after two chunks, a refused connection (no response), and a client that closed early."""
    return [
        [
            HEADER,
            Request(1, 1_000_000, "POST", URL, REQ_HEADERS, BODY),
            Response(1, 150_000_000, 200, "HTTP/1.1", SSE_HEADERS),
            Chunk(1, 160_000_000, EVENTS[0]),
            Chunk(1, 190_000_000, EVENTS[1]),
            End(1, 61_190_000_000, "error", "ReadError", "[Errno 104] Connection reset by peer"),
        ],
        [
            Request(2, 62_000_000_000, "POST", URL, REQ_HEADERS, BODY),
            End(2, 400_000, "error", "ConnectError", "[Errno 111] Connection refused"),
            Request(3, 63_000_000_000, "POST", URL, REQ_HEADERS, BODY),
            Response(3, 120_000_000, 200, "HTTP/1.1", SSE_HEADERS),
            Chunk(3, 130_000_000, EVENTS[0] + EVENTS[4]),
            End(3, 131_000_000, "client_closed", None, "closed before the end of the body"),
        ],
    ]


def interleaved() -> list[list]:
    """Two concurrent exchanges sharing frames, then a second segment appended to the same tape."""
    later = msgspec.structs.replace(HEADER, started_unix_ns=STARTED + 3_600_000_000_000, meta={})
    return [
        [
            HEADER,
            Request(1, 1_000, "POST", URL, REQ_HEADERS, BODY),
            Request(2, 2_000, "POST", URL, REQ_HEADERS, BODY),
            Response(2, 50_000_000, 200, "HTTP/1.1", SSE_HEADERS),
            Response(1, 60_000_000, 200, "HTTP/1.1", SSE_HEADERS),
            Chunk(1, 61_000_000, EVENTS[0]),
            Chunk(2, 51_000_000, b"\xff\xfe not UTF-8"),
            End(2, 52_000_000, "complete"),
            End(1, 62_000_000, "complete"),
        ],
        [later, Request(1, 5_000, "GET", "http://127.0.0.1:8000/health?key=REDACTED:aaaaaaaaaaaa", [], b"")],
        [Response(1, 1_000_000, 204, "HTTP/1.1", []), End(1, 1_100_000, "complete")],
    ]


class Redaction10(msgspec.Struct, frozen=True):
    """The ``redaction`` map as 1.0 writers wrote it: without the keys 1.1 added (spec section 5.1)."""

    headers: list[str]
    query: list[str]
    key_id: str
    scheme: str


class Header10(msgspec.Struct, tag="header", array_like=True, frozen=True):
    """A header as 1.0 writers wrote it; a reader of this version decodes it to a ``Header`` with defaults."""

    magic: str
    version: tuple[int, int]
    writer: str
    started_unix_ns: int
    meta: dict
    redaction: Redaction10 | None


def as_written(record):
    """A record as its version's writer wrote it: a 1.0 header has a 1.0 ``redaction`` map."""
    if not isinstance(record, Header) or tuple(record.version) != (1, 0):
        return record
    r = record.redaction
    old = None if r is None else Redaction10(r.headers, r.query, r.key_id, r.scheme)
    return Header10(record.magic, record.version, record.writer, record.started_unix_ns, record.meta, old)


def frames_bytes(frames: list[list]) -> bytes:
    compressor = new_compressor(level=3)
    return b"".join(encode_frame([as_written(r) for r in frame], compressor) for frame in frames)


HEADER_1_1 = msgspec.structs.replace(HEADER, version=(1, 1), writer="streamtape 0.2.0")


def streamed_blocks() -> list[list]:
    """Format 1.1 as a recorder writes it: one frame (after its marker), a block flushed per step."""
    x = 1
    return [
        [HEADER_1_1],
        [
            Request(x, 1_000_000, "POST", URL, REQ_HEADERS, BODY),
            Response(x, 180_000_000, 200, "HTTP/1.1", SSE_HEADERS, "OK"),
        ],
        [Chunk(x, 200_000_000, EVENTS[0]), Chunk(x, 225_000_000, EVENTS[1])],
        [Chunk(x, 250_000_000, EVENTS[2]), Chunk(x, 300_000_000, EVENTS[3])],
        [Chunk(x, 301_000_000, EVENTS[4]), End(x, 310_000_000, "complete")],
        [Request(2, 400_000_000, "GET", "http://127.0.0.1:8000/health", [], b"")],
        [Response(2, 1_000_000, 204, "HTTP/1.1", []), End(2, 1_100_000, "complete")],
    ]


def streamed_bytes(blocks: list[list], *, end: bool = True) -> tuple[bytes, list[int]]:
    """The tape's bytes, and the offset at which each block ends."""
    encoder = TapeEncoder(level=3)
    out = bytearray()
    ends = []
    for block in blocks:
        encoder.add_all(block)
        out += encoder.flush()
        ends.append(len(out))
    if end:
        out += encoder.end_frame()
    return bytes(out), ends


def gapped() -> list[list]:
    """Format 1.1: the recorder lost two chunks (queue full) and marked the exchange with a gap record."""
    x = 1
    return [
        [HEADER_1_1, Request(x, 1_000_000, "POST", URL, REQ_HEADERS, BODY)],
        [Response(x, 180_000_000, 200, "HTTP/1.1", SSE_HEADERS, "OK"), Chunk(x, 200_000_000, EVENTS[0])],
        [
            Gap(x, 260_000_000, 2, 86, "the writer's queue was full"),
            Chunk(x, 300_000_000, EVENTS[3]),
            Chunk(x, 301_000_000, EVENTS[4]),
            End(x, 310_000_000, "complete"),
        ],
    ]


#: The key of the `redacted` vector's pass (UTF-8 bytes), published so that an implementation can check
#: its fingerprints: ``REDACTED:`` + the first 12 hex digits of HMAC-SHA256(key, secret).
REDACT_KEY = "streamtape-vector-key"
#: Secrets of the shapes ``streamtape scan`` knows, assembled here so that no scanner mistakes this file
#: for a leak. Not real credentials.
OPENAI_KEY = "sk-" + "proj-" + "T3stK3y" * 8
GITHUB_TOKEN = "gh" + "p_" + "0aB1cD2eF3" * 4


def redacted() -> list[list]:
    """Format 1.1, richer redaction: a recording (already redacted by its recorder, key id 000000000000)
    rewritten by `streamtape redact --field user --prompts --pattern 'ticket-[0-9]+'` under the key
    `streamtape-vector-key`: a header and a key that stream split across two chunks became fingerprints
    in place (the key's in the first chunk, the rest of it gone from the second), the prompts and `user`
    became JSON strings holding fingerprints, and the header's `redaction` says what was done and by which
    pass with which key."""
    x = 1
    body = (
        b'{"model":"gpt-4o","stream":true,"user":"alice","messages":[{"role":"system","content":"Be terse."},'
        b'{"role":"user","content":"ticket-4711: why does my key fail?"},'
        b'{"role":"assistant","content":"Which key?"}]}'
    )
    reply = f"Your key {OPENAI_KEY} was revoked (ticket-4711).".encode()
    event = (
        b'data: {"choices":[{"index":0,"delta":{"content":'
        + json.dumps(reply.decode()).encode()
        + b"}}]}\n\n"
    )
    cut = event.index(OPENAI_KEY.encode()) + 20  # inside the key
    source = [
        HEADER_1_1,
        Request(x, 1_000_000, "POST", URL, [*REQ_HEADERS, ("x-debug-token", GITHUB_TOKEN)], body),
        Response(x, 180_000_000, 200, "HTTP/1.1", SSE_HEADERS, "OK"),
        Chunk(x, 200_000_000, EVENTS[0]),
        Chunk(x, 225_000_000, event[:cut]),
        Chunk(x, 250_000_000, event[cut:]),
        Chunk(x, 275_000_000, EVENTS[3] + EVENTS[4]),
        End(x, 310_000_000, "complete"),
    ]
    options = RedactOptions(fields=("user",), patterns=("ticket-[0-9]+",), prompts=True)
    tape = redact_tape(build_tape(source), options, tool="streamtape 0.2.0", key=REDACT_KEY).tape
    return [
        [tape.header, tape.exchanges[0].request, tape.exchanges[0].response],
        list(tape.exchanges[0].records())[2:],
    ]


def derived() -> list[list]:
    """`complete` with faults applied (``streamtape.faults``): its body cut again into 16-byte chunks, then
    truncated after 100 bytes with a ``ReadError``; the header's ``provenance`` lists both, in order."""
    from streamtape import faults

    records = [msgspec.structs.replace(HEADER_1_1, meta={}), *[r for f in complete() for r in f][1:]]
    tape = faults.truncate(faults.rechunk(build_tape(records), size=16), after_bytes=100, error="ReadError")
    (exchange,) = tape.exchanges
    return [[tape.header, exchange.request, exchange.response], [*exchange.chunks, exchange.end]]


def framed(groups: list[list]) -> list[bytes]:
    """Each group of records as its own frame, after its marker: the pieces of a 1.1 tape, numbered from 0."""
    encoder = TapeEncoder(level=3)
    pieces = []
    for group in groups:
        encoder.add_all(group)
        pieces.append(encoder.end_frame())
    return pieces


def five_frames() -> list[list]:
    """A 1.1 tape in five frames: the header; request and head; two frames of chunks; the last chunk and end."""
    return streamed_blocks()[:5]


def one_frame(records: list, raw: bytes = b"") -> bytes:
    """A 1.1 tape of one frame: ``records``, then ``raw`` (encoded records, written as they are)."""
    encoder = TapeEncoder(level=3)
    encoder.add_all(records)
    encoder.pending += raw
    return encoder.end_frame()


def deep_nesting() -> bytes:
    """A header, then a record whose body nests 100,000 arrays (0x91 ... 0xc0): corrupt, never a stack overflow."""
    body = b"\x91" * 100_000 + b"\xc0"
    return one_frame([HEADER_1_1], len(body).to_bytes(4, "big") + body)


def time_past_cap() -> bytes:
    """A chunk 10**15 ns (11.6 days) after its request: past the sanity cap of a day, corrupt."""
    x = 1
    return one_frame(
        [
            HEADER_1_1,
            Request(x, 1_000_000, "POST", URL, REQ_HEADERS, BODY),
            Response(x, 180_000_000, 200, "HTTP/1.1", SSE_HEADERS, "OK"),
            Chunk(x, 10**15, EVENTS[0]),
            End(x, 10**15 + 1, "complete"),
        ]
    )


def header_not_latin1() -> bytes:
    """A response header whose name is not ISO-8859-1 (a header holds bytes, one code point each): corrupt."""
    x = 1
    return one_frame(
        [
            HEADER_1_1,
            Request(x, 1_000_000, "POST", URL, REQ_HEADERS, BODY),
            Response(x, 180_000_000, 200, "HTTP/1.1", [("x-\u20ac", "1")], "OK"),
            End(x, 190_000_000, "complete"),
        ]
    )


def too_many_records() -> bytes:
    """One frame of 1,048,577 records (a header, then empty chunks): over the limit of records in a frame."""
    x = 1
    encoder = TapeEncoder(level=3, frame_limit=MAX_FRAME_SIZE)  # one frame, however many records
    encoder.add_all(
        [HEADER_1_1, Request(x, 0, "GET", URL, [], b""), Response(x, 1, 200, "HTTP/1.1", [], "OK")]
    )
    chunk = bytearray()
    encode_record(Chunk(x, 2, b""), chunk)
    for _ in range(1_048_574 // 4096):
        encoder.pending += bytes(chunk) * 4096
        encoder.spill()
    encoder.pending += bytes(chunk) * (1_048_574 % 4096)
    return encoder.end_frame()


def future_version() -> bytes:
    """A header of format 2.0: readers of 1.x must refuse it with a version error."""
    body = msgspec.msgpack.encode(["header", "streamtape", [2, 0], "streamtape 9.0.0", STARTED, {}, None])
    return new_compressor().compress(len(body).to_bytes(4, "big") + body)


def vectors() -> dict[str, tuple[str, bytes, list, bool, str | None]]:
    """name -> (description, tape bytes, expected records, incomplete, error class)."""
    out: dict[str, tuple[str, bytes, list, bool, str | None]] = {}
    for name, build in (("complete", complete), ("errored", errored), ("interleaved", interleaved)):
        frames = build()
        records = [r for frame in frames for r in frame]
        out[name] = (build.__doc__ or "", frames_bytes(frames), records, False, None)
    # The complete tape cut inside its second frame: the first frame's records survive, flagged incomplete.
    whole = frames_bytes(complete())
    first = frames_bytes(complete()[:1])
    cut = whole[: len(first) + (len(whole) - len(first)) // 2]
    out["cut"] = ("`complete` cut in the middle of its second frame.", cut, complete()[0], True, None)
    out["future-version"] = (future_version.__doc__ or "", future_version(), [], False, "TapeVersionError")
    damaged = bytearray(whole)
    damaged[len(first) + 20] ^= 0xFF  # inside the second frame's compressed data
    out["corrupt-frame"] = (
        f"`complete` with one byte flipped in the frame at byte {len(first)}: a corrupt frame, an error.",
        bytes(damaged),
        [],
        False,
        "CorruptTapeError",
    )
    # Format 1.1: frame markers, a streamed frame with a block per flush, no content size.
    blocks = streamed_blocks()
    data, ends = streamed_bytes(blocks)
    out["streamed"] = (streamed_blocks.__doc__ or "", data, [r for b in blocks for r in b], False, None)
    data, ends = streamed_bytes(blocks, end=False)
    out["never-ended"] = (
        "`streamed` as a killed recorder leaves it: every block flushed, the frame never ended (no checksum).",
        data,
        [r for b in blocks for r in b],
        True,
        None,
    )
    middle = (ends[2] + ends[3]) // 2
    out["cut-mid-block"] = (
        "`streamed` cut in the middle of its fourth block: the records of the three blocks before it.",
        data[:middle],
        [r for b in blocks[:3] for r in b],
        True,
        None,
    )
    blocks = gapped()
    out["gap"] = (
        gapped.__doc__ or "",
        streamed_bytes(blocks)[0],
        [r for b in blocks for r in b],
        False,
        None,
    )
    old = frames_bytes(complete())
    appended = streamed_bytes([[HEADER_1_1], *streamed_blocks()[1:5]])[0]
    out["appended-to-1.0"] = (
        "A format 1.0 tape (`complete`) with a 1.1 segment appended: each segment read by its own version.",
        old + appended,
        [r for f in complete() for r in f] + [HEADER_1_1] + [r for b in streamed_blocks()[1:5] for r in b],
        False,
        None,
    )
    # Format 1.1: the frame markers' sequence. Damage is not an error: every record read, flagged incomplete.
    groups = five_frames()
    pieces = framed(groups)
    out["missing-frame"] = (
        "A tape of five frames whose third (two chunks) is gone: the marker numbered 3 follows number 1. "
        "Every other record, flagged incomplete (damage reported at the offset of the marker numbered 3).",
        b"".join(pieces[:2] + pieces[3:]),
        [r for g in groups[:2] + groups[3:] for r in g],
        True,
        None,
    )
    out["repeated-frame"] = (
        "A tape of five frames whose third is written twice: the copy's records are skipped, the tape is "
        "flagged incomplete (a repeated frame is damage).",
        b"".join(pieces[:3] + pieces[2:]),
        [r for g in groups for r in g],
        True,
        None,
    )
    later = msgspec.structs.replace(HEADER_1_1, started_unix_ns=STARTED + 86_400_000_000_000, meta={})
    second = [[later], [Request(1, 5_000, "GET", "http://127.0.0.1:8000/health", [], b"")]]
    second.append([Response(1, 1_000_000, 204, "HTTP/1.1", []), End(1, 1_100_000, "complete")])
    out["concatenated"] = (
        "Two tapes one after the other (`cat a.tape b.tape`): the second numbers its frames from 0 again and "
        "starts with a header of its own, so it is a second segment, not damage.",
        b"".join(pieces + framed(second)),
        [r for g in groups + second for r in g],
        False,
        None,
    )
    groups = redacted()
    out["redacted"] = (
        redacted.__doc__ or "",
        b"".join(framed(groups)),
        [r for g in groups for r in g],
        False,
        None,
    )
    groups = derived()
    out["derived"] = (
        derived.__doc__ or "",
        b"".join(framed(groups)),
        [r for g in groups for r in g],
        False,
        None,
    )
    out["deep-nesting"] = (deep_nesting.__doc__ or "", deep_nesting(), [], False, "CorruptTapeError")
    out["time-past-cap"] = (time_past_cap.__doc__ or "", time_past_cap(), [], False, "CorruptTapeError")
    out["header-not-latin-1"] = (
        header_not_latin1.__doc__ or "",
        header_not_latin1(),
        [],
        False,
        "CorruptTapeError",
    )
    out["too-many-records"] = (
        too_many_records.__doc__ or "",
        too_many_records(),
        [],
        False,
        "TapeLimitError",
    )
    out["not-a-tape"] = ("A file that is not a zstd stream.", b"data: hello\n\n", [], False, "NotATapeError")
    out["empty"] = ("An empty file.", b"", [], False, "NotATapeError")
    return out


def main() -> None:
    for name, (description, data, records, incomplete, error) in vectors().items():
        (HERE / f"{name}.tape").write_bytes(data)
        doc = {
            "description": " ".join(description.split()),
            "incomplete": incomplete,
            "error": error,
            "records": [record_to_json(r) for r in records],
        }
        (HERE / f"{name}.json").write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
