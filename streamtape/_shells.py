"""The transport shells, written once for both httpx and httpx2 (their transport APIs are the same).

``streamtape.httpx`` and ``streamtape.httpx2`` combine these mixins with their library's own base classes
(clients check ``isinstance`` against their own library's classes, so each library needs its own). A shell
only translates between the library's request/response/stream objects and the sans-IO core in
``recorder``; sync and async differ only in ``for`` versus ``async for``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from typing import Any, ClassVar

from .recorder import ExchangeLog, Recorder
from .redact import Redactor

RedactOption = bool | Iterable[str] | Redactor


def _redactor(redact: RedactOption) -> bool | Redactor:
    if isinstance(redact, bool | Redactor):
        return redact
    names = list(redact)
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
