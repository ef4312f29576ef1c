"""The writer's thread: what recorders queue becomes records in a sink, off the caller's path.

A recording transport's thread (or event loop) does almost nothing per chunk: it reads the clock and
appends the time and the bytes to its exchange's event list (``ExchangeRecording.events``), two list
appends and no lock. The pipeline's own queue carries only new exchanges (``Begin``, which holds that
list) and flush barriers. The writer thread takes whole ``time, payload`` pairs from the front of each
open exchange's list with two C-level slice operations, turns them into records
(``pending.PendingExchange``; chunks of a plain exchange are encoded inline), writes them into the sink,
and makes them durable: a block at the end of every exchange and at most ``flush_interval`` after a
record while a stream is open; a frame end whenever no exchange is open. It is woken by a new exchange,
an exchange's end, a long event list, or its own timer (``time.monotonic``, never the record clock).

Back-pressure: past the share of ``max_pending_bytes`` of one exchange, its caller drops chunks instead
of waiting; the exchange then gets a gap record on the tape. A failing sink (disk full, no permission, a
vanished directory) is logged once per cause and counted; the traffic never sees it.

One pipeline per target per process, shared by every transport recording there (``registry``).
"""

from __future__ import annotations

import errno
import itertools
import logging
import struct
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any

import msgspec

from .._version import __version__
from ..errors import TapeError
from ..format.lifecycle import Phase
from ..format.records import (
    FORMAT_MAJOR,
    FORMAT_MINOR,
    MAGIC,
    Chunk,
    Header,
    Record,
    Redaction,
    Request,
    Response,
)
from ..storage.sinks import Sink
from .pending import Begin, Dropped, Finish, Head, PendingExchange, RecordOptions
from .stats import RecorderStats

#: Every pipeline not yet closed in this process (closed at exit; disabled in a forked child).
live: weakref.WeakSet[Pipeline] = weakref.WeakSet()

logger = logging.getLogger("streamtape")

WRITER = f"streamtape {__version__}"
Clock = Callable[[], int]

#: Length of an exchange's event list (two entries a chunk) past which its caller takes the checked
#: path: it wakes the writer, and drops chunks when the exchange's share of the bound is used up.
WAKE_AT = 16384
_BATCH = 8192  # entries taken (two a chunk) between spills of encoded records into the compressor
_INLINE_MAX = 1 << 20  # larger chunks take the checked path (the record size limit)
_ITEM_OVERHEAD = 90  # what a queued chunk costs beyond its bytes: the int, two list slots, the bytes object
_YIELD_EVERY = 64  # chunks past ``soft_limit`` between two moments a caller steps aside for the writer
_YIELD_S = 0.0002
_DISK_SLOW_S = 0.02  # a compression and write taking longer than this is the disk's doing, not the GIL's


_ENCODER = msgspec.msgpack.Encoder()

ChunkPacker = tuple[Callable[..., bytes], int, int, int]
_NO_PACKERS: tuple[ChunkPacker, ...] = ()


def chunk_header(x: int) -> tuple[bytes, tuple[ChunkPacker, ...]]:
    """The writer's fast encoding of exchange ``x``'s chunk records, byte for byte ``codec.encode_record``'s.

    A chunk record is ``length, [ "chunk", x, t_ns, data ]``: a constant prefix (array, tag, ``x``), then
    ``t_ns`` as a MessagePack uint32 or uint64 and ``data`` as bin8, bin16 or bin32, whichever is the
    shortest (``t_ns`` under 65536 takes the checked path). Six packers, one ``struct`` call each:
    ``packers[(t_ns >= 2**32) * 3 + size class]`` is ``(pack, t code, bin code, bytes before data)``.
    """
    prefix = b"\x94\xa5chunk" + _ENCODER.encode(x)
    packers: list[ChunkPacker] = []
    for t_code, t_format, t_size in ((0xCE, "I", 5), (0xCF, "Q", 9)):
        for n_code, n_format, n_size in ((0xC4, "B", 2), (0xC5, "H", 3), (0xC6, "I", 5)):
            pack = struct.Struct(f">I{len(prefix)}sB{t_format}B{n_format}").pack
            packers.append((pack, t_code, n_code, len(prefix) + t_size + n_size))
    return prefix, tuple(packers)


def cause_of(exc: BaseException) -> str:
    """A short name for why writing failed: the errno name, or the exception's class."""
    if isinstance(exc, OSError) and exc.errno is not None:
        return errno.errorcode.get(exc.errno, str(exc.errno))
    return type(exc).__name__


class Pipeline:
    """A queue and the thread that drains it into one sink."""

    def __init__(
        self,
        sink_factory: Callable[[Header], Sink],
        *,
        meta: dict[str, Any] | None = None,
        redaction: Redaction | None = None,
        clock: Clock = time.perf_counter_ns,
        flush_interval: float = 0.25,
        max_pending_bytes: int = 32 << 20,
    ) -> None:
        self.clock = clock
        self.origin_ns = clock()
        header = Header(
            MAGIC, (FORMAT_MAJOR, FORMAT_MINOR), WRITER, time.time_ns(), dict(meta or {}), redaction
        )
        self.sink = sink_factory(header)  # raises: the recorder then records nothing, and says why
        #: New exchanges (``Begin``) and flush barriers; an exchange's other events go to its own list.
        self.queue: deque[tuple[int, int, Any]] = deque()
        # Event-list entries, over all open exchanges, past which callers drop chunks: from the byte bound,
        # assuming 1 KiB a chunk until the writer has seen real ones (then ``_adapt``).
        self.hard_limit = max(128, min(2 << 20, 2 * max_pending_bytes // 1024))
        #: What callers compare their event list's length with before taking the checked path (``overflow``).
        self.soft_limit = min(WAKE_AT, self.hard_limit)
        self.max_pending_bytes = max_pending_bytes
        self.failure: BaseException | None = None
        # A record is drained at most one poll after it was queued; a block is flushed at the first poll at
        # least ``interval - 2 * poll`` after the oldest unflushed drain: at most ``interval`` in all. Fewer,
        # larger blocks compress better than a flush per poll.
        self._poll = flush_interval / 8
        self._flush_after = flush_interval - 2 * self._poll
        self._unflushed_since: float | None = None
        self._event = threading.Event()
        self._ids = itertools.count(1)
        self._exchanges: dict[int, PendingExchange] = {}
        self._ended: list[PendingExchange] = []  # ended since the last flush
        self._unflushed = False
        self._stats: weakref.WeakSet[RecorderStats] = weakref.WeakSet()
        self._reported: set[str] = set()
        self._closing = False
        self._lock = threading.Lock()
        self._drop_lock = threading.Lock()
        self._behind = 0  # chunks queued behind a long queue since the caller last stepped aside
        #: ``time.monotonic()`` when the writer began compressing or writing, None when it is not.
        self.io_since: float | None = None
        self._thread = threading.Thread(target=self._run, name="streamtape-writer", daemon=True)
        self._thread.start()
        live.add(self)

    # -- the caller's side (any thread; cheap) -------------------------------------------------------
    def next_id(self) -> int:
        return next(self._ids)  # atomic in CPython

    def register(self, stats: RecorderStats) -> None:
        self._stats.add(stats)

    def put(self, item: tuple[int, int, Any]) -> None:
        """Queue an exchange's begin and wake the writer."""
        self.queue.append(item)
        self._event.set()

    def wake(self) -> None:
        """An exchange ended: its records should become durable now, not at the next timer."""
        self._event.set()

    def sync(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued before this call is written and durable; False on timeout."""
        if self.failure is not None or not self._thread.is_alive():
            return False
        done = threading.Event()
        self.queue.append((0, 0, done))
        self._event.set()
        return done.wait(timeout)

    def overflow(self, recording: Any, t_ns: int, data: bytes) -> None:
        """A chunk arriving at a long event list: wake the writer, and drop the chunk past the exchange's share.

        Dropped chunks are counted in a ``Dropped`` marker queued where they would have been.
        """
        events = recording.events
        if len(events) < self.hard_limit // max(1, len(self._exchanges)):
            events += (t_ns, data)
        else:
            with self._drop_lock:
                marker = recording.drops
                if marker is None or marker.closed:
                    marker = recording.drops = Dropped()
                    events += (t_ns, marker)
                marker.records += 1
                marker.bytes += len(data)
                marker.t_ns = t_ns
        if not self._event.is_set():  # setting takes a lock: only when the writer is not already woken
            self._event.set()
        # The writer is behind because it gets too little of the GIL: a caller reading a fast stream
        # holds it almost always, and the writer needs it back after every compression and write (which
        # release it). Step aside for a moment now and then so the writer can catch up; but never while
        # the writer has been in one write for long: a slow disk gets dropped chunks, not a slow caller.
        self._behind += 1
        if self._behind >= _YIELD_EVERY:
            self._behind = 0
            since = self.io_since
            if since is None or time.monotonic() - since < _DISK_SLOW_S:
                time.sleep(_YIELD_S)

    # -- the writer's thread ------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            self._event.wait(self._poll if (self._exchanges or self._unflushed) else None)
            self._event.clear()
            closing = self._closing
            try:
                self._drain()
                now = time.monotonic()
                if self._unflushed and self._unflushed_since is None:
                    self._unflushed_since = now
                since = self._unflushed_since
                if (
                    self._ended
                    or closing
                    or not self._exchanges
                    or (since is not None and now - since >= self._flush_after)
                ):
                    self._flush()  # an exchange ended, nothing is open, or a record has waited long enough
                if not self._exchanges and not self.queue:
                    self._guard("idle", self.sink.idle)
            except Exception as exc:  # a bug here must not kill recording silently
                self._report(exc, "writer")
            if closing and not self.queue:
                break
        self._guard("close", self.sink.close)

    def _drain(self) -> None:
        barriers: list[threading.Event] = []
        try:
            self._drain_into(barriers)
        finally:
            if barriers:
                self._flush()
                for barrier in barriers:
                    barrier.set()

    def _drain_into(self, barriers: list[threading.Event]) -> None:
        """New exchanges and barriers first, then every open exchange's events, in batches of whole pairs.

        A barrier seen here was queued after everything its caller recorded, which the second step takes.
        """
        queue, popleft = self.queue, self.queue.popleft
        while queue:
            x, t_ns, payload = popleft()
            if isinstance(payload, Begin):
                self._begin(x, t_ns, payload)
            elif isinstance(payload, threading.Event):
                barriers.append(payload)
        for state in list(self._exchanges.values()):
            events = state.events
            while len(events) >= 2:
                # Two C calls the callers' appends cannot split: a time alone at the end waits for its chunk.
                n = min(len(events) & ~1, _BATCH)
                batch = events[:n]
                del events[:n]
                buffer: bytearray | None = getattr(self.sink, "buffer", None)
                size_before = len(buffer) if buffer is not None else 0
                ended = self._take(state, batch[0::2], batch[1::2], buffer)
                self._unflushed = True
                if buffer is not None:
                    self._adapt(n // 2, len(buffer) - size_before)
                    self.io_since = time.monotonic()
                    try:
                        self._guard("spill", self.sink.spill)
                    finally:
                        self.io_since = None
                if ended:
                    break

    def _take(
        self, state: PendingExchange, times: list[int], payloads: list[Any], buffer: bytearray | None
    ) -> bool:
        """One exchange's events, in order; True once it ended. This loop is the writer's hot path: chunks
        of an exchange that needs nothing but encoding are encoded inline into the sink's buffer."""
        start, (prefix, packers) = state.start, state.chunk_header
        pack_small, _, _, fixed_small = packers[0]  # t_ns as uint32, data as bin8: most SSE chunks
        fast = state.plain and buffer is not None
        n_fast = b_fast = 0
        for t_ns, payload in zip(times, payloads, strict=True):
            if fast and type(payload) is bytes:
                assert buffer is not None
                size, t_rel = len(payload), t_ns - start
                if size < 256 and 65536 <= t_rel < 1 << 32:
                    buffer += pack_small(fixed_small + size, prefix, 0xCE, t_rel, 0xC4, size)
                    buffer += payload
                    n_fast += 1
                    b_fast += size
                    continue
                if 65536 <= t_rel < 1 << 64 and size <= _INLINE_MAX:
                    pack, t_code, n_code, fixed = packers[
                        (0 if size < 256 else 1 if size < 65536 else 2) + (3 if t_rel >= 1 << 32 else 0)
                    ]
                    buffer += pack(fixed + size, prefix, t_code, t_rel, n_code, size)
                    buffer += payload
                    n_fast += 1
                    b_fast += size
                    continue
            if n_fast:
                state.written += n_fast
                state.written_bytes += b_fast
                n_fast = b_fast = 0
            if type(payload) is bytes:
                self._write(state, state.chunk(t_ns, payload))
            elif isinstance(payload, Head):
                self._write(state, state.head(t_ns, payload))
            elif isinstance(payload, Dropped):
                self._dropped(state, payload)
            elif isinstance(payload, Finish):
                self._finish(state, t_ns, payload)
                return True
            fast = state.plain and buffer is not None
        if n_fast:
            state.written += n_fast
            state.written_bytes += b_fast
        return False

    def _dropped(self, state: PendingExchange, marker: Dropped) -> None:
        with self._drop_lock:
            marker.closed = True
            records, nbytes, t_ns = marker.records, marker.bytes, marker.t_ns
        if state.refused:
            return
        state.lost(records, nbytes, "the writer's queue was full", t_ns)
        state.options.stats.add(dropped=records)

    def _adapt(self, taken: int, nbytes: int) -> None:
        if not nbytes:
            return
        average = nbytes // taken + _ITEM_OVERHEAD
        self.hard_limit = max(128, min(2 << 20, 2 * self.max_pending_bytes // average))
        self.soft_limit = min(WAKE_AT, self.hard_limit)

    def _begin(self, x: int, t_ns: int, begin: Begin) -> None:
        options: RecordOptions = begin.options
        state = PendingExchange(x, options, begin.events)
        state.chunk_header = chunk_header(x)
        self._exchanges[x] = state  # even when refused: its events are taken, and dropped, until its end
        if not self._guard("accepts", self.sink.accepts, default=False):
            options.stats.add(dropped=1)
            state.refuse()
            return
        try:
            records = state.begin(t_ns, self.origin_ns, begin)
        except Exception as exc:
            self._report(exc, "encode", options.stats)
            state.refuse()
            return
        self._write(state, records)

    def _finish(self, state: PendingExchange, t_ns: int, finish: Finish) -> None:
        del self._exchanges[state.x]
        if state.refused:
            return  # counted when it was refused
        records, kept = state.finish(t_ns, finish)
        stats = state.options.stats
        if not kept:
            stats.add(discarded=1)
            return
        self._write(state, records)
        self._ended.append(state)  # counted as recorded once it is durable

    def _write(self, state: PendingExchange, records: list[Record]) -> None:
        if not records:
            return
        try:
            self.sink.write(records)
        except Exception as exc:
            self._report(exc, "write", state.options.stats)
            chunk_bytes = sum(len(r.data) for r in records if isinstance(r, Chunk))
            state.lost(len(records), chunk_bytes, f"writing failed ({cause_of(exc)})")
            state.options.stats.add(dropped=len(records))
            return
        for offset, record in enumerate(records):
            if isinstance(record, Request | Response):  # where its head went: re-sent if that is lost
                state.head_marks.append((state.written + offset, record))
        state.written += len(records)
        state.written_bytes += sum(len(r.data) for r in records if isinstance(r, Chunk))
        self._unflushed = True

    def _flush(self) -> None:
        """Make what was written durable; on failure, mark every exchange with records in it as damaged."""
        if not self._unflushed:
            return
        self._unflushed = False
        self._unflushed_since = None
        touched = [*self._exchanges.values(), *self._ended]
        self._ended = []
        self.io_since = time.monotonic()
        try:
            self.sink.flush()
        except Exception as exc:
            self._report(exc, "flush")
            for state in touched:
                lost = state.written - state.flushed
                if lost:
                    # A request or response head that did not reach the disk is written again before the
                    # exchange's next record: a gap (or a chunk) must never follow a head the tape lacks.
                    resend = [record for at, record in state.head_marks if at >= state.flushed]
                    state.head_marks = [(at, record) for at, record in state.head_marks if at < state.flushed]
                    state.resend(resend)
                    state.lost(lost - len(resend), 0, f"writing failed ({cause_of(exc)})")
                    state.options.stats.add(dropped=lost - len(resend))
        else:
            for state in touched:
                if state.phase is Phase.ENDED and not state.lost_records:
                    state.options.stats.add(recorded=1, bytes=state.written_bytes)
        finally:
            self.io_since = None
        for state in touched:
            state.flushed = state.written

    def _guard(self, what: str, call: Callable[[], Any], default: Any = None) -> Any:
        try:
            return call()
        except Exception as exc:
            self._report(exc, what)
            return default

    def _report(self, exc: BaseException, what: str, stats: RecorderStats | None = None) -> None:
        """Log once per cause; count every time (on the exchange's recorder, or on every recorder here)."""
        cause = cause_of(exc)
        for target in [stats] if stats is not None else list(self._stats):
            target.error(cause)
        if cause not in self._reported:
            self._reported.add(cause)
            logger.error(
                "streamtape: recording to %s failed to %s (%s: %s); the traffic is unaffected, the tape marks "
                "what is lost",
                getattr(self.sink, "where", "its sink"),
                what,
                type(exc).__name__,
                exc,
            )

    # -- lifecycle ----------------------------------------------------------------------------------
    def close(self, timeout: float = 10.0) -> None:
        """Write everything queued, end the tape, stop the thread. Idempotent."""
        with self._lock:
            if self._closing:
                return
            self._closing = True
        self._event.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)
            if self._thread.is_alive():
                logger.error("streamtape: the writer did not finish within %.0f s (a hung disk?)", timeout)
        live.discard(self)

    def _forked(self) -> None:
        """In a child after ``fork``: the thread and the file belong to the parent; record nothing here."""
        self.failure = TapeError(
            "this recorder was created before the process forked; create recording clients after the fork"
        )
        self.queue = deque()
        self._closing = True
        # A lock another thread held at the fork would stay held here forever: fresh ones.
        self._lock, self._drop_lock, self._event = threading.Lock(), threading.Lock(), threading.Event()
        for stats in self._stats:
            stats._lock = threading.Lock()
