"""Sans-IO tape writing: records in, the bytes of a tape out, one streaming zstd frame at a time.

Every tool that writes tapes (the recorders' writer, ``Tape.save``, ``compact``, the test vectors) goes
through ``TapeEncoder``, so every tape has the same crash-safe shape:

- each zstd frame is preceded by a **frame marker**, a 32-byte skippable frame holding the frame's sequence
  number; a writer appending to a tape finds the start of the last frame from the end of the file, so it
  reads at most that frame (``find_last_marker``), and a reader can tell a missing or repeated frame;
- ``flush()`` ends a zstd *block*: everything added so far decodes from the bytes returned, so a file cut
  after them keeps it. Writers flush at the end of every exchange and while a stream is open;
- ``end_frame()`` ends the frame (its checksum verifies it); writers end one when no exchange is open and
  whenever a frame's content passes ``frame_limit``, which bounds a reader's memory per frame.

One long-lived compression context per frame compresses like one frame, not like many small ones.
"""

from __future__ import annotations

from collections.abc import Iterable

import zstandard

from .codec import encode_record
from .records import Record

#: Skippable-frame magic (RFC 8878 reserves 0x184D2A50..5F) of a frame marker, little-endian on disk.
MARKER_MAGIC = 0x184D2A53
MARKER_ID = b"streamtape-frame"
#: magic (4) + size (4) + MARKER_ID (16) + sequence number (8, big-endian).
MARKER_SIZE = 32
_MARKER_PREFIX = MARKER_MAGIC.to_bytes(4, "little") + (MARKER_SIZE - 8).to_bytes(4, "little") + MARKER_ID

#: A frame ends once this much record content is in it (at the next flush).
FRAME_LIMIT = 4 << 20


def frame_marker(sequence: int) -> bytes:
    """The skippable frame that precedes zstd frame number ``sequence`` (0 for a tape's first)."""
    return _MARKER_PREFIX + sequence.to_bytes(8, "big")


def parse_marker(data: bytes | bytearray | memoryview) -> int | None:
    """The sequence number of the frame marker at the start of ``data``, or None if there is none."""
    if len(data) < MARKER_SIZE or bytes(data[: len(_MARKER_PREFIX)]) != _MARKER_PREFIX:
        return None
    return int.from_bytes(data[len(_MARKER_PREFIX) : MARKER_SIZE], "big")


def find_last_marker(data: bytes | bytearray) -> int | None:
    """The offset in ``data`` (the tail of a tape) of the last frame marker, or None."""
    at = data.rfind(_MARKER_PREFIX)
    while at >= 0 and parse_marker(data[at:]) is None:  # a marker cut short at the very end
        at = data.rfind(_MARKER_PREFIX, 0, at)
    return at if at >= 0 else None


def compression_parameters(level: int, window_log: int | None = None) -> zstandard.ZstdCompressionParameters:
    """What every tape frame uses: a content checksum; ``window_log`` bounds a context's memory."""
    if window_log is None:
        return zstandard.ZstdCompressionParameters.from_level(level, write_checksum=1)
    return zstandard.ZstdCompressionParameters.from_level(level, window_log=window_log, write_checksum=1)


class TapeEncoder:
    """Records in, tape bytes out. ``add`` buffers; ``take``, ``flush`` and ``end_frame`` return bytes to append.

    Memory stays bounded whatever is added between flushes: past ``batch`` bytes, encoded records go to
    the compressor, and a frame past ``frame_limit`` ends on its own; ``take()`` hands over what is ready.
    """

    def __init__(
        self,
        *,
        level: int = 3,
        window_log: int | None = None,
        frame_limit: int = FRAME_LIMIT,
        next_sequence: int = 0,
        batch: int = 1 << 20,
    ) -> None:
        self._compressor = zstandard.ZstdCompressor(
            compression_params=compression_parameters(level, window_log)
        )
        self._frame: zstandard.ZstdCompressionObj | None = None
        #: Encoded records not yet given to the compressor. A writer on a hot path may append whole records
        #: here itself (``codec.encode_record``'s layout), then call ``spill()`` now and then.
        self.pending = bytearray()
        self._out = bytearray()  # compressed bytes ready to append
        self._unflushed = False  # records given to the compressor since the last block ended
        self._batch = batch
        self.frame_limit = frame_limit
        self.next_sequence = next_sequence
        self.frame_content = 0  # record bytes in the open frame

    @property
    def frame_open(self) -> bool:
        return self._frame is not None

    @property
    def buffered(self) -> int:
        """Bytes held: encoded records not yet compressed, and compressed bytes not yet taken."""
        return len(self.pending) + len(self._out)

    def add(self, record: Record) -> None:
        """Encode one record (``TapeLimitError`` if it is over the record limit; nothing is added then)."""
        encode_record(record, self.pending)
        if len(self.pending) >= self._batch:
            self.spill()

    def spill(self) -> None:
        """Hand encoded records to the compressor once they pass a batch (bounds memory; writes nothing)."""
        if len(self.pending) >= self._batch:
            self._compress_pending()
            if self.frame_content >= self.frame_limit:
                self._finish_frame()

    def add_all(self, records: Iterable[Record]) -> None:
        for record in records:
            self.add(record)

    def take(self) -> bytes:
        """The compressed bytes ready so far (not necessarily ending on a block)."""
        out = bytes(self._out)
        self._out.clear()
        return out

    def flush(self) -> bytes:
        """End a block: the bytes returned (with any taken before) make every record added so far decodable.

        Ends the frame instead when its content has passed ``frame_limit``.
        """
        if self.pending:
            self._compress_pending()
        if self._unflushed:
            assert self._frame is not None
            if self.frame_content >= self.frame_limit:
                self._finish_frame()
            else:
                self._out += self._frame.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
                self._unflushed = False
        return self.take()

    def end_frame(self) -> bytes:
        """End the open frame (with its checksum); the next record starts a new one."""
        if self.pending:
            self._compress_pending()
        if self._frame is not None:
            self._finish_frame()
        return self.take()

    def _compress_pending(self) -> None:
        if self._frame is None:
            self._out += frame_marker(self.next_sequence)
            self.next_sequence += 1
            self._frame = self._compressor.compressobj()
            self.frame_content = 0
        self.frame_content += len(self.pending)
        self._out += self._frame.compress(bytes(self.pending))
        self.pending.clear()
        self._unflushed = True

    def _finish_frame(self) -> None:
        assert self._frame is not None
        self._out += self._frame.flush(zstandard.COMPRESSOBJ_FLUSH_FINISH)
        self._frame = None
        self._unflushed = False
        self.frame_content = 0
