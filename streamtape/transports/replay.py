"""Replay shells: answer a client from a tape, at the recorded pace divided by ``speed``, touching no network.

Which exchange answers a request is ``replay.matching``; when each byte is due is ``replay.schedule``.
The shells only wait until each step's deadline and act: return the head, yield a chunk, raise the
recorded error as the client's own library's exception class. ``streamtape.httpx`` and
``streamtape.httpx2`` declare the public ``ReplayTransport`` / ``AsyncReplayTransport``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator, Sequence
from types import ModuleType
from typing import Any, ClassVar

import anyio

from ..model import StrPath, Tape
from ..replay.matching import Match, Matcher, MatchFunc, ReplayRequest
from ..replay.schedule import DEFAULT_MAX_WAIT, Step, plan
from ..storage.reader import open_tape
from .library import check_library

#: The longest single sleep: a far deadline (``max_wait=None`` and a huge recorded wait) is slept in slices,
#: since ``time.sleep`` and event loops refuse a time they cannot represent.
_SLICE_S = 3600.0


def _sleep_until(deadline: float) -> None:
    remaining = deadline - time.perf_counter()
    while remaining > 0:
        time.sleep(min(remaining, _SLICE_S))
        remaining = deadline - time.perf_counter()


async def _async_sleep_until(deadline: float) -> None:
    """Sleep on the event loop (asyncio or trio) without blocking it, then land close to the deadline.

    Event loops round timers to about a millisecond; the last 1.5 ms are spent yielding to the loop.
    """
    remaining = deadline - time.perf_counter()
    while remaining > 0.002:
        await anyio.sleep(min(remaining - 0.0015, _SLICE_S))
        remaining = deadline - time.perf_counter()
    while time.perf_counter() < deadline:
        await anyio.sleep(0)


class _ReplayShell:
    """What the sync and async replay transports share: the tape, the matcher, building the response."""

    _lib: ClassVar[ModuleType]
    _stream: ClassVar[type[ReplayStream]]

    def __init__(
        self,
        tape: Tape | StrPath,
        *,
        speed: float = 1.0,
        max_gap: float | None = None,
        match: str | Match | Sequence[str] | MatchFunc = "request",
        allow_repeats: bool = False,
        max_wait: float | None = DEFAULT_MAX_WAIT,
        show_bodies: bool | None = None,
    ) -> None:
        """Answer requests from the tape, at ``speed`` times the recorded pace (``math.inf``: no waiting).

        ``max_gap`` caps every wait at that many tape seconds. ``match``: "request" (method, URL and the
        body as JSON), "sequence", a ``Match`` (criteria, JSON fields to ignore, headers), criterion names,
        or a callable ``(ReplayRequest, Exchange) -> bool``. ``allow_repeats`` serves an exchange again once
        every match was served. The client's pool, connect, write and read timeouts apply to the recorded
        waits (``replay.schedule``); a single recorded wait longer than ``max_wait`` tape seconds (after
        ``max_gap``; one day by default, None for no cap) raises that phase's timeout error at once, even
        for a client with no timeout. ``show_bodies``: whether a mismatch message may show request body
        bytes (None: only with ``STREAMTAPE_SHOW_BODIES=1``). No network is touched.
        """
        if not (isinstance(speed, int | float) and speed > 0):
            raise ValueError(f"speed must be a number > 0 (math.inf for no waiting), not {speed!r}")
        if max_gap is not None and not max_gap >= 0:
            raise ValueError(f"max_gap must be None or >= 0 seconds, not {max_gap!r}")
        if max_wait is not None and not (isinstance(max_wait, int | float) and max_wait >= 0):
            raise ValueError(f"max_wait must be None or >= 0 seconds, not {max_wait!r}")
        self.tape = tape if isinstance(tape, Tape) else open_tape(tape)
        self.speed = float(speed)
        self.max_gap = max_gap
        self.max_wait = max_wait
        self.matcher = Matcher(self.tape, match, allow_repeats=allow_repeats, show_bodies=show_bodies)

    def _plan(self, request: Any, body: bytes) -> list[Step]:
        if not isinstance(request, self._lib.Request):
            check_library(self._lib, request, "request", type(self).__name__)
        matcher = self.matcher
        raw = request.headers.raw if matcher.needs_headers else ()
        headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in raw]
        exchange = matcher.take(ReplayRequest(request.method, str(request.url), body, headers))
        timeouts = request.extensions.get("timeout") or {}
        return plan(
            exchange,
            speed=self.speed,
            max_gap=self.max_gap,
            read_timeout=timeouts.get("read"),
            connect_timeout=timeouts.get("connect"),
            write_timeout=timeouts.get("write"),
            pool_timeout=timeouts.get("pool"),
            max_wait=self.max_wait,
            source=self.tape.path,
        )

    def error(self, step: Step, request: Any) -> Exception:
        """The recorded exception, as the client's own library's class of that name."""
        lib = self._lib
        cls = getattr(lib, step.error_type, None)
        if isinstance(cls, type) and issubclass(cls, lib.TransportError):
            return cls(step.message, request=request)  # type: ignore[no-any-return]
        return lib.ReadError(f"{step.error_type}: {step.message}", request=request)  # type: ignore[no-any-return]

    def _response(self, head: Step, steps: list[Step], request: Any, start: float) -> Any:
        response = head.response
        assert response is not None
        stream = self._stream(self, steps, request, start)
        extensions = {
            "http_version": response.http_version.encode("ascii"),
            "reason_phrase": response.reason.encode("latin-1"),
        }
        try:  # the client encodes str headers as ASCII, the common case
            return self._lib.Response(
                response.status_code, headers=response.headers, stream=stream, extensions=extensions
            )
        except UnicodeEncodeError:  # latin-1 beyond ASCII: as bytes, one byte per code point
            headers = [(n.encode("latin-1"), v.encode("latin-1")) for n, v in response.headers]
            return self._lib.Response(
                response.status_code, headers=headers, stream=stream, extensions=extensions
            )


class ReplayStream:
    """Delivers a planned exchange's chunks at their deadlines, then its end or error."""

    def __init__(self, transport: _ReplayShell, steps: list[Step], request: Any, start: float) -> None:
        self._transport, self._steps, self._request, self._start = transport, steps, request, start
        self._closed = False
        self._next = 0
        #: The position in a "chunks" step's run: a client may abandon an iteration and start another (an SDK
        #: draining the rest), which goes on from the chunk after the last one delivered.
        self._within: Iterator[bytes] | None = None

    def _run(self, run: list[bytes]) -> Iterator[bytes]:
        if self._within is None:
            self._within = iter(run)
        yield from self._within
        self._within = None
        self._next += 1

    def __iter__(self) -> Iterator[bytes]:
        start, now, steps = self._start, time.perf_counter, self._steps
        while self._next < len(steps) and not self._closed:  # a second pass continues, as a socket would
            step = steps[self._next]
            if step.run is not None:  # an instant run (``_run``, inlined: the hot path at speed=inf)
                if self._within is None:
                    self._within = iter(step.run)
                yield from self._within
                self._within = None
                self._next += 1
                continue
            self._next += 1
            if step.at and start + step.at > now():
                _sleep_until(start + step.at)
            if step.kind == "chunk":
                yield step.data
            elif step.kind == "error":
                raise self._transport.error(step, self._request)

    def close(self) -> None:
        self._closed = True


class AsyncReplayStream(ReplayStream):
    """The async twin: waits on the event loop, never blocking it."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        start, now, steps = self._start, time.perf_counter, self._steps
        while self._next < len(steps) and not self._closed:
            step = steps[self._next]
            if step.run is not None:
                for data in self._run(step.run):
                    yield data
                continue
            self._next += 1
            if step.at and start + step.at > now():
                await _async_sleep_until(start + step.at)
            if step.kind == "chunk":
                yield step.data
            elif step.kind == "error":
                raise self._transport.error(step, self._request)

    async def aclose(self) -> None:
        self._closed = True


class ReplayShell(_ReplayShell):
    """``handle_request`` for sync clients."""

    def handle_request(self, request: Any) -> Any:
        start = time.perf_counter()
        steps = self._plan(request, request.read())
        first = steps[0]
        if first.at:
            _sleep_until(start + first.at)
        if first.kind == "error":
            raise self.error(first, request)
        return self._response(first, steps[1:], request, start)


class AsyncReplayShell(_ReplayShell):
    """``handle_async_request`` for async clients."""

    async def handle_async_request(self, request: Any) -> Any:
        start = time.perf_counter()
        steps = self._plan(request, await request.aread())
        first = steps[0]
        await _async_sleep_until(start + first.at)
        if first.kind == "error":
            raise self.error(first, request)
        return self._response(first, steps[1:], request, start)
