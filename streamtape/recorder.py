"""What every recording transport does, whatever its HTTP library: the shells only translate.

``Recorder`` belongs to one transport: it owns (a share of) the tape writer and the redactor, and opens an
``ExchangeLog`` per request. ``ExchangeLog`` is a small state machine fed by the shell (response head,
chunks, then exactly one end) that turns each event into a record with its time. It never raises into the
caller: recording is observation only.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from .errors import TapeError
from .records import MAX_RECORD_SIZE, Chunk, End, Headers, Request, Response
from .redact import Redactor
from .writer import TapeWriter

log = logging.getLogger("streamtape")

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
        redact: bool | Redactor = True,
        meta: Mapping[str, Any] | None = None,
        flush_interval: float = 0.25,
    ) -> None:
        self.path = os.fspath(target)
        if redact is True:
            self.redactor: Redactor | None = Redactor()
        elif isinstance(redact, Redactor):
            self.redactor = redact
        else:
            self.redactor = None
        self.writer: TapeWriter | None = None
        try:
            self.writer = writers.acquire(
                self.path,
                meta=dict(meta or {}),
                redaction=self.redactor.describe() if self.redactor else None,
                flush_interval=flush_interval,
            )
        except (OSError, TapeError) as exc:
            log.error("streamtape: cannot record to %s (%s); requests go through unrecorded", self.path, exc)

    @property
    def failure(self) -> BaseException | None:
        """Why recording stopped, or None while it works."""
        if self.writer is None:
            return TapeError("the tape could not be opened", path=self.path)
        return self.writer.failure

    def begin(
        self, method: str, url: str, raw_headers: Iterable[tuple[bytes, bytes]], body: bytes
    ) -> ExchangeLog:
        """Record a request as it reaches the transport; returns the log its response events go to."""
        try:
            return ExchangeLog(self, method, url, _text_pairs(raw_headers), body)
        except Exception as exc:  # observation must never break the request
            log.error("streamtape: could not record a request to %s: %s", url, exc)
            return ExchangeLog(None, method, url, [], b"")

    def close(self) -> None:
        if self.writer is not None:
            writer, self.writer = self.writer, None
            writers.release(writer)


class ExchangeLog:
    """One exchange's events, in order: ``response`` once, ``chunk`` any number of times, then one end.

    Ends after the first are ignored, which is what lets a shell report both "the iterator finished" and
    "the stream was closed" without deciding which came first.
    """

    __slots__ = ("_redactor", "_writer", "ended", "id", "start")

    def __init__(
        self, recorder: Recorder | None, method: str, url: str, headers: Headers, body: bytes
    ) -> None:
        writer = recorder.writer if recorder is not None else None
        self._writer = writer
        self._redactor = recorder.redactor if recorder is not None else None
        self.ended = writer is None
        self.id = 0
        self.start = 0
        if writer is None:
            return
        if self._redactor is not None:
            url, headers = self._redactor.redact_url(url), self._redactor.redact_headers(headers)
        self.id = writer.next_exchange_id()
        self.start = writer.clock()
        body_size = None
        if len(body) > _BODY_LIMIT:
            body, body_size = body[:_BODY_LIMIT], len(body)
        writer.append(Request(self.id, self.start - writer.origin_ns, method, url, headers, body, body_size))

    def _t(self) -> int:
        return self._writer.clock() - self.start  # type: ignore[union-attr]

    def response(
        self,
        status_code: int,
        http_version: str,
        raw_headers: Iterable[tuple[bytes, bytes]],
        reason: str = "",
    ) -> None:
        if self.ended:
            return
        headers = _text_pairs(raw_headers)
        if self._redactor is not None:
            headers = self._redactor.redact_headers(headers)
        self._writer.append(Response(self.id, self._t(), status_code, http_version, headers, reason))  # type: ignore[union-attr]

    def chunk(self, data: bytes) -> None:
        if not self.ended:
            self._writer.append(Chunk(self.id, self._t(), bytes(data)))  # type: ignore[union-attr]

    def complete(self) -> None:
        self._end("complete")

    def error(self, exc: BaseException) -> None:
        self._end("error", type(exc).__name__, str(exc))

    def client_closed(self, why: str | None = None) -> None:
        self._end("client_closed", None, why)

    def _end(self, outcome: str, error_type: str | None = None, message: str | None = None) -> None:
        if self.ended:
            return
        self.ended = True
        writer = self._writer
        writer.append(End(self.id, self._t(), outcome, error_type, message))  # type: ignore[union-attr,arg-type]
        writer.flush()  # type: ignore[union-attr]
