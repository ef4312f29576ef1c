"""One tape file being appended to: a segment written as a stream of zstd blocks. Used by one thread.

``TapeFile`` opens (or creates) the file, takes the lock, mends a tail left cut by a crash, writes the
segment's header, and then takes records, ``flush()`` (a block: durable on disk, bounded loss) and
``end_frame()``. Opening an existing tape reads at most its last frame: the frame markers say where it
starts (tapes from before markers existed are read whole, once).

``check()`` says whether the path still names the open file, and whether the file was cut under the writer
(a log rotation's ``copytruncate``); ``restart()`` begins a new tape in a file cut to nothing, and
``tally()`` counts what the file holds of given exchanges (what a new file at the path will lack), reading
back from a frame marker at or before their first records (``record_floor`` when they began).

Every flush is one ``write`` to an ``O_APPEND`` file. A failed write (disk full, file too large) is undone:
the file is cut back to its last good byte and the open frame is mended before the next write, so the
file on disk is always a readable tape.
"""

from __future__ import annotations

import os
import stat

from ..errors import TapeError
from ..format.codec import TapeDecoder
from ..format.encoder import FRAME_LIMIT, MARKER_SIZE, TapeEncoder, find_last_marker, parse_marker
from ..format.records import Chunk, Header, Record
from .locking import LockHeld, lock_exclusive

_READ_SIZE = 1 << 20
#: How far back from the end a writer looks for the last frame marker: a frame's compressed size is at
#: most its content (``FRAME_LIMIT`` plus one batch of records) and a little framing.
_TAIL_SCAN = 2 * FRAME_LIMIT + (2 << 20)
_OPEN_FLAGS = os.O_RDWR | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
#: The most ``tally`` reads back (compressed bytes); past it, the count is unknown.
TALLY_LIMIT = 64 << 20


class TapeBusy(TapeError):
    """Another process holds the tape open for writing."""


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class TapeFile:
    """An open tape that records are appended to. Raises ``OSError`` / ``TapeError``; callers contain them."""

    def __init__(
        self,
        path: str,
        header: Header,
        *,
        level: int = 3,
        window_log: int | None = None,
        frame_limit: int = FRAME_LIMIT,
        create_only: bool = False,
        follow_links: bool = True,
    ) -> None:
        """``create_only``: the file must not exist yet (``O_EXCL``, which never follows a link either);
        ``follow_links=False``: a symbolic link at ``path`` is refused (``O_NOFOLLOW``), for names that are
        the writer's own rather than the user's."""
        self.path = path
        self._level, self._window_log, self._frame_limit = level, window_log, frame_limit
        flags = _OPEN_FLAGS | (os.O_EXCL if create_only else 0)
        if create_only or not follow_links:
            flags |= getattr(os, "O_NOFOLLOW", 0)
        self._fd = os.open(path, flags, 0o600)
        try:
            try:
                lock_exclusive(self._fd)
            except LockHeld:
                raise TapeBusy("another process is recording to this tape", path=path) from None
            info = os.fstat(self._fd)
            self._identity = (info.st_dev, info.st_ino)
            self.size = info.st_size  # the end of what is on disk and good
            next_sequence = 0
            if stat.S_ISREG(info.st_mode) and info.st_size > 0:
                next_sequence = self._mend()
            self._begin_segment(header, next_sequence)
        except BaseException:
            os.close(self._fd)
            raise

    def _begin_segment(self, header: Header, next_sequence: int) -> None:
        self.segment_start = self.size  # where this writer's segment (its header's frame) starts
        #: Where the last frame marker written starts: a record added now is in a frame starting there or later.
        self.last_marker = self.size
        self._encoder = self._new_encoder(next_sequence)
        self._broken = False
        self.write([header])
        self.flush()

    # -- writing ------------------------------------------------------------------------------------
    def write(self, records: list[Record]) -> None:
        """Encode records into the open frame (``TapeLimitError`` for a record over the limit)."""
        add = self._encoder.add
        for record in records:
            add(record)

    def flush(self) -> None:
        """Make every record written so far durable: end a block (or the frame, past its size limit)."""
        self._put(end_frame=False)

    def end_frame(self) -> None:
        """End the open frame, so the file ends on a verified frame (an idle recorder's resting state)."""
        self._put(end_frame=True)

    @property
    def frame_open(self) -> bool:
        return self._encoder.frame_open

    @property
    def record_floor(self) -> int:
        """Where the frame that a record added now will be in starts, at the earliest: a frame marker's offset
        or the end of the file (where the next frame will start, when none is open and nothing is held)."""
        if not self._encoder.frame_open and not self._encoder.buffered:
            return self.size
        return self.last_marker

    @property
    def buffer(self) -> bytearray:
        """Where whole encoded records may be appended directly (the encoder's pending records)."""
        return self._encoder.pending

    def spill(self) -> None:
        self._encoder.spill()

    def _put(self, *, end_frame: bool) -> None:
        if self._broken:
            self._repair()  # (which replaces the encoder: ask it for bytes only after this)
        data = self._encoder.end_frame() if end_frame else self._encoder.flush()
        if not data:
            return
        try:
            _write_all(self._fd, data)
        except OSError:
            self._broken = True  # what reached the disk of this write ends inside a block: undo it next time
            raise
        at = find_last_marker(data)
        if at is not None:
            self.last_marker = self.size + at
        self.size += len(data)

    def _new_encoder(self, next_sequence: int) -> TapeEncoder:
        return TapeEncoder(
            level=self._level,
            window_log=self._window_log,
            frame_limit=self._frame_limit,
            next_sequence=next_sequence,
        )

    def _repair(self) -> None:
        """After a failed write: cut the file back to its last good byte and end the open frame there.

        The records of the failed write are lost (the caller counts them); everything before is kept.
        """
        os.ftruncate(self._fd, self.size)
        unsent = self._encoder.pending  # records encoded after the failure, not yet compressed: kept
        self._encoder = self._new_encoder(self._mend())
        self._encoder.pending += unsent
        self._broken = False

    def check(self) -> str | None:
        """What happened to the file under the writer, if anything: ``"deleted"`` (nothing at the path),
        ``"replaced"`` (another file there: renamed away, or deleted and created again) or ``"truncated"``
        (the file is shorter than what was written to it: ``copytruncate``). Two system calls."""
        try:
            info = os.stat(self.path)
        except (FileNotFoundError, NotADirectoryError):
            return "deleted"
        except OSError:
            return None  # (permissions): nothing can be told, nothing is done
        if (info.st_dev, info.st_ino) != self._identity:
            return "replaced"
        if self._fd >= 0 and os.fstat(self._fd).st_size < self.size:
            return "truncated"
        return None

    def moved(self) -> bool:
        """Whether the path no longer names this file (deleted or replaced while recording), or it was cut."""
        return self.check() is not None

    def restart(self, header: Header) -> None:
        """After the file was truncated under the writer: empty it (whatever was appended since is a piece
        of a frame) and begin a new tape in it with ``header``. What was not yet written is dropped."""
        os.ftruncate(self._fd, 0)
        self.size = 0
        self._begin_segment(header, 0)

    def tally(self, exchanges: set[int], start: int) -> dict[int, tuple[int, int, int]] | None:
        """For each of ``exchanges``, what the file holds of its chunks: ``(count, bytes, last t_ns)``.

        Reads back from ``start`` (a ``record_floor`` from before their first records, in this segment) in the
        open file, which may no longer be at the path; None when that is more than ``TALLY_LIMIT`` bytes or
        cannot be read. Call after ``end_frame()``.
        """
        if self._fd < 0 or not self.segment_start <= start <= self.size or self.size - start > TALLY_LIMIT:
            return None
        counts = {x: (0, 0, 0) for x in exchanges}
        decoder = TapeDecoder(header_first=False)
        try:
            with open(self._fd, "rb", closefd=False) as f:
                f.seek(start)
                left = self.size - start
                while left > 0 and (data := f.read(min(_READ_SIZE, left))):
                    left -= len(data)
                    self._count(decoder.feed(data), counts)
            self._count(decoder.finish(), counts)
        except (OSError, TapeError):
            return None
        return counts

    @staticmethod
    def _count(records: list[Record], counts: dict[int, tuple[int, int, int]]) -> None:
        for record in records:
            if type(record) is Chunk and record.x in counts:
                n, nbytes, _ = counts[record.x]
                counts[record.x] = (n + 1, nbytes + len(record.data), record.t_ns)

    def close(self) -> None:
        """End the frame and release the file. Idempotent; a failure leaves a readable (cut) tape."""
        if self._fd < 0:
            return
        try:
            self.end_frame()
        finally:
            os.close(self._fd)
            self._fd = -1

    # -- mending ------------------------------------------------------------------------------------
    def _truncate(self, size: int) -> None:
        os.ftruncate(self._fd, size)
        self.size = size

    def _append_frame(self, records: list[Record], sequence: int) -> None:
        encoder = TapeEncoder(next_sequence=sequence)
        encoder.add_all(records)
        data = encoder.end_frame()
        self._broken = True  # until the whole frame is on disk
        _write_all(self._fd, data)
        self._broken = False
        self.size += len(data)

    def _mend(self) -> int:
        """Make the file end on a complete frame, keeping every whole record; return the next sequence."""
        frame_start, tail = self._last_frame()
        if frame_start < 0:
            return self._mend_unmarked()
        sequence = parse_marker(tail)
        assert sequence is not None
        decoder = TapeDecoder(header_first=frame_start == 0)
        try:
            decoder.feed(tail)
            salvaged = decoder.finish()
        except TapeError as exc:
            raise TapeError(f"refusing to append: {exc.reason}", path=self.path) from None
        if not decoder.incomplete:
            return sequence + 1
        # The last frame is cut (a crash, a failed write). If it completed, drop the junk after it; else
        # write its whole records again as a complete frame in its place, under its own sequence number.
        if decoder.good_end > MARKER_SIZE:
            self._truncate(frame_start + decoder.good_end)
            return sequence + 1
        self._truncate(frame_start)
        if not salvaged:
            return sequence
        self._append_frame(salvaged, sequence)
        return sequence + 1

    def _last_frame(self) -> tuple[int, bytes]:
        """Where the last frame (its marker) starts, and the bytes from there to the end: read from the end
        backwards in growing steps, so an idle tape's small last frame costs a small read. ``(-1, b"")``
        when no marker is within ``_TAIL_SCAN`` (a tape written before markers existed)."""
        size, step, start = self.size, 1 << 16, self.size
        with open(self._fd, "rb", closefd=False) as f:
            while start > 0 and size - start < _TAIL_SCAN:
                start = max(0, start - step, size - _TAIL_SCAN)
                f.seek(start)
                tail = f.read(size - start)
                at = find_last_marker(tail)
                if at is not None:
                    return start + at, tail[at:]
                step *= 2
        return -1, b""

    def _mend_unmarked(self) -> int:
        """A tape without frame markers (format 1.0): read it whole to find its last complete frame."""
        decoder = TapeDecoder()
        try:
            with open(self._fd, "rb", closefd=False) as f:
                f.seek(0)
                while data := f.read(_READ_SIZE):
                    decoder.feed(data)
            salvaged = decoder.finish()
        except TapeError as exc:
            raise TapeError(f"refusing to append: {exc.reason}", path=self.path) from None
        if decoder.good_end != self.size:
            self._truncate(decoder.good_end)
            if salvaged:
                self._append_frame(salvaged, 0)
                return 1
        return 0
