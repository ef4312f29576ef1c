"""Sans-IO tape codec: records to bytes, and compressed bytes back to records.

No files, no clocks. ``encode_record`` appends one length-delimited record to a buffer; ``encode_frame``
turns records into one independent zstd frame (``compress_frame`` does it for records already encoded). ``TapeDecoder`` is a push parser in the manner of
h11: feed it the file's bytes in any pieces, it returns records. It walks the zstd frame structure itself
(frame header, block headers, checksum) so it knows where each frame starts and ends, can name the byte
at which a file is damaged, can tell a cut file (incomplete) from a corrupt one (error), and can bound
memory per block on hostile input.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Any

import msgspec
import zstandard

from ..errors import CorruptTapeError, NotATapeError, TapeLimitError, TapeVersionError
from .records import (
    FORMAT_MAJOR,
    FORMAT_MINOR,
    MAGIC,
    MAX_FRAME_SIZE,
    MAX_RECORD_SIZE,
    MAX_WINDOW_SIZE,
    Record,
)

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_SKIPPABLE_MAGIC_HIGH = 0x184D2A5  # skippable frames: magic 0x184D2A50..0x184D2A5F, little-endian
_LENGTH_SIZE = 4
_KNOWN_TAGS = frozenset({"header", "request", "response", "chunk", "end", "gap"})
_MAX_BLOCK_SIZE = 128 * 1024

_encoder = msgspec.msgpack.Encoder()
_pack_length = struct.Struct(">I").pack_into
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


def _check_header_fields(fields: list[Any], index: int) -> None:
    """Reject a header of another format, or of a newer major version, before decoding it strictly."""
    if len(fields) < 3 or fields[1] != MAGIC:
        raise NotATapeError("not a tape: the first record is not a streamtape header")
    version = fields[2]
    if not (isinstance(version, list) and len(version) == 2 and all(isinstance(v, int) for v in version)):
        raise CorruptTapeError(f"record #{index}: malformed format version {version!r}")
    if version[0] > FORMAT_MAJOR:
        writer = fields[3] if len(fields) > 3 and isinstance(fields[3], str) else "an unknown writer"
        raise TapeVersionError(
            f"written in tape format {version[0]}.{version[1]} by {writer}; this reader understands "
            f"format {FORMAT_MAJOR}.x (up to {FORMAT_MAJOR}.{FORMAT_MINOR}): upgrade streamtape to read it"
        )


def decode_record(body: bytes | memoryview, index: int, *, header_first: bool = True) -> Record | None:
    """Decode one record body. Returns None for a record tag this reader does not know (a newer minor).

    ``header_first``: record #0 must be a header (False when decoding from the middle of a tape).
    """
    first = index == 0 and header_first
    try:
        loose = msgspec.msgpack.decode(body)
    except (msgspec.DecodeError, ValueError) as exc:  # ValueError: invalid UTF-8 in a str
        if first:
            raise NotATapeError("not a tape: the first record is not a streamtape header") from None
        raise CorruptTapeError(f"record #{index} is not valid MessagePack: {exc}") from None
    if not (isinstance(loose, list) and loose and isinstance(loose[0], str)):
        if first:
            raise NotATapeError("not a tape: the first record is not a streamtape header")
        raise CorruptTapeError(f"record #{index} is not a tagged record")
    tag = loose[0]
    if first and tag != "header":
        raise NotATapeError("not a tape: the first record is not a streamtape header")
    if tag == "header":
        _check_header_fields(loose, index)
    if tag not in _KNOWN_TAGS:
        return None
    try:
        return _decoder.decode(body)
    except (msgspec.DecodeError, ValueError) as exc:
        raise CorruptTapeError(f"record #{index} ({tag}) is malformed: {exc}") from None


class _FrameState:
    """Where the decoder is inside the current zstd frame."""

    __slots__ = ("checksum", "content", "dobj", "last_block", "offset", "skip")

    def __init__(self, offset: int) -> None:
        self.offset = offset
        self.dobj: Any = None
        self.content = bytearray()
        self.checksum = False
        self.last_block = False
        self.skip = 0  # bytes left of a skippable frame


class TapeDecoder:
    """Push parser: compressed tape bytes in (any split), records out.

    ``feed`` returns the records of every frame that completed and passed its checksum. ``finish`` is called
    at end of input: it returns the complete records of a frame cut short (unverified, but whole), and sets
    ``incomplete`` and ``problem`` when the input did not end on a frame and record boundary.
    ``good_end`` is the offset just past the last complete frame: where an appending writer may continue.
    """

    def __init__(self, *, header_first: bool = True) -> None:
        """``header_first=False`` decodes from a frame in the middle of a tape (a writer mending its tail)."""
        self._header_first = header_first
        self._buf = bytearray()
        self._pos = 0  # absolute offset of _buf[0]
        self._frame: _FrameState | None = None
        self._records = bytearray()  # decompressed bytes not yet split into records
        self._records_offset = 0  # decompressed offset of _records[0], for messages
        self._dctx = zstandard.ZstdDecompressor(max_window_size=MAX_WINDOW_SIZE)
        self.count = 0  # records decoded so far (including skipped unknown ones)
        self.good_end = 0
        self.incomplete = False
        self.problem: str | None = None

    # -- input ---------------------------------------------------------------------------------------
    def feed(self, data: bytes | bytearray | memoryview) -> list[Record]:
        self._buf += data
        out: list[Record] = []
        while self._step(out):
            pass
        return out

    def finish(self) -> list[Record]:
        """End of input. Returns what a cut frame still holds; flags the tape incomplete if it was cut."""
        out: list[Record] = []
        frame = self._frame
        if self._pos == 0 and not self._buf and frame is None:
            raise NotATapeError("empty file")
        if frame is not None or self._buf:
            self.incomplete = True
            cut_at = self._pos + len(self._buf)
            self.problem = f"the tape is cut at byte {cut_at}, inside the frame that starts at byte {self._frame_start()}"
            if frame is not None and frame.skip == 0 and frame.content:
                self._split_records(frame.content, out)
        if self._records:
            self.incomplete = True
            self.problem = self.problem or (
                f"the tape ends inside a record ({len(self._records)} bytes of it at decompressed offset "
                f"{self._records_offset})"
            )
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
        """Advance by one unit (frame header, block, checksum); False when more input is needed."""
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
                self._feed_block(frame, tail)
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
        self._feed_block(frame, block)
        frame.last_block = bool(last)
        return True

    def _start_frame(self) -> bool:
        if len(self._buf) < 4:
            return False
        magic = bytes(self._buf[:4])
        offset = self._pos
        if magic != ZSTD_MAGIC:
            if int.from_bytes(magic, "little") >> 4 == _SKIPPABLE_MAGIC_HIGH:
                if len(self._buf) < 8:
                    return False
                frame = _FrameState(offset)
                frame.skip = int.from_bytes(self._buf[4:8], "little")
                del self._buf[:8]
                self._pos += 8
                if frame.skip == 0:
                    self.good_end = self._pos
                    return True
                self._frame = frame
                return True
            if offset == 0:
                raise NotATapeError("not a tape: the file does not start with a zstd frame")
            raise CorruptTapeError(f"bytes at offset {offset} are not a zstd frame", offset=offset)
        if len(self._buf) < 6:
            return False
        descriptor = self._buf[4]
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
        frame.checksum = bool(checksum)
        frame.dobj = self._dctx.decompressobj()
        self._frame = frame
        self._feed_block(frame, header)
        return True

    def _feed_block(self, frame: _FrameState, data: bytes) -> None:
        try:
            produced = frame.dobj.decompress(data)
        except zstandard.ZstdError as exc:
            raise CorruptTapeError(
                f"corrupt zstd frame at byte {frame.offset}: {exc}", offset=frame.offset
            ) from None
        frame.content += produced
        if len(frame.content) > MAX_FRAME_SIZE:
            raise TapeLimitError(
                f"zstd frame at byte {frame.offset} decompresses to over {MAX_FRAME_SIZE} bytes",
                offset=frame.offset,
            )

    def _end_frame(self, frame: _FrameState, out: list[Record]) -> None:
        if not frame.dobj.eof:
            raise CorruptTapeError(
                f"corrupt zstd frame at byte {frame.offset}: frame did not end", offset=frame.offset
            )
        self._frame = None
        self.good_end = self._pos
        self._split_records(frame.content, out)

    # -- records -------------------------------------------------------------------------------------
    def _split_records(self, content: bytes | bytearray, out: list[Record]) -> None:
        buf = self._records
        buf += content
        view = memoryview(buf)
        at = 0
        try:
            while len(buf) - at >= _LENGTH_SIZE:
                size = int.from_bytes(view[at : at + _LENGTH_SIZE], "big")
                if size > MAX_RECORD_SIZE:
                    if self.count == 0 and self._header_first:
                        raise NotATapeError("not a tape: the content does not start with a streamtape header")
                    raise TapeLimitError(
                        f"record #{self.count} declares {size} bytes, over the {MAX_RECORD_SIZE} byte record limit"
                    )
                end = at + _LENGTH_SIZE + size
                if end > len(buf):
                    break
                record = decode_record(
                    view[at + _LENGTH_SIZE : end], self.count, header_first=self._header_first
                )
                self.count += 1
                if record is not None:
                    out.append(record)
                at = end
        finally:
            view.release()
        del buf[:at]
        self._records_offset += at
