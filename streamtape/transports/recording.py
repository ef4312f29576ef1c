"""Recording shells: the client's traffic goes to the network untouched while the recorder takes notes.

The classes here hold all the behaviour; ``streamtape.httpx`` and ``streamtape.httpx2`` declare the public
``RecordingTransport`` / ``AsyncRecordingTransport`` on their library's base classes. Every event the
shell sees (the request, the response head, each chunk, how the body ended) goes to one
``ExchangeRecording``, which never raises into the client.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from types import ModuleType
from typing import Any, ClassVar, Protocol

import anyio

from ..record.pending import BeforeRecord, BeforeRecordChunk, Keep
from ..record.recorder import ExchangeRecording, Recorder, Target
from ..record.redact import RedactOption
from ..record.stats import RecorderStats
from .library import check_library


class SyncStream(Protocol):
    def __iter__(self) -> Iterator[bytes]: ...
    def close(self) -> None: ...


class AsyncStream(Protocol):
    def __aiter__(self) -> AsyncIterator[bytes]: ...
    async def aclose(self) -> None: ...


def response_head(response: Any) -> tuple[str, str]:
    """The HTTP version and reason phrase a library keeps in a response's extensions."""
    ext = response.extensions
    version = ext.get("http_version", b"HTTP/1.1")
    reason = ext.get("reason_phrase", b"")
    return (
        version.decode("ascii", "replace") if isinstance(version, bytes) else str(version),
        reason.decode("latin-1") if isinstance(reason, bytes) else str(reason),
    )


class RecordingStream:
    """Passes the inner stream's chunks through untouched, recording each and how the stream ended.

    The loop is the recorder's hot path: per chunk, a clock read and two list appends (see ``pipeline``).
    """

    def __init__(self, inner: SyncStream, recording: ExchangeRecording) -> None:
        self._inner = inner
        self._recording = recording

    def __iter__(self) -> Iterator[bytes]:
        recording = self._recording
        try:
            if recording.ended:  # not recorded
                yield from self._inner
            else:
                events, clock, overflow = recording.events, recording.clock, recording.chunk
                append, soft = events.append, recording.soft_limit()
                for chunk in self._inner:
                    if len(events) < soft:
                        append(clock())  # the writer takes whole pairs: a time alone waits for its chunk
                        append(chunk)
                    else:
                        overflow(chunk)
                    yield chunk
        except Exception as exc:
            recording.error(exc)
            raise
        except BaseException as exc:  # GeneratorExit, KeyboardInterrupt: the client stopped reading
            recording.client_closed(type(exc).__name__)
            raise
        recording.complete()

    def close(self) -> None:
        self._recording.client_closed("closed before the end of the body")
        self._inner.close()


class AsyncRecordingStream:
    """The async twin of ``RecordingStream``."""

    def __init__(self, inner: AsyncStream, recording: ExchangeRecording) -> None:
        self._inner = inner
        self._recording = recording

    async def __aiter__(self) -> AsyncIterator[bytes]:
        recording = self._recording
        try:
            if recording.ended:  # not recorded
                async for chunk in self._inner:
                    yield chunk
            else:
                events, clock, overflow = recording.events, recording.clock, recording.chunk
                append, soft = events.append, recording.soft_limit()
                async for chunk in self._inner:
                    if len(events) < soft:
                        append(clock())
                        append(chunk)
                    else:
                        overflow(chunk)
                    yield chunk
        except Exception as exc:
            recording.error(exc)
            raise
        except BaseException as exc:  # CancelledError, GeneratorExit: the client stopped reading
            recording.client_closed(type(exc).__name__)
            raise
        recording.complete()

    async def aclose(self) -> None:
        self._recording.client_closed("closed before the end of the body")
        await self._inner.aclose()


class _RecordingShell:
    """What the sync and async recording transports share: the recorder, the inner transport, the head."""

    #: The HTTP library (httpx or httpx2) whose classes this transport speaks; set by the public class.
    _lib: ClassVar[ModuleType]
    _stream: ClassVar[type[RecordingStream] | type[AsyncRecordingStream]]
    _default_transport: ClassVar[str]

    def __init__(
        self,
        target: Target,
        *,
        transport: Any = None,
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
        max_pending_bytes: int = 32 << 20,
    ) -> None:
        """Record every exchange that passes through ``transport`` into ``target``.

        ``target``: a tape path (``{pid}``, ``{date}`` allowed), a directory (one tape per exchange), or a
        ``(Header) -> Sink`` callable. ``transport``: the one that really talks to the network (default:
        the library's own). ``redact``: True (the default secret names), False, extra header/query names,
        or a ``Redactor``. ``meta``: JSON-compatible metadata for the tape's header.

        Flight-recorder options: ``keep="failed"`` writes only exchanges that errored, got a status >= 400
        or were truncated (others are held up to ``hold_bytes`` each, then written anyway); ``sample``
        records that fraction of requests (``seed`` makes it repeatable); ``before_record(request,
        response)`` and ``before_record_chunk(request, data)`` scrub what is written (on the writer's
        thread); ``max_bytes`` / ``max_age`` bound what a directory (or a single tape) may hold;
        ``max_pending_bytes`` bounds the writer's queue (past it, chunks are dropped and the tape says so).
        """
        if transport is not None:
            check_library(self._lib, transport, "transport", type(self).__name__)
        self.inner = transport if transport is not None else getattr(self._lib, self._default_transport)()
        self.recorder = Recorder(
            target,
            redact=redact,
            meta=meta,
            keep=keep,
            sample=sample,
            seed=seed,
            before_record=before_record,
            before_record_chunk=before_record_chunk,
            hold_bytes=hold_bytes,
            max_bytes=max_bytes,
            max_age=max_age,
            max_pending_bytes=max_pending_bytes,
        )

    @property
    def path(self) -> str:
        return self.recorder.path

    @property
    def stats(self) -> RecorderStats:
        """A snapshot of what this transport recorded, discarded, dropped, and why it failed."""
        return self.recorder.stats.snapshot()

    def _begin(self, request: Any, body: bytes) -> ExchangeRecording:
        if not isinstance(request, self._lib.Request):
            check_library(self._lib, request, "request", type(self).__name__)
        return self.recorder.begin(
            request.method, str(request.url), request.headers.raw, body, request.extensions
        )

    def _wrap(self, response: Any, recording: ExchangeRecording) -> Any:
        version, reason = response_head(response)
        recording.response(response.status_code, version, response.headers.raw, reason)
        if response.is_stream_consumed:  # a body given whole (MockTransport, respx) was read on creation
            if response.content:
                recording.chunk(response.content)
            recording.complete()
            return response
        response.stream = self._stream(response.stream, recording)
        return response


class RecordingShell(_RecordingShell):
    """``handle_request`` for sync clients."""

    _default_transport = "HTTPTransport"

    def handle_request(self, request: Any) -> Any:
        return self.record(request, self.inner.handle_request)

    def record(self, request: Any, send: Callable[[Any], Any]) -> Any:
        """Record the exchange of ``send(request)``: any way of sending (``routing`` patches transports)."""
        recording = self._begin(request, request.read())
        try:
            response = send(request)
        except Exception as exc:
            recording.error(exc)
            raise
        except BaseException as exc:
            recording.client_closed(type(exc).__name__)
            raise
        return self._wrap(response, recording)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything recorded so far is on disk (records are written by a background thread)."""
        return self.recorder.flush(timeout)

    def close(self) -> None:
        try:
            self.inner.close()
        finally:
            self.recorder.close()


class AsyncRecordingShell(_RecordingShell):
    """``handle_async_request`` for async clients."""

    _default_transport = "AsyncHTTPTransport"

    async def handle_async_request(self, request: Any) -> Any:
        return await self.record(request, self.inner.handle_async_request)

    async def record(self, request: Any, send: Callable[[Any], Awaitable[Any]]) -> Any:
        """Record the exchange of ``await send(request)``."""
        recording = self._begin(request, await request.aread())
        try:
            response = await send(request)
        except Exception as exc:
            recording.error(exc)
            raise
        except BaseException as exc:
            recording.client_closed(type(exc).__name__)
            raise
        return self._wrap(response, recording)

    async def aflush(self, timeout: float = 10.0) -> bool:
        """Wait (off the event loop) until everything recorded so far is on disk."""
        return await anyio.to_thread.run_sync(self.recorder.flush, timeout)

    async def aclose(self) -> None:
        try:
            await self.inner.aclose()
        finally:
            await anyio.to_thread.run_sync(self.recorder.close)  # the event loop never waits on the disk
