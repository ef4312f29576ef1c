"""What every recording transport does on the caller's side, whatever its HTTP library.

``Recorder`` belongs to one transport: it holds the transport's choices (redaction, ``keep``, ``sample``,
hooks), its ``stats``, and a share of the pipeline that writes its target. ``begin`` opens an
``ExchangeRecording`` per request. On the caller's thread an exchange costs a clock read and a queue
append per event; everything else happens on the writer's thread (``pipeline``). Nothing here raises
into the caller: recording is observation only.

Targets: a path is one tape (``{pid}`` and ``{date}`` allowed); an existing directory, or a path ending
in ``/``, is a directory of tapes, one per exchange; a callable ``(Header) -> Sink`` is any other sink.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from ..errors import TapeError
from ..format.records import Header, Outcome
from ..storage.sinks import DirectorySink, FileSink, Sink
from .pending import BeforeRecord, BeforeRecordChunk, Begin, Dropped, Finish, Head, Keep, RecordOptions
from .pipeline import Clock, Pipeline, cause_of
from .redact import RedactOption, redactor_for
from .registry import registry
from .stats import RecorderStats

logger = logging.getLogger("streamtape")

Target = str | os.PathLike[str] | Callable[[Header], Sink]

_paused: contextvars.ContextVar[bool] = contextvars.ContextVar("streamtape_paused", default=False)
#: A request extension that opts one request out: ``extensions={"streamtape.record": False}``.
OPT_OUT_EXTENSION = "streamtape.record"


@contextlib.contextmanager
def not_recorded() -> Iterator[None]:
    """Requests made inside this block (this thread or task) are not recorded.

    >>> with streamtape.not_recorded():
    ...     client.chat.completions.create(...)   # a prompt that must never reach a tape
    """
    token = _paused.set(True)
    try:
        yield
    finally:
        _paused.reset(token)


def _is_directory(target: str) -> bool:
    return target.endswith(("/", os.sep)) or os.path.isdir(target)


class Recorder:
    """The library-independent half of a recording transport."""

    def __init__(
        self,
        target: Target,
        *,
        redact: RedactOption = True,
        meta: Mapping[str, Any] | None = None,
        keep: Keep = "all",
        sample: float = 1.0,
        seed: int | None = None,
        before_record: BeforeRecord | None = None,
        before_record_chunk: BeforeRecordChunk | None = None,
        hold_bytes: int = 8 << 20,
        max_bytes: int | None = None,
        max_age: float | None = None,
        flush_interval: float = 0.25,
        max_pending_bytes: int = 32 << 20,
        clock: Clock = time.perf_counter_ns,
    ) -> None:
        if keep not in ("all", "failed"):
            raise ValueError(f"keep must be 'all' or 'failed', not {keep!r}")
        if not 0.0 <= sample <= 1.0:
            raise ValueError(f"sample must be between 0.0 and 1.0, not {sample!r}")
        self.stats = RecorderStats()
        redactor = redactor_for(redact)
        self.options = RecordOptions(
            redactor, self.stats, keep, hold_bytes, before_record, before_record_chunk
        )
        self.sample = sample
        self._random = random.Random(seed)
        self.pipeline: Pipeline | None = None
        self._failure_reported = False
        if callable(target) and not isinstance(target, str | os.PathLike):
            self.path = getattr(target, "__name__", repr(target))
            key, factory = f"sink:{id(target)}", target
        else:
            self.path = os.fspath(target)
            key, factory = self._target(self.path, max_bytes, max_age)

        def make() -> Pipeline:
            return Pipeline(
                factory,
                meta=dict(meta or {}),
                redaction=redactor.describe() if redactor else None,
                clock=clock,
                flush_interval=flush_interval,
                max_pending_bytes=max_pending_bytes,
            )

        self._key = key
        try:
            self.pipeline = registry.acquire(key, make)
            self.pipeline.register(self.stats)
        except Exception as exc:
            self.stats.error(cause_of(exc))
            logger.error(
                "streamtape: cannot record to %s (%s); requests go through unrecorded", self.path, exc
            )

    @staticmethod
    def _target(
        path: str, max_bytes: int | None, max_age: float | None
    ) -> tuple[str, Callable[[Header], Sink]]:
        if _is_directory(path):
            directory = path.rstrip("/" + os.sep) or path
            return f"dir:{os.path.realpath(directory)}", lambda header: DirectorySink(
                directory, header, max_bytes=max_bytes, max_age=max_age
            )
        return f"file:{os.path.realpath(path)}", lambda header: FileSink(path, header, max_bytes=max_bytes)

    @property
    def failure(self) -> BaseException | None:
        """Why this recorder records nothing, or None while it works."""
        if self.pipeline is None:
            return TapeError("the tape could not be opened", path=self.path)
        return self.pipeline.failure

    def begin(
        self,
        method: str,
        url: str,
        raw_headers: list[tuple[bytes, bytes]],
        body: bytes,
        extensions: Mapping[str, Any] | None = None,
    ) -> ExchangeRecording:
        """A request reached the transport: returns the recording its response events go to."""
        stats = self.stats
        stats.add(seen=1)
        pipeline = self.pipeline
        if pipeline is None:
            return UNRECORDED
        if pipeline.failure is not None:
            if not self._failure_reported:
                self._failure_reported = True
                logger.error("streamtape: not recording to %s: %s", self.path, pipeline.failure)
            return UNRECORDED
        if (
            _paused.get()
            or (extensions is not None and extensions.get(OPT_OUT_EXTENSION) is False)
            or (self.sample < 1.0 and self._random.random() >= self.sample)
        ):
            stats.add(sampled_out=1)
            return UNRECORDED
        recording = ExchangeRecording(pipeline)
        begin = Begin(method, url, raw_headers, body, self.options, recording.events)
        pipeline.put((recording.x, pipeline.clock(), begin))
        return recording

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every exchange event so far is on disk (tests, and before copying a live tape)."""
        return self.pipeline.sync(timeout) if self.pipeline is not None else False

    def close(self) -> None:
        """Write what is queued and release the target (the last user closes the tape). Milliseconds."""
        if self.pipeline is not None:
            pipeline, self.pipeline = self.pipeline, None
            pipeline.sync()  # this recorder's exchanges are on disk even when another keeps the writer open
            registry.release(self._key, pipeline)


class ExchangeRecording:
    """One exchange being recorded, on the caller's side: each event is a clock read and two list appends.

    ``events`` alternates ``time, payload`` (chunk bytes, ``Head``, ``Finish``, ``Dropped``); only this
    exchange's caller appends to it, and the writer takes whole pairs from its front (``Pipeline``), so no
    lock and no per-event object beyond the clock's int. Shells stream chunks into ``events`` directly
    (see ``transports.recording``): the hot path. The writer applies the lifecycle (a second end is
    ignored there); ``ended`` only saves queueing one.
    """

    __slots__ = ("clock", "drops", "ended", "events", "pipeline", "x")

    def __init__(self, pipeline: Pipeline | None) -> None:
        self.pipeline = pipeline
        self.drops: Dropped | None = None  # the pipeline's marker for a run of chunks it could not queue
        self.ended = pipeline is None
        self.events: list[Any] = []
        if pipeline is None:
            self.x = 0
            self.clock = time.perf_counter_ns
            return
        self.clock = pipeline.clock
        self.x = pipeline.next_id()

    def soft_limit(self) -> int:
        """The length of ``events`` below which a chunk may be appended directly (``Pipeline.soft_limit``)."""
        return self.pipeline.soft_limit if self.pipeline is not None else 0

    def response(
        self,
        status_code: int,
        http_version: str,
        raw_headers: Iterable[tuple[bytes, bytes]],
        reason: str = "",
    ) -> None:
        if not self.ended:
            head = Head(status_code, http_version, list(raw_headers), reason)
            self.events += (self.clock(), head)

    def chunk(self, data: bytes) -> None:
        if self.ended:
            return
        assert self.pipeline is not None
        if len(self.events) < self.pipeline.soft_limit:
            self.events += (self.clock(), data)
        else:
            self.pipeline.overflow(self, self.clock(), data)

    def complete(self) -> None:
        self._end("complete")

    def error(self, exc: BaseException) -> None:
        self._end("error", type(exc).__name__, str(exc))

    def client_closed(self, why: str | None = None) -> None:
        self._end("client_closed", None, why)

    def _end(self, outcome: Outcome, error_type: str | None = None, message: str | None = None) -> None:
        if self.ended:
            return
        self.ended = True
        assert self.pipeline is not None
        self.events += (self.clock(), Finish(outcome, error_type, message))
        self.pipeline.wake()


#: What a request gets when nothing is to be recorded: every event is a no-op.
UNRECORDED = ExchangeRecording(None)
