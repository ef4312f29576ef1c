"""Shared by the recorder benchmarks (``recorder_*.py``): loopback servers, a pass-through transport, helpers.

Not a benchmark itself. Everything here uses public tools only: the recording transports are used as a user
would, and the servers are real HTTP/1.1 servers on 127.0.0.1 in their own process, so that
``time.process_time()`` in the benchmark counts the client (and the recorder's threads), never the server.

- ``LoopbackServer``: a minimal HTTP/1.1 server that answers any request with a pre-built SSE body in
  chunked framing, one HTTP chunk per event, the events being the emulator's own OpenAI chat completion
  chunks (``streamtape.emulator.openai_chat.stream_events``). ``/flood`` is one completion of
  ``--flood-events`` events (with the emulator's obfuscation padding, as the emulator sends it), built once
  at start-up and written with one ``sendall``; ``/bytes/<n>`` is at least ``n`` bytes of events cycling
  through a pool of distinct completions (different seeds, no padding: ~277 B an event), so a long stream
  never repeats within a compressor's window. The emulator itself builds every event list per request
  (~0.17 s for 20k events before the response head) and sends each event with its own ``sendall``; this
  server costs the client nothing of that, so the client is the bottleneck and ratios are not diluted.
- ``EmulatorProcess``: ``python -m streamtape.emulator`` in a subprocess.

    python benchmarks/_loopback.py --flood-events 20000 --pool 0    # serve in the foreground (prints the port)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import socketserver
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from types import ModuleType
from typing import Any

CHAT_PATH = "/v1/chat/completions"
REQUEST = {"model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
_HEAD = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: text/event-stream; charset=utf-8\r\n"
    b"Transfer-Encoding: chunked\r\n"
    b"Cache-Control: no-cache\r\n"
    b"\r\n"
)
_POOL_EVENTS = 20_000


# -- the minimal server (runs in its own process) ------------------------------------------------------


def _events(events: int, seed: int, obfuscation: bool) -> list[bytes]:
    from streamtape.emulator import Scenario
    from streamtape.emulator.openai_chat import stream_events

    return stream_events(Scenario(events=events, seed=seed, obfuscation=obfuscation), REQUEST)


def _framed(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, flood_events: int, pool: int) -> None:
        events = _events(flood_events, 0, True) if flood_events else []
        self.flood = b"".join(map(_framed, events))
        self.pool: list[tuple[int, bytes, list[bytes]]] = []
        for seed in range(pool):
            block = _events(_POOL_EVENTS, seed + 1, False)
            self.pool.append((sum(map(len, block)), b"".join(map(_framed, block)), block))
        super().__init__(("127.0.0.1", 0), _Handler)

    def body(self, target: str) -> Iterator[bytes]:
        if target.startswith("/bytes/"):
            remaining = int(target.split("/")[2])
            k = 0
            while remaining > 0:
                payload, joined, events = self.pool[k % len(self.pool)]
                k += 1
                if payload <= remaining:
                    remaining -= payload
                    yield joined
                    continue
                part = []
                for event in events:
                    part.append(_framed(event))
                    remaining -= len(event)
                    if remaining <= 0:
                        break
                yield b"".join(part)
        else:
            yield self.flood


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def handle(self) -> None:
        with contextlib.suppress(OSError):
            while line := self.rfile.readline():
                target = line.split(b" ")[1].decode("ascii")
                length = 0
                while (field := self.rfile.readline()) not in (b"\r\n", b"\n", b""):
                    name, _, value = field.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                if length:
                    self.rfile.read(length)
                self.connection.sendall(_HEAD)
                for piece in self.server.body(target.split("?")[0]):
                    self.connection.sendall(piece)
                self.connection.sendall(b"0\r\n\r\n")


def _serve(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--flood-events", type=int, default=20_000)
    parser.add_argument("--pool", type=int, default=0, help="distinct completions cycled by /bytes/<n>")
    args = parser.parse_args(argv)
    server = _Server(args.flood_events, args.pool)
    print(server.server_address[1], flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server.serve_forever(poll_interval=0.1)


# -- the benchmark's side -----------------------------------------------------------------------------


class _Subprocess:
    """A server process started by us, stopped by its own pid when the block ends."""

    def __init__(self, argv: list[str]) -> None:
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.first_line = self.proc.stdout.readline().strip()
        if not self.first_line:
            self.stop()
            raise RuntimeError(f"server did not start: {argv}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class LoopbackServer(_Subprocess):
    """The minimal server above, in a subprocess; ``url("/flood")``, ``url(f"/bytes/{n}")``."""

    def __init__(self, flood_events: int = 20_000, pool: int = 0) -> None:
        here = os.path.abspath(__file__)
        super().__init__([sys.executable, here, "--flood-events", str(flood_events), "--pool", str(pool)])
        self.base = f"http://127.0.0.1:{int(self.first_line)}"

    def url(self, path: str) -> str:
        return self.base + path


class EmulatorProcess(_Subprocess):
    """``python -m streamtape.emulator`` in a subprocess; ``url(**knobs)`` as ``Emulator.url``."""

    def __init__(self) -> None:
        super().__init__([sys.executable, "-m", "streamtape.emulator", "--port", "0"])
        self.base = self.first_line

    def url(self, **knobs: Any) -> str:
        from streamtape.emulator import Scenario

        encoded = Scenario(**knobs).encode()
        return f"{self.base}/x/{encoded}" if encoded else self.base


def pass_through(lib: ModuleType) -> type:
    """A transport for ``lib`` (httpx or httpx2) shaped like the recording shell, minus the recording.

    It reads the request body, calls the inner transport, and replaces the response's stream by a
    generator that yields the inner stream's chunks one by one, and closes it.
    """

    class PassThroughStream(lib.SyncByteStream):  # type: ignore[name-defined,misc]
        def __init__(self, inner: Any) -> None:
            self._inner = inner

        def __iter__(self) -> Iterator[bytes]:
            for chunk in self._inner:  # noqa: UP028 (the shell's loop, minus ``recording.chunk(chunk)``)
                yield chunk

        def close(self) -> None:
            self._inner.close()

    class PassThroughTransport(lib.BaseTransport):  # type: ignore[name-defined,misc]
        def __init__(self, transport: Any = None) -> None:
            self.inner = transport if transport is not None else lib.HTTPTransport()

        def handle_request(self, request: Any) -> Any:
            request.read()
            response = self.inner.handle_request(request)
            response.stream = PassThroughStream(response.stream)
            return response

        def close(self) -> None:
            self.inner.close()

    return PassThroughTransport


def drain(client: Any, url: str) -> tuple[int, int]:
    """POST a streaming chat request and read the body raw; returns (chunks, bytes) the client saw."""
    chunks = size = 0
    with client.stream("POST", url, json=REQUEST) as response:
        response.raise_for_status()
        for chunk in response.iter_raw():
            chunks += 1
            size += len(chunk)
    return chunks, size


def settle(path: str | None, minimum: float = 0.35, timeout: float = 10.0) -> None:
    """Sleep ``minimum``, then until the file at ``path`` (if any) has not grown for 0.1 s."""
    time.sleep(minimum)
    if path is None:
        time.sleep(0.1)
        return
    deadline = time.monotonic() + timeout
    size = -1
    while time.monotonic() < deadline:
        now = os.path.getsize(path) if os.path.exists(path) else -1
        if now == size:
            return
        size = now
        time.sleep(0.1)


def median(values: list[float]) -> float:
    return statistics.median(values)


def peak_rss_kib() -> int:
    """This process's peak resident set size in KiB (``ru_maxrss`` is KiB on Linux)."""
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


if __name__ == "__main__":
    _serve()
