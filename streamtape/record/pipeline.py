"""The writer's thread: what recorders queue becomes records in a sink, off the caller's path.

A recording transport's thread (or event loop) does almost nothing per chunk: it reads the clock and
appends ``(exchange id, time, bytes)`` to this pipeline's queue. The writer thread drains the queue in
batches, turns events into records (``pending.PendingExchange``), writes them into the sink, and makes
them durable: a block at the end of every exchange and at most ``flush_interval`` after a record while
a stream is open; a frame end whenever no exchange is open. It is woken by a new exchange, an exchange's
end, a long queue, or its own timer (``time.monotonic``, never the record clock).

Back-pressure: past ``max_pending_bytes`` queued, callers drop chunks instead of waiting; each exchange
that lost some gets a gap record on the tape. A failing sink (disk full, no permission, a vanished
directory) is logged once per cause and counted; the traffic never sees it.

One pipeline per target per process, shared by every transport recording there (``acquire``/``release``).
"""

from __future__ import annotations

import atexit
import errno
import itertools
import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any

from .._version import __version__
from ..errors import TapeError
from ..format.records import FORMAT_MAJOR, FORMAT_MINOR, MAGIC, Chunk, Header, Record, Redaction
from ..storage.sinks import Sink
from .pending import Begin, DropCounter, Finish, Head, PendingExchange, RecordOptions
from .stats import RecorderStats

logger = logging.getLogger("streamtape")

WRITER = f"streamtape {__version__}"
Clock = Callable[[], int]

#: Queue length at which a caller wakes the writer instead of waiting for its timer.
WAKE_AT = 512
_BATCH = 2048  # items drained between sink writes


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
        max_pending_bytes: int = 64 << 20,
    ) -> None:
        self.clock = clock
        self.origin_ns = clock()
        header = Header(
            MAGIC, (FORMAT_MAJOR, FORMAT_MINOR), WRITER, time.time_ns(), dict(meta or {}), redaction
        )
        self.sink = sink_factory(header)  # raises: the recorder then records nothing, and says why
        self.queue: deque[tuple[int, int, Any]] = deque()
        self.hard_limit = 65536  # queue length past which callers drop chunks; adapts to record sizes
        self.max_pending_bytes = max_pending_bytes
        self.failure: BaseException | None = None
        self._poll = flush_interval * 0.4  # a record waits at most one poll plus one drain
        self._event = threading.Event()
        self._ids = itertools.count(1)
        self._exchanges: dict[int, PendingExchange] = {}
        self._since_flush: dict[int, list[int]] = {}  # exchange id -> [records, chunk bytes] not yet durable
        self._unflushed = False
        self._stats: weakref.WeakSet[RecorderStats] = weakref.WeakSet()
        self._reported: set[str] = set()
        self._closing = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="streamtape-writer", daemon=True)
        self._thread.start()
        _live.add(self)

    # -- the caller's side (any thread; cheap) -------------------------------------------------------
    def next_id(self) -> int:
        return next(self._ids)  # atomic in CPython

    def register(self, stats: RecorderStats) -> None:
        self._stats.add(stats)

    def put(self, item: tuple[int, int, Any]) -> None:
        """Queue an exchange's begin or end and wake the writer (chunks are queued by the shells directly)."""
        self.queue.append(item)
        self._event.set()

    def sync(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued before this call is written and durable; False on timeout."""
        if self.failure is not None or not self._thread.is_alive():
            return False
        done = threading.Event()
        self.queue.append((0, 0, done))
        self._event.set()
        return done.wait(timeout)

    def overflow(self, x: int, t_ns: int, data: bytes, counter: DropCounter) -> None:
        """A chunk arriving at a long queue: wake the writer, and drop the chunk when the queue is full."""
        if len(self.queue) < self.hard_limit:
            self.queue.append((x, t_ns, data))
        else:
            counter.dropped += 1
            counter.dropped_bytes += len(data)
        self._event.set()

    # -- the writer's thread ------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            self._event.wait(self._poll if (self._exchanges or self._unflushed) else None)
            self._event.clear()
            closing = self._closing
            try:
                self._drain()
                self._flush()
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
        queue, exchanges = self.queue, self._exchanges
        popleft = queue.popleft
        taken = 0
        nbytes = 0
        while queue:
            x, t_ns, payload = popleft()
            taken += 1
            state = exchanges.get(x)
            if type(payload) is bytes:
                nbytes += len(payload)
                if state is not None:
                    self._note_drops(state)
                    self._write(state, state.chunk(t_ns, payload), len(payload))
            elif isinstance(payload, Begin):
                self._begin(x, t_ns, payload)
            elif isinstance(payload, threading.Event):
                barriers.append(payload)
            elif state is None:
                continue
            elif isinstance(payload, Head):
                self._note_drops(state)
                self._write(state, state.head(t_ns, payload), 0)
            elif isinstance(payload, Finish):
                self._finish(state, t_ns, payload)
            if taken % _BATCH == 0:
                self._adapt(taken, nbytes)
        if taken:
            self._adapt(taken, nbytes)

    def _adapt(self, taken: int, nbytes: int) -> None:
        average = max(64, nbytes // taken)
        self.hard_limit = max(4 * WAKE_AT, min(1 << 20, self.max_pending_bytes // average))

    def _begin(self, x: int, t_ns: int, begin: Begin) -> None:
        options: RecordOptions = begin.options
        if not self._guard("accepts", self.sink.accepts, default=False):
            options.stats.add(dropped=1)
            return
        state = PendingExchange(x, options, begin.counter)
        self._exchanges[x] = state
        try:
            records = state.begin(t_ns, self.origin_ns, begin)
        except Exception as exc:
            self._report(exc, "encode", options.stats)
            del self._exchanges[x]
            return
        self._write(state, records, 0)

    def _finish(self, state: PendingExchange, t_ns: int, finish: Finish) -> None:
        self._note_drops(state)
        records, kept = state.finish(t_ns, finish)
        del self._exchanges[state.x]
        stats = state.options.stats
        if not kept:
            stats.add(discarded=1)
            return
        self._write(state, records, sum(len(r.data) for r in records if isinstance(r, Chunk)))
        stats.add(recorded=1)

    def _note_drops(self, state: PendingExchange) -> None:
        if state.counter.dropped and (n := state.take_drops()):
            state.options.stats.add(dropped=n)

    def _write(self, state: PendingExchange, records: list[Record], nbytes: int) -> None:
        if not records:
            return
        try:
            self.sink.write(records)
        except Exception as exc:
            self._report(exc, "write", state.options.stats)
            state.lost(len(records), nbytes, f"writing failed ({cause_of(exc)})")
            state.options.stats.add(dropped=len(records))
            return
        pending = self._since_flush.get(state.x)
        if pending is None:
            self._since_flush[state.x] = [len(records), nbytes]
        else:
            pending[0] += len(records)
            pending[1] += nbytes
        if nbytes:
            state.options.stats.add(bytes=nbytes)
        self._unflushed = True

    def _flush(self) -> None:
        if not self._unflushed:
            return
        since, self._since_flush = self._since_flush, {}
        self._unflushed = False
        try:
            self.sink.flush()
        except Exception as exc:
            self._report(exc, "flush")
            for x, (records, nbytes) in since.items():
                state = self._exchanges.get(x)
                if state is not None:
                    state.lost(records, nbytes, f"writing failed ({cause_of(exc)})")
                    state.options.stats.add(dropped=records)

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
                "streamtape: recording failed to %s (%s: %s); the traffic is unaffected, the tape marks what is lost",
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
        _live.discard(self)

    def _forked(self) -> None:
        """In a child after ``fork``: the thread and the file belong to the parent; record nothing here."""
        self.failure = TapeError(
            "this recorder was created before the process forked; create recording clients after the fork"
        )
        self.queue = deque()
        self._closing = True


_live: weakref.WeakSet[Pipeline] = weakref.WeakSet()


class _Registry:
    """One pipeline per target per process, shared by every recorder that records there."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[str, tuple[Pipeline, int]] = {}

    def acquire(self, key: str, make: Callable[[], Pipeline]) -> Pipeline:
        with self._lock:
            pipeline, users = self._open.get(key, (None, 0))
            if pipeline is None or pipeline.failure is not None or pipeline._closing:
                pipeline, users = make(), 0
            self._open[key] = (pipeline, users + 1)
            return pipeline

    def release(self, key: str, pipeline: Pipeline) -> None:
        with self._lock:
            current, users = self._open.get(key, (None, 0))
            if current is pipeline and users > 1:
                self._open[key] = (pipeline, users - 1)
                return
            if current is pipeline:
                del self._open[key]
        pipeline.close()


registry = _Registry()


@atexit.register
def _close_all() -> None:
    for pipeline in list(_live):
        pipeline.close(timeout=5.0)


def _after_fork_in_child() -> None:
    for pipeline in list(_live):
        pipeline._forked()
    registry.__init__()  # type: ignore[misc]


if hasattr(os, "register_at_fork"):  # POSIX only
    os.register_at_fork(after_in_child=_after_fork_in_child)
