"""Appending records to a tape file, crash-safely, without ever disturbing the traffic being recorded.

Records are encoded into a buffer on the caller's thread (cheap); the buffer becomes one independent zstd
frame at the end of every exchange and, while a stream is open, at most ``flush_interval`` after its
first pending record, written by a small background thread so that a stalled stream's last bytes still
reach the disk. Every frame is one ``write`` to an ``O_APPEND`` file, so a killed process leaves a tape
that reads back everything flushed.

Any I/O failure is logged once and turns the writer off: the caller's requests never see it.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import stat
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from .._version import __version__
from ..errors import TapeError
from ..format.codec import TapeDecoder, compress_frame, encode_frame, encode_record, new_compressor
from ..format.records import FORMAT_MAJOR, FORMAT_MINOR, MAGIC, Header, Record, Redaction
from .atomic import write_tape
from .locking import LockHeld, lock_exclusive
from .reader import iter_records

logger = logging.getLogger("streamtape")

WRITER = f"streamtape {__version__}"
Clock = Callable[[], int]


class TapeWriter:
    """One open tape file. Shared by every recorder in the process that targets the same path."""

    def __init__(
        self,
        path: str,
        *,
        meta: dict[str, Any] | None = None,
        redaction: Redaction | None = None,
        flush_interval: float = 0.25,
        level: int = 3,
        clock: Clock = time.perf_counter_ns,
        compact: bool = True,
    ) -> None:
        self.path = path
        self.compact = compact
        self.clock = clock
        self.flush_interval_ns = int(flush_interval * 1e9)
        self.failure: BaseException | None = None
        self._reported = False
        self._compressor = new_compressor(level)
        self._buf = bytearray()
        self._first_pending = 0
        self._lock = threading.Lock()  # guards _buf
        self._io_lock = threading.Lock()  # keeps frames in order on disk
        self._wake = threading.Condition(self._lock)
        self._closed = False
        self._next_id = 0
        self._thread: threading.Thread | None = None
        self._fd = self._open(path)
        self.origin_ns = clock()
        header = Header(
            MAGIC, (FORMAT_MAJOR, FORMAT_MINOR), WRITER, time.time_ns(), dict(meta or {}), redaction
        )
        self.append(header)
        self.flush()
        _live.add(self)

    def _open(self, path: str) -> int:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0), 0o600)
        try:
            try:
                lock_exclusive(fd)
            except LockHeld:
                raise TapeError(
                    "another process is recording to this tape; give each process its own", path=path
                ) from None
            info = os.fstat(fd)
            if stat.S_ISREG(info.st_mode) and info.st_size > 0:
                self._prepare_append(fd, info.st_size)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _prepare_append(self, fd: int, size: int) -> None:
        """Refuse to append to a file that is not a tape; mend a tail cut by a crash, losing nothing."""
        decoder = TapeDecoder()
        try:
            with open(self.path, "rb") as f:
                while data := f.read(1 << 20):
                    decoder.feed(data)
            salvaged = decoder.finish()
        except TapeError as exc:
            raise TapeError(f"refusing to append: {exc.reason}", path=self.path) from None
        if decoder.good_end == size:
            return
        # The tail is a frame cut short. Keep its whole records by writing them again as a proper frame.
        logger.warning(
            "streamtape: %s ended in a cut frame at byte %d; mending it before appending",
            self.path,
            decoder.good_end,
        )
        os.ftruncate(fd, decoder.good_end)
        if salvaged:
            os.write(fd, encode_frame(salvaged, self._compressor))

    # -- records ------------------------------------------------------------------------------------
    def now(self) -> int:
        """Nanoseconds since this segment started: the time base of request records."""
        return self.clock() - self.origin_ns

    def next_exchange_id(self) -> int:
        with self._lock:
            self._next_id += 1
            return self._next_id

    def append(self, record: Record) -> None:
        """Buffer one record. Never raises: a failure is logged and recording stops."""
        if self.failure is not None:
            if not self._reported:  # a failure found where logging was unsafe (a fork): say it now
                self._report(self.failure)
            return
        try:
            with self._lock:
                if self._closed:
                    return
                if not self._buf:
                    self._first_pending = self.clock()
                    self._ensure_thread()
                    self._wake.notify()
                encode_record(record, self._buf)
        except Exception as exc:
            self._fail(exc)

    def flush(self) -> None:
        """Close the current frame and write it. Never raises."""
        if self.failure is not None:
            return
        try:
            with self._io_lock:
                with self._lock:
                    if not self._buf:
                        return
                    content, self._buf = self._buf, bytearray()
                frame = compress_frame(self._compressor, content)
                view = memoryview(frame)
                while view:
                    written = os.write(self._fd, view)
                    view = view[written:]
        except Exception as exc:
            self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        if self.failure is None:
            self.failure = exc
            self._report(exc)
        with self._lock:
            self._buf.clear()

    def _report(self, exc: BaseException) -> None:
        self._reported = True
        logger.error(
            "streamtape: recording to %s failed (%s: %s); the traffic is unaffected, later records are dropped",
            self.path,
            type(exc).__name__,
            exc,
        )

    def _forked(self) -> None:
        """In a child process after ``fork``: this writer's file, lock and buffer belong to the parent.

        Writing from both would interleave two processes' exchanges under one segment's ids, and flush
        the parent's pending records twice. The child records nothing through it (and says so on first use).
        """
        self.failure = TapeError(
            "this writer was opened before the process forked; create recording clients after the fork, "
            "or give each process its own tape",
            path=self.path,
        )
        self._reported = False
        self._buf = bytearray()
        self._lock = threading.Lock()
        self._io_lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._thread = None

    # -- background flushing ------------------------------------------------------------------------
    def _ensure_thread(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name=f"streamtape-writer:{self.path}", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._closed and not self._buf:
                    self._wake.wait()
                if self._closed:
                    return
                due = self._first_pending + self.flush_interval_ns - self.clock()
                if due > 0:
                    self._wake.wait(due / 1e9)
                    continue
            self.flush()

    def close(self) -> None:
        """Flush what is pending and release the file. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._wake.notify_all()
        self.flush()
        _live.discard(self)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=1)
        try:
            if self.compact and self.failure is None:
                compact(self.path)
        except Exception as exc:  # the small-frame tape is still there and valid
            logger.warning("streamtape: could not compact %s (%s); it stays as recorded", self.path, exc)
        finally:
            with contextlib.suppress(OSError):
                os.close(self._fd)  # after compaction: the lock keeps other writers out until now


COMPACT_MAX_SIZE = 64 << 20


def compact(path: str, *, level: int = 19) -> bool:
    """Rewrite a closed tape into large frames, atomically; records and their order are unchanged.

    Live recording writes a frame every 250 ms for crash safety, and small frames compress poorly (each
    starts with an empty window). Once nothing is open, one pass puts the whole tape in a few large frames,
    typically 1.5-2.5x smaller. Skipped (returns False) for a tape over ``COMPACT_MAX_SIZE``, a tape that
    is cut or damaged, or one with segments written by a newer minor version (whose unknown records a
    rewrite would drop).
    """
    if os.path.getsize(path) > COMPACT_MAX_SIZE:
        return False
    stream = iter_records(path)
    records = list(stream)
    if stream.incomplete or any(
        isinstance(r, Header) and tuple(r.version) > (FORMAT_MAJOR, FORMAT_MINOR) for r in records
    ):
        return False
    write_tape(path, records, level=level)
    return True


_live: weakref.WeakSet[TapeWriter] = weakref.WeakSet()


@atexit.register
def _flush_all() -> None:
    for writer in list(_live):
        writer.close()


def _after_fork_in_child() -> None:
    for writer in list(_live):
        writer._forked()


if hasattr(os, "register_at_fork"):  # POSIX only
    os.register_at_fork(after_in_child=_after_fork_in_child)
