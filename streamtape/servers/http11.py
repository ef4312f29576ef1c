"""A small HTTP/1.1 server: h11 for the protocol, anyio for the sockets, full control of each connection.

``serve`` and ``proxy`` must end a connection the way the tape (or the upstream) did: a clean end of the body,
a drop mid-body (FIN: the client sees an incomplete chunked read), a reset (RST: "connection reset by peer"),
a connection closed before any response, or silence until the client gives up. ASGI servers do not let an
application send a reset or close without answering (uvicorn answers 500 to an application that raises
before its response), so the connection layer is our own, on h11's well-kept state machine: it parses and
frames, we decide what goes on the wire and when.

A handler gets each request whole (LLM requests are small JSON documents) and answers through a
``Responder``: ``start``, ``write`` each chunk as it should arrive, then ``end``, ``drop``, ``reset`` or
``wait_closed``. Connections are kept alive between requests.
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.abc
import anyio.from_thread
import h11

logger = logging.getLogger("streamtape")

_READ = 65536
#: Headers that describe a connection, not a message: each side of a proxy (or a replay) frames its own.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)


@dataclass(frozen=True)
class IncomingRequest:
    method: str
    target: str  # path and query, as sent
    headers: list[tuple[bytes, bytes]]
    body: bytes


class ClientGone(Exception):
    """The client closed the connection while the handler was answering."""


class Responder:
    """How a handler answers one request on one connection."""

    def __init__(self, stream: anyio.abc.SocketStream, conn: h11.Connection) -> None:
        self._stream, self._conn = stream, conn
        self.started = False
        self.finished = False  # the connection may serve another request
        self.closed = False

    async def _send(self, event: Any) -> None:
        data = self._conn.send(event)
        if data:
            try:
                await self._stream.send(data)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
                self.closed = True
                raise ClientGone(str(exc)) from exc

    async def start(self, status: int, headers: list[tuple[bytes, bytes]], reason: bytes = b"") -> None:
        """Send the response head; without a content-length the body is sent chunked, a write per chunk."""
        clean = [(n, v) for n, v in headers if n.lower().decode("latin-1") not in HOP_BY_HOP]
        await self._send(h11.Response(status_code=status, headers=clean, reason=reason))
        self.started = True

    async def write(self, data: bytes) -> None:
        if data:
            await self._send(h11.Data(data=data))

    async def end(self) -> None:
        await self._send(h11.EndOfMessage())
        self.finished = True

    async def drop(self) -> None:
        """Close the connection where it stands (FIN): mid-body, the client sees an incomplete read."""
        self.closed = True
        await self._stream.aclose()

    async def reset(self) -> None:
        """Abort the connection with a TCP reset (RST), as a peer that crashed or a proxy that gave up."""
        raw = self._stream.extra(anyio.abc.SocketAttribute.raw_socket)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        await self.drop()

    async def wait_closed(self) -> None:
        """Say nothing more until the client closes the connection (a stall it gives up on)."""
        try:
            while await self._stream.receive(_READ):
                pass
        except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            pass
        await self.drop()

    async def json(self, status: int, body: bytes) -> None:
        """A complete small JSON answer."""
        await self.start(
            status, [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        )
        await self.write(body)
        await self.end()


Handler = Callable[[IncomingRequest, Responder], Awaitable[None]]


async def _next_request(stream: anyio.abc.SocketStream, conn: h11.Connection) -> IncomingRequest | None:
    head: h11.Request | None = None
    body: list[bytes] = []
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            try:
                data = await stream.receive(_READ)
            except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                data = b""
            conn.receive_data(data)
            continue
        if isinstance(event, h11.Request):
            head = event
        elif isinstance(event, h11.Data):
            body.append(bytes(event.data))
        elif isinstance(event, h11.EndOfMessage) and head is not None:
            return IncomingRequest(
                head.method.decode("ascii"),
                head.target.decode("latin-1"),
                [(bytes(n), bytes(v)) for n, v in head.headers.raw_items()],
                b"".join(body),
            )
        elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
            return None


async def _connection(stream: anyio.abc.SocketStream, handler: Handler) -> None:
    conn = h11.Connection(h11.SERVER)
    async with stream:
        while True:
            try:
                request = await _next_request(stream, conn)
            except h11.RemoteProtocolError as exc:
                logger.warning("streamtape: a client sent a malformed request (%s)", exc)
                return
            if request is None:
                return
            responder = Responder(stream, conn)
            try:
                await handler(request, responder)
            except ClientGone:
                return
            except Exception:
                logger.exception("streamtape: answering %s %s failed", request.method, request.target)
                if not responder.started and not responder.closed:
                    await responder.json(500, b'{"error": {"message": "streamtape failed to answer"}}')
                return
            if responder.closed or not responder.finished or conn.our_state is not h11.DONE:
                return
            try:
                conn.start_next_cycle()
            except h11.LocalProtocolError:
                return


class RunningServer:
    """A server running in a background thread (``run_in_thread``): ``url``, ``port``, ``stop()``."""

    def __init__(self, host: str, port: int, stop: Callable[[], None]) -> None:
        self.host, self.port, self.stop = host, port, stop

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


async def serve_forever(
    handler: Handler, host: str, port: int, *, started: Callable[[int], None] | None = None
) -> None:
    """Listen on ``host:port`` (0: any free port) and answer every connection until cancelled; then close
    the handler (its ``aclose``, if it has one: the proxy finishes its tape), on this event loop."""
    listener = await anyio.create_tcp_listener(local_host=host, local_port=port, reuse_port=False)
    try:
        async with listener:
            if started is not None:
                started(listener.extra(anyio.abc.SocketAttribute.local_port))
            await listener.serve(lambda stream: _connection(stream, handler))
    finally:
        close = getattr(handler, "aclose", None)
        if close is not None:
            with anyio.CancelScope(shield=True):
                await close()


@contextmanager
def run_in_thread(handler: Handler, host: str = "127.0.0.1", port: int = 0) -> Iterator[RunningServer]:
    """Serve in a background thread for the duration of a ``with`` block (tests, and embedding)."""
    ready = threading.Event()
    chosen: list[int] = []
    with anyio.from_thread.start_blocking_portal() as portal:
        scope: list[anyio.CancelScope] = []

        def listening(bound: int) -> None:
            chosen.append(bound)
            ready.set()

        async def main() -> None:
            with anyio.CancelScope() as cancel:
                scope.append(cancel)
                await serve_forever(handler, host, port, started=listening)

        future = portal.start_task_soon(main)
        if not ready.wait(10):
            future.result(timeout=1)  # raises what prevented listening
            raise RuntimeError("the server did not start listening within 10 s")
        server = RunningServer(host, chosen[0], lambda: portal.call(scope[0].cancel))
        try:
            yield server
        finally:
            portal.call(scope[0].cancel)
