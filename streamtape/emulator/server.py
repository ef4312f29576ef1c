"""The emulator's HTTP/1.1 server: routes the three LLM endpoints and misbehaves on request.

Built on the stdlib `ThreadingHTTPServer` so it needs nothing beyond Python, with the body written by
hand (see `wire.py`) so every event is its own chunk and its own TCP send (`TCP_NODELAY` on), and faults
land exactly where a scenario asks. `stop()` must be prompt: every sleep waits on one `threading.Event`,
and open connections are shut down so handler threads blocked on a socket wake up.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import socket
import socketserver
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from ..analysis.providers import error_bodies
from . import anthropic_messages, headers, openai_chat, openai_responses
from .framing import json_body
from .scenario import Scenario
from .wire import BodyWriter, Stopped

SCENARIO_HEADER = "x-emulator-scenario"
SCENARIO_PREFIX = "/x/"


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the emulator received it (path without the `/x/<scenario>` prefix)."""

    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes
    scenario: Scenario
    attempt: int

    def header(self, name: str) -> str | None:
        """The first value of a header, matched case-insensitively."""
        lowered = name.lower()
        return next((value for key, value in self.headers if key.lower() == lowered), None)

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class _Provider:
    stream_events: Callable[[Scenario, dict[str, Any]], list[bytes]]
    response_body: Callable[[Scenario, dict[str, Any]], bytes]
    error_body: Callable[[Scenario, int, int], bytes]
    headers: Callable[[Scenario, int], list[tuple[str, str]]]


_PROVIDERS: dict[str, _Provider] = {
    module.PATH: _Provider(module.stream_events, module.response_body, module.error_body, make_headers)
    for module, make_headers in (
        (openai_chat, headers.openai_headers),
        (openai_responses, headers.openai_headers),
        (anthropic_messages, headers.anthropic_headers),
    )
}


class _Server(ThreadingHTTPServer):
    """Tracks open connections and handler threads so `stop()` can close and join them."""

    request_queue_size = 128  # fifty clients connecting at once must not be refused by the backlog
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], emulator: Emulator) -> None:
        self.emulator = emulator
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._workers: set[threading.Thread] = set()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        """Bind without `HTTPServer`'s reverse DNS lookup (`getfqdn`), which can stall start-up."""
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)  # AF_INET: (str, int) already

    def process_request(self, request: Any, client_address: Any) -> None:
        worker = threading.Thread(target=self._work, args=(request, client_address), daemon=True)
        with self._lock:
            self._connections.add(request)
            self._workers.add(worker)
        worker.start()

    def _work(self, request: Any, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self._lock:
                self._connections.discard(request)
                self._workers.discard(threading.current_thread())

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet about clients that hang up mid-stream, and about anything while stopping."""
        error = sys.exc_info()[1]
        if error is None or isinstance(error, OSError) or self.stopping.is_set():
            return
        self.emulator._errors.append(error)  # a bug in the emulator: keep it for tests to assert on
        with contextlib.suppress(ValueError, OSError):  # stderr may already be closed (pytest capture)
            super().handle_error(request, client_address)

    def close_connections(self, timeout: float) -> None:
        """Wake every handler blocked on a socket, then wait (bounded) for them to finish."""
        with self._lock:
            connections = list(self._connections)
            workers = list(self._workers)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for worker in workers:
            worker.join(timeout)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "streamtape-emulator/0.1"
    sys_version = ""
    server: _Server

    def version_string(self) -> str:
        return self.server_version

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request log line on stderr."""

    def do_POST(self) -> None:
        self._serve()

    do_GET = do_PUT = do_DELETE = do_PATCH = do_POST

    # -- request side -------------------------------------------------------------------------------

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            parts: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _scenario(self) -> tuple[str, Scenario]:
        """The path without the scenario prefix, and the scenario (header beats path)."""
        path, encoded = self.path, ""
        if path.startswith(SCENARIO_PREFIX):
            encoded, _, rest = path[len(SCENARIO_PREFIX) :].partition("/")
            path = "/" + rest
        encoded = self.headers.get(SCENARIO_HEADER) or encoded
        return path, Scenario.decode(encoded)

    # -- dispatch -----------------------------------------------------------------------------------

    def _serve(self) -> None:
        body = self._read_body()
        try:
            path, scenario = self._scenario()
        except ValueError as err:
            self._send_json(400, json_body(error_bodies.openai_error(400, f"bad emulator scenario: {err}")))
            return
        attempt = self.server.emulator._record(self.command, path, list(self.headers.items()), body, scenario)
        route = path.partition("?")[0].rstrip("/")
        provider = _PROVIDERS.get(route) if self.command == "POST" else None
        if provider is None:
            message = f"Unknown request URL: {self.command} {path}."
            self._send_json(404, json_body({"type": "error", **error_bodies.openai_error(404, message)}))
            return
        extra = provider.headers(scenario, attempt)
        if scenario.status is not None and (scenario.fail_first == 0 or attempt <= scenario.fail_first):
            if scenario.retry_after is not None:
                extra.append(("retry-after", _number(scenario.retry_after)))
            self._send_json(scenario.status, provider.error_body(scenario, scenario.status, attempt), extra)
            return
        try:
            request = json.loads(body)
            if not isinstance(request, dict):
                raise ValueError("the request body is not a JSON object")
        except ValueError:
            self._send_json(400, provider.error_body(scenario, 400, attempt), extra)
            return
        try:
            if request.get("stream") is True:
                self._stream(scenario, provider.stream_events(scenario, request), extra)
            else:
                self._respond(scenario, provider.response_body(scenario, request), extra)
        except Stopped:
            self._drop()
        except OSError:
            self.close_connection = True  # the client went away

    # -- response side ------------------------------------------------------------------------------

    def _head(
        self, status: int, content_type: str, extra: list[tuple[str, str]], fields: dict[str, str]
    ) -> None:
        self.send_response(status, "Overloaded" if status == 529 else None)  # 529 has no standard phrase
        self.send_header("Content-Type", content_type)
        for name, value in fields.items():
            self.send_header(name, value)
        for name, value in extra:
            self.send_header(name, value)
        self.end_headers()

    def _send_json(self, status: int, body: bytes, extra: list[tuple[str, str]] | None = None) -> None:
        self._head(status, "application/json", extra or [], {"Content-Length": str(len(body))})
        self.wfile.write(body)

    def _respond(self, scenario: Scenario, body: bytes, extra: list[tuple[str, str]]) -> None:
        """A plain JSON answer; stall/cut/reset act on the body as if it were one event."""
        stop = self.server.stopping
        writer = BodyWriter(self.connection, stop, chunked=False, gzip=False)
        if scenario.gzip:
            body = gzip.compress(body, mtime=0)
        fields = {"Content-Length": str(len(body))}
        if scenario.gzip:
            fields["Content-Encoding"] = "gzip"
        self._head(200, "application/json", extra, fields)
        if scenario.stall_at is not None:
            writer.wait(scenario.stall_s)
        if scenario.reset_at is not None or scenario.cut_at is not None:
            writer.send_half(body)
            self._fail(writer, reset=scenario.reset_at is not None)
            return
        writer.send(body)

    def _stream(self, scenario: Scenario, events: list[bytes], extra: list[tuple[str, str]]) -> None:
        """The SSE body: one chunk per event (or per piece), with the scenario's timing and faults."""
        writer = BodyWriter(self.connection, self.server.stopping, chunked=True, gzip=scenario.gzip)
        fields = {"Transfer-Encoding": "chunked", "Cache-Control": "no-cache", "Connection": "keep-alive"}
        if scenario.gzip:
            fields["Content-Encoding"] = "gzip"
        self._head(200, "text/event-stream; charset=utf-8", extra, fields)
        # Index len(events) is the end of the body: a stall, cut or reset there hits after the last event.
        for k in range(len(events) + 1):
            if k and scenario.pace_ms:
                writer.wait(scenario.pace_ms / 1000)
            if k == scenario.stall_at:
                writer.wait(scenario.stall_s)
            data = writer.encode(events[k]) if k < len(events) else b""
            if k in (scenario.reset_at, scenario.cut_at):
                writer.send_half(data)
                self._fail(writer, reset=k == scenario.reset_at)
                return
            if k < len(events):
                writer.send(data, split=scenario.split, split_utf8=scenario.split_utf8)
        writer.finish()

    def _fail(self, writer: BodyWriter, *, reset: bool) -> None:
        self.close_connection = True
        if reset:
            writer.reset()
            self._drop()
        else:
            writer.cut()

    def _drop(self) -> None:
        """Close the socket now (with SO_LINGER 0 set, this sends the RST)."""
        self.close_connection = True
        self.rfile.close()  # the makefile holds a reference that would delay the real close
        self.connection.close()


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


class Emulator:
    """An SSE emulator on 127.0.0.1: `with Emulator() as emu: base_url = emu.url(stall_at=3)`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self._requested_port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._attempts: dict[tuple[str, str], int] = {}
        self._errors: list[BaseException] = []

    # -- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> Emulator:
        if self._server is not None:
            raise RuntimeError("emulator already started")
        self._server = _Server((self.host, self._requested_port), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="streamtape-emulator",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """Stop serving: wake stalls, close open connections, join the threads (bounded)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.stopping.set()
        server.shutdown()
        server.close_connections(timeout)
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def serve_forever(self) -> None:
        """Block until interrupted (for `python -m streamtape.emulator`)."""
        if self._thread is None:
            self.start()
        try:
            while self._thread is not None and self._thread.is_alive():
                self._thread.join(0.5)
        finally:
            self.stop()

    # -- addressing ---------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("emulator not started")
        return int(self._server.server_address[1])

    def url(self, **knobs: Any) -> str:
        """The base URL; with knobs, one that carries `Scenario(**knobs)` in its path."""
        base = f"http://{self.host}:{self.port}"
        encoded = Scenario(**knobs).encode() if knobs else ""
        return f"{base}{SCENARIO_PREFIX}{encoded}" if encoded else base

    # -- what was received ------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of the requests received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    @property
    def errors(self) -> list[BaseException]:
        """Unexpected exceptions raised while serving (client hang-ups excluded): should stay empty."""
        return list(self._errors)

    def reset(self) -> None:
        """Forget received requests, attempt counters (so `fail_first` counts again) and errors."""
        with self._lock:
            self._requests.clear()
            self._attempts.clear()
            self._errors.clear()

    def _record(
        self, method: str, path: str, header_items: list[tuple[str, str]], body: bytes, scenario: Scenario
    ) -> int:
        """Store a request and return its attempt number for this (scenario, path)."""
        key = (scenario.encode(), path.partition("?")[0])
        with self._lock:
            attempt = self._attempts.get(key, 0) + 1
            self._attempts[key] = attempt
            self._requests.append(RecordedRequest(method, path, header_items, body, scenario, attempt))
        return attempt
