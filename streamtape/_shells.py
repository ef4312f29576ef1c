"""The transport shells, written once for both httpx and httpx2 (their transport APIs are the same).

``streamtape.httpx`` and ``streamtape.httpx2`` combine these mixins with their library's own base classes
(clients check ``isinstance`` against their own library's classes, so each library needs its own). A shell
only translates between the library's request/response/stream objects and the sans-IO core in
``recorder``; sync and async differ only in ``for`` versus ``async for``.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from types import ModuleType
from typing import Any, ClassVar

import anyio

from .matching import Matcher, MatchFunc, ReplayRequest
from .recorder import ExchangeLog, Recorder
from .redact import Redactor
from .schedule import Step, plan
from .tape import Exchange, Tape, open_tape

RedactOption = bool | Iterable[str] | Redactor


def _redactor(redact: RedactOption) -> bool | Redactor:
    if isinstance(redact, bool | Redactor):
        return redact
    names = [redact] if isinstance(redact, str) else list(redact)
    return Redactor(headers=names, query=names)


def _head(response: Any) -> tuple[str, str]:
    ext = response.extensions
    version = ext.get("http_version", b"HTTP/1.1")
    reason = ext.get("reason_phrase", b"")
    return (
        version.decode("ascii", "replace") if isinstance(version, bytes) else str(version),
        reason.decode("latin-1") if isinstance(reason, bytes) else str(reason),
    )


class RecordingStreamMixin:
    """Passes the inner stream's chunks through untouched, logging each and how the stream ended."""

    def __init__(self, inner: Any, log: ExchangeLog) -> None:
        self._inner = inner
        self._log = log

    def __iter__(self) -> Iterator[bytes]:
        log = self._log
        try:
            for chunk in self._inner:
                log.chunk(chunk)
                yield chunk
        except Exception as exc:
            log.error(exc)
            raise
        except BaseException as exc:  # GeneratorExit, KeyboardInterrupt: the client stopped reading
            log.client_closed(type(exc).__name__)
            raise
        log.complete()

    def close(self) -> None:
        self._log.client_closed("closed before the end of the body")
        self._inner.close()


class AsyncRecordingStreamMixin:
    """The async twin of ``RecordingStreamMixin``."""

    def __init__(self, inner: Any, log: ExchangeLog) -> None:
        self._inner = inner
        self._log = log

    async def __aiter__(self) -> AsyncIterator[bytes]:
        log = self._log
        try:
            async for chunk in self._inner:
                log.chunk(chunk)
                yield chunk
        except Exception as exc:
            log.error(exc)
            raise
        except BaseException as exc:  # CancelledError, GeneratorExit: the client stopped reading
            log.client_closed(type(exc).__name__)
            raise
        log.complete()

    async def aclose(self) -> None:
        self._log.client_closed("closed before the end of the body")
        await self._inner.aclose()


class _RecordingBase:
    _default_transport: ClassVar[type]
    _stream: ClassVar[type]

    def __init__(
        self,
        target: str | os.PathLike[str],
        *,
        transport: Any = None,
        redact: RedactOption = True,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        """Record every exchange that passes through ``transport`` into the tape at ``target``.

        ``redact``: True (the default secret names), False, extra header/query names to add, or a Redactor.
        ``meta``: JSON-compatible user metadata stored in the tape's header.
        """
        self.inner = transport if transport is not None else self._default_transport()
        self.recorder = Recorder(target, redact=_redactor(redact), meta=meta)

    @property
    def path(self) -> str:
        return self.recorder.path

    def _wrap(self, response: Any, log: ExchangeLog) -> Any:
        version, reason = _head(response)
        log.response(response.status_code, version, response.headers.raw, reason)
        response.stream = self._stream(response.stream, log)
        return response


class RecordingTransportMixin(_RecordingBase):
    """``handle_request`` for sync clients."""

    def handle_request(self, request: Any) -> Any:
        body = request.read()
        log = self.recorder.begin(request.method, str(request.url), request.headers.raw, body)
        try:
            response = self.inner.handle_request(request)
        except Exception as exc:
            log.error(exc)
            raise
        except BaseException as exc:
            log.client_closed(type(exc).__name__)
            raise
        return self._wrap(response, log)

    def close(self) -> None:
        try:
            self.inner.close()
        finally:
            self.recorder.close()


class AsyncRecordingTransportMixin(_RecordingBase):
    """``handle_async_request`` for async clients."""

    async def handle_async_request(self, request: Any) -> Any:
        body = await request.aread()
        log = self.recorder.begin(request.method, str(request.url), request.headers.raw, body)
        try:
            response = await self.inner.handle_async_request(request)
        except Exception as exc:
            log.error(exc)
            raise
        except BaseException as exc:
            log.client_closed(type(exc).__name__)
            raise
        return self._wrap(response, log)

    async def aclose(self) -> None:
        try:
            await self.inner.aclose()
        finally:
            self.recorder.close()


# -- replay -------------------------------------------------------------------------------------------
def _sleep_until(deadline: float) -> None:
    remaining = deadline - time.perf_counter()
    if remaining > 0:
        time.sleep(remaining)


async def _async_sleep_until(deadline: float) -> None:
    """Sleep on the event loop (asyncio or trio) without blocking it, then land close to the deadline.

    Event loops round timers to about a millisecond; the last 1.5 ms are spent yielding to the loop.
    """
    remaining = deadline - time.perf_counter()
    if remaining > 0.002:
        await anyio.sleep(remaining - 0.0015)
    while time.perf_counter() < deadline:
        await anyio.sleep(0)


class _ReplayBase:
    _lib: ClassVar[ModuleType]
    _stream: ClassVar[type]

    def __init__(
        self,
        tape: Tape | str | os.PathLike[str],
        *,
        speed: float = 1.0,
        max_gap: float | None = None,
        match: str | MatchFunc = "request",
        allow_repeats: bool = False,
    ) -> None:
        """Answer requests from the tape, at ``speed`` times the recorded pace (``math.inf``: no waiting).

        ``max_gap`` caps every wait at that many tape seconds. ``match``: "request", "sequence" or a
        callable ``(ReplayRequest, Exchange) -> bool``. No network is touched.
        """
        if not (isinstance(speed, int | float) and speed > 0):
            raise ValueError(f"speed must be a number > 0 (math.inf for no waiting), not {speed!r}")
        if max_gap is not None and not max_gap >= 0:
            raise ValueError(f"max_gap must be None or >= 0 seconds, not {max_gap!r}")
        self.tape = tape if isinstance(tape, Tape) else open_tape(tape)
        self.speed = float(speed)
        self.max_gap = max_gap
        self.matcher = Matcher(self.tape, match, allow_repeats=allow_repeats)

    def _plan(self, request: Any, body: bytes) -> tuple[Exchange, list[Step]]:
        exchange = self.matcher.take(ReplayRequest(request.method, str(request.url), body))
        timeout = (request.extensions.get("timeout") or {}).get("read")
        return exchange, plan(exchange, speed=self.speed, max_gap=self.max_gap, read_timeout=timeout)

    def _error(self, step: Step, request: Any) -> Exception:
        """The recorded exception, as the client's own library's class of that name."""
        lib = self._lib
        cls = getattr(lib, step.error_type, None)
        if isinstance(cls, type) and issubclass(cls, lib.TransportError):
            return cls(step.message, request=request)
        return lib.ReadError(f"{step.error_type}: {step.message}", request=request)

    def _response(self, exchange: Exchange, steps: list[Step], request: Any, start: float) -> Any:
        head = exchange.response
        assert head is not None
        return self._lib.Response(
            head.status_code,
            headers=[(n.encode("latin-1"), v.encode("latin-1")) for n, v in head.headers],
            stream=self._stream(self, steps, request, start),
            extensions={
                "http_version": head.http_version.encode("ascii"),
                "reason_phrase": head.reason.encode("latin-1"),
            },
        )


class ReplayStreamMixin:
    """Delivers a planned exchange's chunks at their deadlines, then its end or error."""

    def __init__(self, transport: _ReplayBase, steps: list[Step], request: Any, start: float) -> None:
        self._transport, self._steps, self._request, self._start = transport, steps, request, start
        self._closed = False
        self._next = 0

    def __iter__(self) -> Iterator[bytes]:
        start, now, steps = self._start, time.perf_counter, self._steps
        while self._next < len(steps) and not self._closed:  # a second pass continues, as a socket would
            step = steps[self._next]
            self._next += 1
            if step.at and start + step.at > now():
                _sleep_until(start + step.at)
            if step.kind == "chunk":
                yield step.data
            elif step.kind == "error":
                raise self._transport._error(step, self._request)

    def close(self) -> None:
        self._closed = True


class AsyncReplayStreamMixin(ReplayStreamMixin):
    """The async twin: waits on the event loop, never blocking it."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        start, now, steps = self._start, time.perf_counter, self._steps
        while self._next < len(steps) and not self._closed:
            step = steps[self._next]
            self._next += 1
            if step.at and start + step.at > now():
                await _async_sleep_until(start + step.at)
            if step.kind == "chunk":
                yield step.data
            elif step.kind == "error":
                raise self._transport._error(step, self._request)

    async def aclose(self) -> None:
        self._closed = True


class ReplayTransportMixin(_ReplayBase):
    """``handle_request`` for sync clients."""

    def handle_request(self, request: Any) -> Any:
        start = time.perf_counter()
        exchange, steps = self._plan(request, request.read())
        first = steps[0]
        _sleep_until(start + first.at)
        if first.kind == "error":
            raise self._error(first, request)
        return self._response(exchange, steps[1:], request, start)


class AsyncReplayTransportMixin(_ReplayBase):
    """``handle_async_request`` for async clients."""

    async def handle_async_request(self, request: Any) -> Any:
        start = time.perf_counter()
        exchange, steps = self._plan(request, await request.aread())
        first = steps[0]
        await _async_sleep_until(start + first.at)
        if first.kind == "error":
            raise self._error(first, request)
        return self._response(exchange, steps[1:], request, start)


def transports_for(lib: ModuleType, module: str) -> tuple[type, type, type, type]:
    """The four transport classes for ``lib`` (httpx or httpx2), built on that library's own base classes.

    Clients check ``isinstance`` against their own library's transport and stream classes, so each library
    needs its own classes; the behaviour is the mixins above, shared.
    """

    def make(name: str, mixin: type, base: type, doc: str, **attrs: Any) -> type:
        return type(
            name, (mixin, base), {"__module__": module, "__qualname__": name, "__doc__": doc, **attrs}
        )

    lib_name = lib.__name__
    sync_stream, async_stream = lib.SyncByteStream, lib.AsyncByteStream
    return (
        make(
            "RecordingTransport",
            RecordingTransportMixin,
            lib.BaseTransport,
            f"Records every exchange of a sync ``{lib_name}.Client`` into a tape; the client sees no difference.",
            _default_transport=lib.HTTPTransport,
            _stream=make("_RecordingStream", RecordingStreamMixin, sync_stream, ""),
        ),
        make(
            "AsyncRecordingTransport",
            AsyncRecordingTransportMixin,
            lib.AsyncBaseTransport,
            f"Records every exchange of an ``{lib_name}.AsyncClient`` into a tape; the client sees no difference.",
            _default_transport=lib.AsyncHTTPTransport,
            _stream=make("_AsyncRecordingStream", AsyncRecordingStreamMixin, async_stream, ""),
        ),
        make(
            "ReplayTransport",
            ReplayTransportMixin,
            lib.BaseTransport,
            f"Answers a sync ``{lib_name}.Client`` from a tape: same bytes, same boundaries, same errors, same pace.",
            _lib=lib,
            _stream=make("_ReplayStream", ReplayStreamMixin, sync_stream, ""),
        ),
        make(
            "AsyncReplayTransport",
            AsyncReplayTransportMixin,
            lib.AsyncBaseTransport,
            f"Answers an ``{lib_name}.AsyncClient`` from a tape, waiting on the event loop.",
            _lib=lib,
            _stream=make("_AsyncReplayStream", AsyncReplayStreamMixin, async_stream, ""),
        ),
    )
