"""Writing a response body by hand: chunked framing, optional gzip, and deliberate fragmentation.

`http.server` would buffer and frame nothing for us, and the faults we want (half an event then a reset,
a body with no terminating chunk, a multi-byte character split across two TCP sends) need control of
every byte and every `send`, so each piece is framed here and written with its own `sendall`.
"""

from __future__ import annotations

import itertools
import socket
import struct
import threading
import zlib


class Stopped(Exception):
    """The emulator is stopping: abandon the response."""


def cut_points(data: bytes, split: int, split_utf8: bool) -> list[int]:
    """Offsets where `data` is cut into separately sent pieces.

    `split` cuts into that many near-equal pieces; `split_utf8` adds a cut just after the lead byte of
    the first multi-byte UTF-8 character (or in the middle when there is none), so the first piece
    ends inside a character.
    """
    points = {len(data) * i // split for i in range(1, split)}
    if split_utf8 and len(data) > 1:
        lead = next((i for i, b in enumerate(data) if b >= 0xC0), None)
        points.add(lead + 1 if lead is not None and lead + 1 < len(data) else len(data) // 2)
    return sorted(p for p in points if 0 < p < len(data))


def pieces(data: bytes, split: int, split_utf8: bool) -> list[bytes]:
    bounds = [0, *cut_points(data, split, split_utf8), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def chunk(data: bytes) -> bytes:
    """One HTTP/1.1 chunk: hex size, CRLF, the bytes, CRLF."""
    return b"%x\r\n%s\r\n" % (len(data), data)


class BodyWriter:
    """Sends one response body on a socket, optionally chunked and gzipped, honouring `stop`."""

    def __init__(self, sock: socket.socket, stop: threading.Event, *, chunked: bool, gzip: bool) -> None:
        self._sock = sock
        self._stop = stop
        self._chunked = chunked
        self._gzip = zlib.compressobj(wbits=31) if gzip else None

    def wait(self, seconds: float) -> None:
        """Sleep, but wake at once (raising Stopped) when the emulator stops."""
        if self._stop.wait(seconds) if seconds > 0 else self._stop.is_set():
            raise Stopped

    def encode(self, data: bytes) -> bytes:
        """Compress one event, flushed so it can be decoded before the next one exists."""
        if self._gzip is None:
            return data
        return self._gzip.compress(data) + self._gzip.flush(zlib.Z_SYNC_FLUSH)

    def send(self, data: bytes, *, split: int = 1, split_utf8: bool = False) -> None:
        """Send one event: each piece its own chunk and its own send, ~1 ms apart."""
        parts = pieces(data, split, split_utf8) if data else []
        for i, part in enumerate(parts):
            if i:
                self.wait(0.001)
            self._sock.sendall(chunk(part) if self._chunked else part)

    def send_half(self, data: bytes) -> None:
        """The first half of `data`, inside a chunk whose header promises all of it."""
        half = data[: len(data) // 2]
        head = b"%x\r\n" % len(data) if self._chunked and data else b""
        self._sock.sendall(head + half)

    def finish(self) -> None:
        """The gzip trailer and the zero-length terminating chunk: a complete, well-formed body."""
        if self._gzip is not None:
            self.send(self._gzip.flush(zlib.Z_FINISH))
        if self._chunked:
            self._sock.sendall(b"0\r\n\r\n")

    def cut(self) -> None:
        """Close cleanly (FIN) where we are, so the client sees an incomplete body, not a reset."""
        self._sock.shutdown(socket.SHUT_WR)

    def reset(self) -> None:
        """Abort with a TCP reset: SO_LINGER 0 makes the coming close send RST instead of FIN.

        A short pause first lets the bytes already sent reach the client; an RST discards whatever
        still sits in our send buffer.
        """
        self._stop.wait(0.02)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
