"""Sans-IO tape codec: records to bytes, and compressed bytes back to records.

No files, no clocks. ``encode_record`` appends one length-delimited record to a buffer; ``encode_frame``
turns records into one independent zstd frame (``compress_frame`` does it for records already encoded).
``TapeDecoder`` is a push parser in the manner of h11: feed it the file's bytes in any pieces, it returns
records. It walks the zstd frame structure itself (frame markers, frame header, block headers, checksum) so
it knows where each frame starts and ends, can name the byte at which a file is damaged, can tell a cut file
(incomplete) from a corrupt one (error), checks the frame markers' sequence (a missing or repeated frame is
*damage*: reported, never silent), and bounds time and memory on hostile input: per block (a streaming
decoder hands out a block's records as soon as it decompresses), per record (typed decoding, limits on
nesting, header size and header count; an unknown record is skipped unread) and per frame and tape (record
caps).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import msgspec
import zstandard

from ..errors import CorruptTapeError, NotATapeError, TapeError, TapeLimitError, TapeVersionError
from .records import (
    FORMAT_MAJOR,
    FORMAT_MINOR,
    MAGIC,
    MAX_DEPTH,
    MAX_FRAME_RECORDS,
    MAX_FRAME_SIZE,
    MAX_HEADER_SIZE,
    MAX_HEADERS,
    MAX_RECORD_SIZE,
    MAX_REQUEST_TIME_NS,
    MAX_TIME_NS,
    MAX_WINDOW_SIZE,
    Chunk,
    Gap,
    Header,
    Headers,
    Record,
    Request,
    Response,
)

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_SKIPPABLE_MAGIC_HIGH = 0x184D2A5  # skippable frames: magic 0x184D2A50..0x184D2A5F, little-endian
#: A frame marker, as ``encoder.frame_marker`` writes it (the encoder imports this module, not the reverse).
_MARKER_MAGIC = 0x184D2A53
_MARKER_ID = b"streamtape-frame"
_MARKER_SIZE = 32
_LENGTH_SIZE = 4
_KNOWN_TAGS = frozenset({"header", "request", "response", "chunk", "end", "gap"})
_MAX_BLOCK_SIZE = 128 * 1024
#: Records larger than this are looked at before decoding (a header's size, a request's header count):
#: under it, a record cannot expand into enough objects to matter.
_PRECHECK_SIZE = 64 * 1024
_MAX_DAMAGE_KEPT = 100
_MAX_HEADERS_SEEN = 4096

_encoder = msgspec.msgpack.Encoder()
_pack_length = struct.Struct(">I").pack_into
_unpack_length = struct.Struct(">I").unpack_from
_NO_LENGTH = bytes(_LENGTH_SIZE)
_decoder: msgspec.msgpack.Decoder[Record] = msgspec.msgpack.Decoder(Record)


def encode_record(record: Record, out: bytearray) -> None:
    """Append ``record`` to ``out`` as a 4-byte big-endian length and its MessagePack body."""
    start = len(out)
    out += _NO_LENGTH
    _encoder.encode_into(record, out, -1)
    size = len(out) - start - _LENGTH_SIZE
    if size > MAX_RECORD_SIZE:
        del out[start:]
        raise TapeLimitError(f"a {type(record).__name__} record of {size} bytes is over the record limit")
    _pack_length(out, start, size)


def new_compressor(level: int = 3) -> zstandard.ZstdCompressor:
    """A compressor that writes what readers rely on: content size and checksum in every frame."""
    return zstandard.ZstdCompressor(level=level, write_checksum=True, write_content_size=True)


def compress_frame(compressor: zstandard.ZstdCompressor, content: bytes | bytearray) -> bytes:
    """One independent zstd frame holding ``content`` (whole records)."""
    return compressor.compress(bytes(content))


def encode_frame(
    records: Iterable[Record], compressor: zstandard.ZstdCompressor | None = None, *, level: int = 3
) -> bytes:
    """``records`` as one independent zstd frame: the unit every tape writer puts on disk."""
    buf = bytearray()
    for record in records:
        encode_record(record, buf)
    return compress_frame(compressor or new_compressor(level), buf)


# -- reading one record ---------------------------------------------------------------------------------

Body = bytes | bytearray | memoryview

#: MessagePack scalars of a fixed size after their type byte: uint 8-64, int 8-64, float 32/64.
_FIXED = {0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8, 0xD0: 1, 0xD1: 2, 0xD2: 4, 0xD3: 8, 0xCA: 4, 0xCB: 8}
#: str 8/16/32 and bin 8/16/32: the size of their length field.
_SIZED = {0xD9: 1, 0xDA: 2, 0xDB: 4, 0xC4: 1, 0xC5: 2, 0xC6: 4}


def _array_at(body: Body, at: int) -> tuple[int, int] | None:
    """(declared length, offset of the first element) of the MessagePack array at ``at``, or None."""
    b = body[at]
    if 0x90 <= b <= 0x9F:
        return b - 0x90, at + 1
    if b == 0xDC:
        return int.from_bytes(body[at + 1 : at + 3], "big"), at + 3
    if b == 0xDD:
        return int.from_bytes(body[at + 1 : at + 5], "big"), at + 5
    return None


def _after_scalar(body: Body, at: int) -> int | None:
    """The offset just past the scalar (int, float, nil, bool, str, bin) at ``at``; None for anything else."""
    b = body[at]
    if b <= 0x7F or b >= 0xE0 or b in (0xC0, 0xC2, 0xC3):
        return at + 1
    if 0xA0 <= b <= 0xBF:
        return at + 1 + b - 0xA0
    if b in _FIXED:
        return at + 1 + _FIXED[b]
    if b in _SIZED:
        n = _SIZED[b]
        return at + 1 + n + int.from_bytes(body[at + 1 : at + 1 + n], "big")
    return None


def peek_tag(body: Body) -> str | None:
    """The tag of a record body, read from its first bytes without decoding the rest (None: no tag)."""
    try:
        if 0x91 <= body[0] <= 0x9F and 0xA0 <= body[1] <= 0xBF:  # the usual: a short array, a short tag
            end = 2 + body[1] - 0xA0
            return bytes(body[2:end]).decode("utf-8") if end <= len(body) else None
        found = _array_at(body, 0)
        if found is None or found[0] == 0:
            return None
        at = found[1]
        b = body[at]
        if 0xA0 <= b <= 0xBF:
            n, at = b - 0xA0, at + 1
        elif b in (0xD9, 0xDA, 0xDB):
            width = _SIZED[b]
            n, at = int.from_bytes(body[at + 1 : at + 1 + width], "big"), at + 1 + width
        else:
            return None
        if at + n > len(body):
            return None
        return bytes(body[at : at + n]).decode("utf-8")
    except (IndexError, UnicodeDecodeError):
        return None


def _declared_headers(body: Body) -> int | None:
    """How many header pairs a request or response declares: the length of its sixth field, an array."""
    try:
        found = _array_at(body, 0)
        if found is None or found[0] < 6:
            return None
        at = found[1]
        for _ in range(5):  # tag, x, t_ns, then method and url (request) or status and http_version
            after = _after_scalar(body, at)
            if after is None:
                return None
            at = after
        headers = _array_at(body, at)
        return None if headers is None else headers[0]
    except IndexError:
        return None


def _precheck(body: Body, index: int) -> None:
    """Limits on what a large record may decode into, checked before it is decoded."""
    tag = peek_tag(body)
    if tag == "header" and len(body) > MAX_HEADER_SIZE:
        raise TapeLimitError(
            f"record #{index} (header) is {len(body)} bytes, over the {MAX_HEADER_SIZE} byte limit of a header"
        )
    if tag in ("request", "response"):
        count = _declared_headers(body)
        if count is not None and count > MAX_HEADERS:
            raise TapeLimitError(
                f"record #{index} ({tag}) declares {count} headers, over the limit of {MAX_HEADERS}"
            )


def _not_a_tape() -> NotATapeError:
    return NotATapeError("not a tape: the first record is not a streamtape header")


def _too_deep(index: int) -> CorruptTapeError:
    return CorruptTapeError(f"record #{index} nests arrays or maps more than {MAX_DEPTH} levels deep")


def _nests_deeper(value: Any, limit: int) -> bool:
    """Whether ``value`` nests lists, tuples and dicts more than ``limit`` levels (walked without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children: Iterable[Any]
        if isinstance(item, dict):
            children = [*item.keys(), *item.values()]
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list | tuple))
    return False


def _version_error(major: int, minor: int, writer: str) -> TapeVersionError:
    return TapeVersionError(
        f"written in tape format {major}.{minor} by {writer}; this reader understands "
        f"format {FORMAT_MAJOR}.x (up to {FORMAT_MAJOR}.{FORMAT_MINOR}): upgrade streamtape to read it"
    )


def _check_header_fields(fields: list[Any], index: int) -> None:
    """Reject a header of another format, or of a newer major version, whose fields do not decode strictly."""
    if len(fields) < 3 or fields[1] != MAGIC:
        raise _not_a_tape()
    version = fields[2]
    if not (isinstance(version, list) and len(version) == 2 and all(isinstance(v, int) for v in version)):
        raise CorruptTapeError(f"record #{index}: malformed format version {_short(version)}")
    if version[0] > FORMAT_MAJOR:
        writer = fields[3] if len(fields) > 3 and isinstance(fields[3], str) else "an unknown writer"
        raise _version_error(version[0], version[1], _short(writer, quote=False))


def _loose(body: Body, index: int) -> list[Any]:
    """A record body decoded without a type (only for a header that did not decode as one)."""
    try:
        value = msgspec.msgpack.decode(body)
    except RecursionError:
        raise _too_deep(index) from None
    except (msgspec.DecodeError, ValueError) as exc:
        raise CorruptTapeError(f"record #{index} is not valid MessagePack: {exc}") from None
    if not isinstance(value, list):
        raise CorruptTapeError(f"record #{index} is not a tagged record")
    return value


def _undecodable(body: Body, index: int, first: bool, why: Exception) -> None:
    """A body the record types refused: returns for a newer record (skipped unread), else raises."""
    tag = peek_tag(body)
    if first and tag != "header":
        raise _not_a_tape()
    if tag is None:
        raise CorruptTapeError(f"record #{index} is not a tagged record")
    if tag not in _KNOWN_TAGS:
        return  # a record type of a newer minor version: skipped without decoding its fields
    if tag == "header":
        _check_header_fields(_loose(body, index), index)
    raise CorruptTapeError(f"record #{index} ({tag}) is malformed: {why}")


def _short(value: object, *, quote: bool = True) -> str:
    text = repr(value) if quote else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _latin1(text: str) -> bool:
    return text.isascii() or max(text) <= "\xff"


def _time_error(record: Record, index: int, limit: int) -> CorruptTapeError:
    tag = record.__struct_config__.tag
    t = getattr(record, "t_ns", 0)
    if t < 0:
        return CorruptTapeError(f"record #{index} ({tag}) has a negative time, {t} ns")
    what = "a day" if limit == MAX_TIME_NS else f"{limit} ns"
    return CorruptTapeError(
        f"record #{index} ({tag}) has a time of {t} ns, past the sanity cap of {what} "
        f"({limit} ns; a reader's max_time_ns raises it)"
    )


def _check_headers(headers: Headers, index: int, tag: str) -> None:
    for name, value in headers:
        if not (_latin1(name) and _latin1(value)):
            raise CorruptTapeError(
                f"record #{index} ({tag}): header {_short(name)}: {_short(value)} is not latin-1 "
                f"(a header holds raw bytes, one code point each)"
            )


def _check(record: Record, index: int, max_time_ns: int) -> None:
    """What the record types cannot say: times in range, strings a replay can put back on the wire."""
    cls = type(record)
    if cls is Chunk:
        t = record.t_ns  # type: ignore[union-attr]
        if t < 0 or t > max_time_ns:
            raise _time_error(record, index, max_time_ns)
        return
    if isinstance(record, Header):
        if record.magic != MAGIC:
            raise _not_a_tape()
        major, minor = record.version
        if major > FORMAT_MAJOR:
            raise _version_error(major, minor, _short(record.writer, quote=False))
        if _nests_deeper(record.meta, MAX_DEPTH - 1):  # the meta map sits inside the record's array
            raise _too_deep(index)
        return
    if isinstance(record, Request):
        if record.t_ns < 0 or record.t_ns > MAX_REQUEST_TIME_NS:
            raise _time_error(record, index, MAX_REQUEST_TIME_NS)
        _check_headers(record.headers, index, "request")
        return
    if record.t_ns < 0 or record.t_ns > max_time_ns:
        raise _time_error(record, index, max_time_ns)
    if isinstance(record, Response):
        if not record.http_version.isascii():
            raise CorruptTapeError(
                f"record #{index} (response): its http_version {_short(record.http_version)} is not ASCII"
            )
        _check_headers(record.headers, index, "response")
        if not _latin1(record.reason):
            raise CorruptTapeError(
                f"record #{index} (response): its reason phrase {_short(record.reason)} is not latin-1"
            )
    elif isinstance(record, Gap) and (record.records < 0 or record.bytes < 0):
        raise CorruptTapeError(f"record #{index} (gap) counts a negative number of records or bytes")


def decode_record(
    body: Body, index: int, *, header_first: bool = True, max_time_ns: int = MAX_TIME_NS
) -> Record | None:
    """Decode one record body. Returns None for a record tag this reader does not know (a newer minor).

    ``header_first``: record #0 must be a header (False when decoding from the middle of a tape).
    ``max_time_ns``: the sanity cap on times counted from a request (response, chunk, end, gap).
    Decoding is typed (a record that is not the shape of its tag fails at the first wrong byte, however
    deeply it nests); only a header's ``meta`` holds values of any shape, and its nesting is checked.
    """
    first = index == 0 and header_first
    if len(body) > _PRECHECK_SIZE:
        _precheck(body, index)
    try:
        record = _decoder.decode(body)
    except msgspec.ValidationError as exc:
        _undecodable(body, index, first, exc)
        return None
    except (
        RecursionError
    ):  # nesting past the interpreter's limit: in a header's meta, or a field past the known ones
        if first and peek_tag(body) != "header":
            raise _not_a_tape() from None
        raise _too_deep(index) from None
    except (msgspec.DecodeError, ValueError) as exc:  # ValueError: invalid UTF-8 in a str
        if first:
            raise _not_a_tape() from None
        raise CorruptTapeError(f"record #{index} is not valid MessagePack: {exc}") from None
    if first and type(record) is not Header:
        raise _not_a_tape()
    _check(record, index, max_time_ns)
    return record


# -- reading a tape -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Damage:
    """A place where the frames are not the sequence their markers number: a frame missing or repeated.

    ``offset`` is the byte at which it shows (a marker); ``lost`` is True when records may be missing
    there (frames missing), False when a repeated frame's records were skipped (nothing lost).
    """

    offset: int
    message: str
    lost: bool


_READ, _SKIP, _CHECK = 0, 1, 2  # a frame's records are read; skipped (a repeat); read if it starts a tape


class _FrameState:
    """Where the decoder is inside the current frame (a zstd frame, or a skippable one being skipped)."""

    __slots__ = (
        "checksum",
        "dobj",
        "error",
        "held",
        "last_block",
        "marker",
        "mode",
        "offset",
        "pending",
        "produced",
        "records",
        "sequence",
        "skip",
    )

    def __init__(self, offset: int) -> None:
        self.offset = offset
        self.dobj: Any = None
        self.checksum = False
        self.last_block = False
        self.skip = 0  # bytes left of a skippable frame
        self.mode = _READ
        self.sequence: int | None = None  # the number its marker gave it
        self.marker = offset  # the offset of its marker (its own, when it has none)
        self.produced = 0  # decompressed bytes
        self.records = 0  # records completed in it
        self.pending: list[Record] = []  # records held until the checksum (when not streaming)
        self.held = bytearray()  # content held until it is known whether the frame starts a tape (_CHECK)
        #: A record of this frame failed before its checksum was read: raised at the frame's end, unless the
        #: checksum fails first (then the frame is what is damaged, and the error names it).
        self.error: TapeError | None = None


class TapeDecoder:
    """Push parser: compressed tape bytes in (any split), records out.

    By default ``feed`` returns the records of every frame that completed and passed its checksum, and
    ``finish`` (at end of input) returns the whole records of a frame cut short. With ``streaming=True``,
    records come out as each block decompresses, before their frame's checksum is read (a failed checksum
    then raises after them), and ``feed_iter`` yields them one block at a time: memory does not grow with
    the number of records in a frame.

    ``finish`` sets ``incomplete`` and ``problem`` when the input did not end on a frame and record
    boundary, or when the frame markers' sequence shows a frame missing or repeated (``damage`` lists those;
    ``on_damage`` is called with each as it is found, before any record that follows it). ``good_end`` is
    the offset just past the last complete frame: where an appending writer may continue.

    Caps (``TapeLimitError``): ``max_records`` records in all, ``max_frame_records`` completed in one frame,
    ``max_content`` decompressed bytes in all; ``max_time_ns`` bounds the times of each exchange.
    """

    def __init__(
        self,
        *,
        header_first: bool = True,
        streaming: bool = False,
        max_records: int | None = None,
        max_frame_records: int = MAX_FRAME_RECORDS,
        max_content: int | None = None,
        max_time_ns: int = MAX_TIME_NS,
        on_damage: Callable[[Damage], None] | None = None,
    ) -> None:
        """``header_first=False`` decodes from a frame in the middle of a tape (a writer mending its tail):
        the first marker then sets where the sequence starts."""
        self._header_first = header_first
        self._streaming = streaming
        self._max_records = max_records
        self._records_left = max_records if max_records is not None else 1 << 62
        self._max_frame_records = max_frame_records
        self._max_content = max_content
        self._max_time_ns = max_time_ns
        self._on_damage = on_damage
        self._buf = bytearray()
        self._pos = 0  # absolute offset of _buf[0]
        self._frame: _FrameState | None = None
        self._records = bytearray()  # decompressed bytes not yet split into records
        self._records_offset = 0  # decompressed offset of _records[0], for messages
        self._dctx = zstandard.ZstdDecompressor(max_window_size=MAX_WINDOW_SIZE)
        self._expected: int | None = 0 if header_first else None  # the next marker's sequence number
        self._marker: tuple[int, int, int] | None = (
            None  # (sequence, offset, mode) of a marker before its frame
        )
        self._headers_seen: set[tuple[int, str]] = set()
        self._cap_hit = False
        self.count = 0  # records decoded so far (including skipped unknown ones)
        self.content = 0  # decompressed bytes so far
        self.good_end = 0
        self.incomplete = False
        self.problem: str | None = None
        self.damage: list[Damage] = []  # the first hundred; ``damage_count`` counts them all
        self.damage_count = 0

    # -- input ---------------------------------------------------------------------------------------
    def feed(self, data: bytes | bytearray | memoryview) -> list[Record]:
        """Take ``data``; return the records it completed (all of them: see ``feed_iter`` to bound memory)."""
        self._buf += data
        out: list[Record] = []
        while self._step(out):
            pass
        return out

    def feed_iter(self, data: bytes | bytearray | memoryview) -> Iterator[Record]:
        """Take ``data``; yield the records it completes, a block's worth at a time. Exhaust it before feeding
        more."""
        self._buf += data
        out: list[Record] = []
        while self._step(out):
            if out:
                yield from out
                out = []
        yield from out

    def finish(self) -> list[Record]:
        """End of input. Returns what a cut frame still holds; flags the tape incomplete if it was cut."""
        out: list[Record] = []
        frame = self._frame
        if self._pos == 0 and not self._buf and frame is None:
            raise NotATapeError("empty file")
        cut: str | None = None
        if frame is not None or self._buf:
            cut_at = self._pos + len(self._buf)
            cut = f"the tape is cut at byte {cut_at}, inside the frame that starts at byte {self._frame_start()}"
            if frame is not None and frame.dobj is not None:
                if frame.error is not None:
                    raise frame.error
                out += frame.pending
                if frame.mode == _CHECK:
                    self._decide(frame, out, final=True)
        elif self._marker is not None:
            sequence, at, _ = self._marker
            cut = f"the tape ends after the marker of frame #{sequence} (at byte {at}), before its frame"
        if self._records and cut is None:
            cut = (
                f"the tape ends inside a record ({len(self._records)} bytes of it at decompressed offset "
                f"{self._records_offset})"
            )
        if cut is not None:
            self.incomplete = True
        parts = [d.message for d in self.damage[:3]]
        if self.damage_count > 3:
            parts.append(f"and {self.damage_count - 3} more places where frames are missing or repeated")
        if cut is not None:
            parts.append(cut)
        self.problem = "; ".join(parts) or None
        if self.count == 0 and self._header_first:
            raise CorruptTapeError(
                f"the tape ends (at byte {self._pos + len(self._buf)}) before its header record"
            )
        return out

    def _frame_start(self) -> int:
        return self._frame.offset if self._frame is not None else self._pos

    # -- frames --------------------------------------------------------------------------------------
    def _take(self, n: int) -> bytes | None:
        if len(self._buf) < n:
            return None
        data = bytes(self._buf[:n])
        del self._buf[:n]
        self._pos += n
        return data

    def _step(self, out: list[Record]) -> bool:
        """Advance by one unit (marker, frame header, block, checksum); False when more input is needed."""
        frame = self._frame
        if frame is None:
            return self._start_frame()
        if frame.skip:
            n = min(frame.skip, len(self._buf))
            del self._buf[:n]
            self._pos += n
            frame.skip -= n
            if frame.skip:
                return False
            self._frame = None
            self.good_end = self._pos
            return True
        if frame.last_block:
            if frame.checksum:
                tail = self._take(4)
                if tail is None:
                    return False
                self._feed_block(frame, tail, out)
            self._end_frame(frame, out)
            return True
        if len(self._buf) < 3:
            return False
        raw = int.from_bytes(self._buf[:3], "little")
        last, kind, size = raw & 1, (raw >> 1) & 3, raw >> 3
        if kind == 3:
            raise CorruptTapeError(
                f"corrupt zstd frame at byte {frame.offset}: reserved block type", offset=frame.offset
            )
        if size > _MAX_BLOCK_SIZE:
            raise CorruptTapeError(
                f"corrupt zstd frame at byte {frame.offset}: block of {size} bytes over the 128 KiB maximum",
                offset=frame.offset,
            )
        block = self._take(3 + (1 if kind == 1 else size))
        if block is None:
            return False
        self._feed_block(frame, block, out)
        frame.last_block = bool(last)
        return True

    def _start_frame(self) -> bool:
        buf = self._buf
        if len(buf) < 4:
            return False
        magic = bytes(buf[:4])
        offset = self._pos
        if magic != ZSTD_MAGIC:
            value = int.from_bytes(magic, "little")
            if value >> 4 == _SKIPPABLE_MAGIC_HIGH:
                if len(buf) < 8:
                    return False
                size = int.from_bytes(buf[4:8], "little")
                if value == _MARKER_MAGIC and size == _MARKER_SIZE - 8:
                    if len(buf) < _MARKER_SIZE:
                        return False
                    if bytes(buf[8:24]) == _MARKER_ID:
                        sequence = int.from_bytes(buf[24:_MARKER_SIZE], "big")
                        del buf[:_MARKER_SIZE]
                        self._pos += _MARKER_SIZE
                        self.good_end = self._pos
                        self._on_marker(sequence, offset)
                        return True
                frame = _FrameState(offset)
                frame.skip = size
                del buf[:8]
                self._pos += 8
                if frame.skip == 0:
                    self.good_end = self._pos
                    return True
                self._frame = frame
                return True
            if offset == 0:
                raise NotATapeError("not a tape: the file does not start with a zstd frame")
            raise CorruptTapeError(f"bytes at offset {offset} are not a zstd frame", offset=offset)
        if len(buf) < 6:
            return False
        descriptor = buf[4]
        fcs_flag, single, reserved, checksum, dict_flag = (
            descriptor >> 6,
            (descriptor >> 5) & 1,
            (descriptor >> 3) & 1,
            (descriptor >> 2) & 1,
            descriptor & 3,
        )
        if reserved:
            raise CorruptTapeError(
                f"corrupt zstd frame at byte {offset}: reserved header bit set", offset=offset
            )
        if dict_flag:
            raise CorruptTapeError(
                f"zstd frame at byte {offset} needs a dictionary, which tapes never use", offset=offset
            )
        fcs_size = (1 if single else 0, 2, 4, 8)[fcs_flag]
        header_size = 5 + (0 if single else 1) + fcs_size
        header = self._take(header_size)
        if header is None:
            return False
        if fcs_size:
            declared = int.from_bytes(header[header_size - fcs_size :], "little") + (
                256 if fcs_size == 2 else 0
            )
            if declared > MAX_FRAME_SIZE:
                raise TapeLimitError(
                    f"zstd frame at byte {offset} declares {declared} bytes, over the {MAX_FRAME_SIZE} byte frame limit",
                    offset=offset,
                )
        frame = _FrameState(offset)
        if self._marker is not None:
            frame.sequence, frame.marker, frame.mode = self._marker
            self._marker = None
        frame.checksum = bool(checksum)
        frame.dobj = self._dctx.decompressobj()
        self._frame = frame
        self._feed_block(frame, header, [])
        return True

    def _feed_block(self, frame: _FrameState, data: bytes, out: list[Record]) -> None:
        try:
            produced = frame.dobj.decompress(data)
        except zstandard.ZstdError as exc:
            raise CorruptTapeError(
                f"corrupt zstd frame at byte {frame.offset}: {exc}", offset=frame.offset
            ) from None
        if not produced:
            return
        frame.produced += len(produced)
        if frame.produced > MAX_FRAME_SIZE:
            if isinstance(frame.error, NotATapeError):  # a large zstd file that is not a tape
                raise frame.error
            raise TapeLimitError(
                f"zstd frame at byte {frame.offset} decompresses to over {MAX_FRAME_SIZE} bytes",
                offset=frame.offset,
            )
        self.content += len(produced)
        if self._max_content is not None and self.content > self._max_content:
            raise TapeLimitError(
                f"the tape's records hold over {self._max_content} bytes (reached in the frame at byte "
                f"{frame.offset}), over the limit given to this reader",
                offset=frame.offset,
            )
        if frame.mode == _SKIP or frame.error is not None:
            return
        target = out if self._streaming else frame.pending
        try:
            if frame.mode == _READ:
                self._split(produced, frame, target)
            else:
                frame.held += produced
                self._decide(frame, target, final=False)
        except TapeError as exc:
            if self._cap_hit:
                raise
            frame.error = exc  # decompress the rest of the frame: its checksum says whether it is to blame

    def _end_frame(self, frame: _FrameState, out: list[Record]) -> None:
        if not frame.dobj.eof:
            raise CorruptTapeError(
                f"corrupt zstd frame at byte {frame.offset}: frame did not end", offset=frame.offset
            )
        if frame.mode == _CHECK and frame.error is None:
            self._decide(frame, out if self._streaming else frame.pending, final=True)
        if frame.error is not None:
            raise frame.error
        self._frame = None
        self.good_end = self._pos
        if frame.pending:
            out += frame.pending

    # -- the frame sequence ----------------------------------------------------------------------------
    def _damaged(self, offset: int, message: str, *, lost: bool) -> None:
        self.incomplete = True
        self.damage_count += 1
        damage = Damage(offset, message, lost)
        if len(self.damage) < _MAX_DAMAGE_KEPT:
            self.damage.append(damage)
        if self._on_damage is not None:
            self._on_damage(damage)

    def _on_marker(self, sequence: int, offset: int) -> None:
        """Check a marker's number against the sequence; decide whether its frame's records are read."""
        if self._marker is not None:
            previous, at, _ = self._marker
            self._damaged(
                at,
                f"frame #{previous} is missing: its marker at byte {at} is followed by another marker",
                lost=True,
            )
        expected = sequence if self._expected is None else self._expected
        if sequence == expected:
            mode = _READ
            self._expected = sequence + 1
        elif sequence > expected:
            which = (
                f"frame #{expected} is missing (or its marker)"
                if sequence == expected + 1
                else f"frames #{expected}-#{sequence - 1} are missing (or their markers)"
            )
            self._damaged(
                offset, f"{which} before the marker of frame #{sequence} at byte {offset}", lost=True
            )
            mode = _READ
            self._expected = sequence + 1
        elif sequence == 0:
            mode = _CHECK  # another tape's first frame (a concatenation), or a repeat of this one's
        else:
            mode = _SKIP
            self._repeated(offset, sequence)
        self._marker = (sequence, offset, mode)

    def _repeated(self, offset: int, sequence: int) -> None:
        self._damaged(
            offset,
            f"the frame at byte {offset} is numbered #{sequence} where #{self._expected} was next: a repeated "
            f"(or out-of-order) frame, whose records are skipped",
            lost=False,
        )

    def _decide(self, frame: _FrameState, out: list[Record], *, final: bool) -> None:
        """A frame numbered 0 mid-file starts a new numbering when it starts another tape: a header not seen
        before, at a record boundary. Anything else is a repeated frame."""
        held = frame.held
        starts: bool | None = None
        if self._records:
            starts = False
        elif len(held) >= _LENGTH_SIZE:
            (size,) = _unpack_length(held, 0)
            if size > MAX_HEADER_SIZE:
                starts = False
            elif len(held) >= _LENGTH_SIZE + size:
                try:
                    record = decode_record(bytes(held[_LENGTH_SIZE : _LENGTH_SIZE + size]), 0)
                    starts = isinstance(record, Header) and _header_key(record) not in self._headers_seen
                except TapeVersionError:
                    starts = True  # another tape, of a newer version: reading it raises the version error
                except TapeError:
                    starts = False
        if starts is None:
            if not final:
                return
            starts = False
        content = bytes(held)
        frame.held = bytearray()
        if starts:
            frame.mode = _READ
            self._expected = 1
            self._split(content, frame, out)
        else:
            frame.mode = _SKIP
            self._repeated(frame.marker, 0)

    # -- records -------------------------------------------------------------------------------------
    def _split(self, content: bytes, frame: _FrameState, out: list[Record]) -> None:
        """Decode the whole records that ``content`` completes (the hot path: a loop per record)."""
        buf = self._records
        buf += content
        n = len(buf)
        if n < _LENGTH_SIZE:
            return
        view = memoryview(buf)
        at = 0
        try:
            while n - at >= _LENGTH_SIZE:
                (size,) = _unpack_length(buf, at)
                index = self.count
                first = index == 0 and self._header_first
                if size > MAX_RECORD_SIZE or (first and size > MAX_HEADER_SIZE):
                    if first:
                        raise NotATapeError(
                            f"not a tape: its first record declares {size} bytes, more than a streamtape "
                            f"header may hold ({MAX_HEADER_SIZE})"
                        )
                    raise TapeLimitError(
                        f"record #{index} declares {size} bytes, over the {MAX_RECORD_SIZE} byte record limit"
                    )
                end = at + _LENGTH_SIZE + size
                if end > n:
                    break
                self._records_left -= 1
                frame.records += 1
                if self._records_left < 0 or frame.records > self._max_frame_records:
                    self._over_cap(frame)
                body = view[at + _LENGTH_SIZE : end]
                try:
                    record = self._decode(body, index, first, size)
                finally:
                    body.release()
                self.count = index + 1
                if record is not None:
                    if type(record) is Header and len(self._headers_seen) < _MAX_HEADERS_SEEN:
                        self._headers_seen.add(_header_key(record))
                    out.append(record)
                at = end
        finally:
            view.release()
        del buf[:at]
        self._records_offset += at

    def _decode(self, body: memoryview, index: int, first: bool, size: int) -> Record | None:
        max_time_ns = self._max_time_ns
        if size > _PRECHECK_SIZE or first:
            return decode_record(body, index, header_first=self._header_first, max_time_ns=max_time_ns)
        try:
            record = _decoder.decode(body)
        except msgspec.ValidationError as exc:  # most often a newer record type, skipped unread
            _undecodable(body, index, False, exc)
            return None
        except (msgspec.DecodeError, ValueError, RecursionError):  # the slow path says what is wrong
            return decode_record(body, index, max_time_ns=max_time_ns)
        if type(record) is Chunk:
            t = record.t_ns
            if t < 0 or t > max_time_ns:
                raise _time_error(record, index, max_time_ns)
        else:
            _check(record, index, max_time_ns)
        return record

    def _over_cap(self, frame: _FrameState) -> None:
        self._cap_hit = True
        if self._records_left < 0:
            raise TapeLimitError(
                f"the tape holds over {self._max_records} records (reached in the frame at byte {frame.offset}), "
                f"over the limit given to this reader (max_records)",
                offset=frame.offset,
            )
        raise TapeLimitError(
            f"the frame at byte {frame.offset} holds over {self._max_frame_records} records, over the "
            f"limit per frame",
            offset=frame.offset,
        )


def _header_key(header: Header) -> tuple[int, str]:
    """What tells one recording's header from another's: its start time and its writer."""
    return (header.started_unix_ns, header.writer)
