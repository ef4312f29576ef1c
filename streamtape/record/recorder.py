"""What every recording transport does, whatever its HTTP library: the shells only translate.

``Recorder`` belongs to one transport: it owns (a share of) the tape writer and the redactor, and opens an
``ExchangeRecording`` per request. ``ExchangeRecording`` is a small state machine fed by the shell (response head,
chunks, then exactly one end) that turns each event into a record with its time. It never raises into the
caller: recording is observation only.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import TapeError
from ..format.lifecycle import Phase, allowed
from ..format.records import MAX_RECORD_SIZE, Chunk, End, Headers, Outcome, Request, Response
from ..storage.writer import TapeWriter
from .redact import RedactOption, Redactor, redactor_for

logger = logging.getLogger("streamtape")

_BODY_LIMIT = MAX_RECORD_SIZE - 1024 * 1024  # room for the URL and headers in the same record


class _SharedWriters:
    """One writer per file per process, so two clients recording to one path share it (and its file lock)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[str, tuple[TapeWriter, int]] = {}

    def acquire(self, path: str, **kwargs: Any) -> TapeWriter:
        key = os.path.realpath(path)
        with self._lock:
            writer, users = self._open.get(key, (None, 0))
            if writer is None or writer.failure is not None:
                writer, users = TapeWriter(path, **kwargs), 0
            self._open[key] = (writer, users + 1)
            return writer

    def release(self, writer: TapeWriter) -> None:
        key = os.path.realpath(writer.path)
        with self._lock:
            current, users = self._open.get(key, (None, 0))
            if current is not writer:
                writer.close()
                return
            if users <= 1:
                del self._open[key]
                writer.close()
            else:
                self._open[key] = (writer, users - 1)


writers = _SharedWriters()


def _text_pairs(pairs: Iterable[tuple[bytes, bytes]]) -> Headers:
    """Raw header bytes as latin-1 strings: lossless both ways, readable in ``cat``."""
    return [(name.decode("latin-1"), value.decode("latin-1")) for name, value in pairs]


class Recorder:
    """The library-independent half of a recording transport."""

    def __init__(
        self,
        target: str | os.PathLike[str],
        *,
        redact: RedactOption = True,
        meta: Mapping[str, Any] | None = None,
        flush_interval: float = 0.25,
    ) -> None:
        self.path = os.fspath(target)
        self.redactor = redactor_for(redact)
        self.writer: TapeWriter | None = None
        try:
            self.writer = writers.acquire(
                self.path,
                meta=dict(meta or {}),
                redaction=self.redactor.describe() if self.redactor else None,
                flush_interval=flush_interval,
            )
        except (OSError, TapeError) as exc:
            logger.error(
                "streamtape: cannot record to %s (%s); requests go through unrecorded", self.path, exc
            )

    @property
    def failure(self) -> BaseException | None:
        """Why recording stopped, or None while it works."""
        if self.writer is None:
            return TapeError("the tape could not be opened", path=self.path)
        return self.writer.failure

    def begin(
        self, method: str, url: str, raw_headers: Iterable[tuple[bytes, bytes]], body: bytes
    ) -> ExchangeRecording:
        """Record a request as it reaches the transport; returns the recording its response events go to."""
        if self.writer is None:
            return _Unrecorded()
        try:
            return ExchangeRecording(self.writer, self.redactor, method, url, _text_pairs(raw_headers), body)
        except Exception as exc:  # observation must never break the request
            logger.error("streamtape: could not record a request to %s: %s", url, exc)
            return _Unrecorded()

    def close(self) -> None:
        if self.writer is not None:
            writer, self.writer = self.writer, None
            writers.release(writer)


class ExchangeRecording:
    """One exchange being recorded: ``response`` once, ``chunk`` any number of times, then one end.

    Events the lifecycle table does not allow any more are ignored rather than recorded (a second end:
    that is what lets a shell report both "the iterator finished" and "the stream was closed" without
    deciding which came first). A recording with no writer records nothing.
    """

    __slots__ = ("_redactor", "_writer", "id", "phase", "start")

    def __init__(
        self,
        writer: TapeWriter,
        redactor: Redactor | None,
        method: str,
        url: str,
        headers: Headers,
        body: bytes,
    ) -> None:
        self._writer = writer
        self._redactor = redactor
        self.phase = Phase.NEW
        if redactor is not None:
            url, headers = redactor.redact_url(url), redactor.redact_headers(headers)
        self.id = writer.next_exchange_id()
        self.start = writer.clock()
        body_size = None
        if len(body) > _BODY_LIMIT:
            body, body_size = body[:_BODY_LIMIT], len(body)
        writer.append(Request(self.id, self.start - writer.origin_ns, method, url, headers, body, body_size))
        self.phase = Phase.SENT

    @property
    def ended(self) -> bool:
        return self.phase is Phase.ENDED

    def _t(self) -> int:
        return self._writer.clock() - self.start

    def response(
        self,
        status_code: int,
        http_version: str,
        raw_headers: Iterable[tuple[bytes, bytes]],
        reason: str = "",
    ) -> None:
        if not allowed(self.phase, "response"):
            return
        self.phase = Phase.STREAMING
        headers = _text_pairs(raw_headers)
        if self._redactor is not None:
            headers = self._redactor.redact_headers(headers)
        self._writer.append(Response(self.id, self._t(), status_code, http_version, headers, reason))

    def chunk(self, data: bytes) -> None:
        if (
            self.phase is Phase.STREAMING
        ):  # the table's only state that takes a chunk; checked inline: hot path
            self._writer.append(Chunk(self.id, self._t(), bytes(data)))

    def complete(self) -> None:
        self._end("complete")

    def error(self, exc: BaseException) -> None:
        self._end("error", type(exc).__name__, str(exc))

    def client_closed(self, why: str | None = None) -> None:
        self._end("client_closed", None, why)

    def _end(self, outcome: Outcome, error_type: str | None = None, message: str | None = None) -> None:
        if not allowed(self.phase, "end"):
            return
        self.phase = Phase.ENDED
        self._writer.append(End(self.id, self._t(), outcome, error_type, message))
        self._writer.flush()


class _Unrecorded(ExchangeRecording):
    """What a request gets when there is nothing to record into: every event is a no-op."""

    __slots__ = ()

    def __init__(self) -> None:
        self.phase = Phase.ENDED
        self.id = 0
        self.start = 0
