"""An incremental Server-Sent Events decoder over timestamped byte chunks. Sans-IO.

It follows the WHATWG "event stream interpretation" (HTML standard, Server-sent events): a leading BOM is
skipped; lines end in CRLF, LF or CR; a line starting with ``:`` is a comment; fields are ``event``,
``data``, ``id`` (ignored if it contains NUL) and ``retry`` (digits only); one space after the colon is
dropped; ``data`` lines join with ``\\n``; a blank line dispatches the event, unless its data is empty.

Why not httpx2's or httpx-sse's decoder: both take text lines and forget where the bytes came from. This one
takes raw chunks with their times, so each event knows when its last byte arrived and which chunks it spans,
and it reports the buffering hazards that break hand-written clients: an event split across chunks, a
UTF-8 character split across chunks, a lone CR line end, an unterminated last event.
"""

from __future__ import annotations

from dataclasses import dataclass, field

_BOM = b"\xef\xbb\xbf"


@dataclass(slots=True)
class Event:
    """One dispatched event. ``t_ns`` is when its last byte arrived; chunks ``first_chunk..last_chunk``."""

    event: str
    data: str
    id: str
    retry: int | None
    t_ns: int
    first_chunk: int
    last_chunk: int

    @property
    def split(self) -> bool:
        return self.first_chunk != self.last_chunk


@dataclass(slots=True)
class Hazards:
    """Counts of what makes naive stream parsing go wrong, with the first chunk index where each was seen."""

    split_events: int = 0
    split_utf8: int = 0
    lone_cr: int = 0
    unterminated: bool = False
    invalid_utf8: int = 0
    first_seen: dict[str, int] = field(default_factory=dict)

    def note(self, name: str, chunk: int) -> None:
        self.first_seen.setdefault(name, chunk)

    def as_list(self) -> list[str]:
        out = []
        if self.split_events:
            out.append(
                f"{self.split_events} {'event' if self.split_events == 1 else 'events'} split across chunks"
            )
        if self.split_utf8:
            noun = "character" if self.split_utf8 == 1 else "characters"
            out.append(f"{self.split_utf8} UTF-8 {noun} split across chunks")
        if self.lone_cr:
            out.append(f"{self.lone_cr} lone CR line ends")
        if self.invalid_utf8:
            out.append(f"{self.invalid_utf8} lines with invalid UTF-8")
        if self.unterminated:
            out.append("the stream ends inside an event (no blank line after it)")
        return out


def incomplete_utf8_tail(data: bytes) -> bool:
    """Whether ``data`` ends inside a multi-byte UTF-8 sequence."""
    n = len(data)
    for back in range(1, min(4, n) + 1):
        byte = data[n - back]
        if byte & 0xC0 != 0x80:  # not a continuation byte: a lead byte or ASCII
            if byte >= 0xF0:
                need = 4
            elif byte >= 0xE0:
                need = 3
            elif byte >= 0xC0:
                need = 2
            else:
                return False
            return back < need
    return False


class SSEDecoder:
    """Feed chunks with their times; get events. ``finish()`` at the end of the body."""

    def __init__(self) -> None:
        self._buf = b""  # bytes of the current, unterminated line
        self._started = False
        self._after_cr = False  # the previous chunk ended in CR: a leading LF completes a CRLF
        self._event = ""
        self._data: list[str] = []
        self._has_field = False
        self._first_chunk = -1
        self.last_id = ""
        self.retry: int | None = None
        self.chunk_index = -1
        self.hazards = Hazards()

    def feed(self, data: bytes, t_ns: int) -> list[Event]:
        self.chunk_index += 1
        index = self.chunk_index
        if not data:
            return []
        if not self._started:
            data = self._buf + data
            self._buf = b""
            if len(data) < 3 and _BOM.startswith(data):
                self._buf = data
                return []
            self._started = True
            if data.startswith(_BOM):
                data = data[3:]
        if self._after_cr and data[:1] == b"\n":
            data = data[1:]
            self.hazards.lone_cr -= 1  # it was a CRLF split across chunks after all
        self._after_cr = False
        if incomplete_utf8_tail(data):
            self.hazards.split_utf8 += 1
            self.hazards.note("split_utf8", index)
        out: list[Event] = []
        if b"\r" in data:
            lines, self._buf = self._split_cr(self._buf + data, index)
        else:
            lines = (self._buf + data).split(b"\n")
            self._buf = lines.pop()
        for line in lines:
            self._line(line, t_ns, index, out)
        if self._buf and self._first_chunk < 0:
            self._first_chunk = index  # an event's first line began in this chunk
        return out

    def _split_cr(self, data: bytes, index: int) -> tuple[list[bytes], bytes]:
        data = data.replace(b"\r\n", b"\n")
        if data.endswith(b"\r"):
            self._after_cr = True
        lone = data.count(b"\r")
        if lone:
            self.hazards.lone_cr += lone
            self.hazards.note("lone_cr", index)
            data = data.replace(b"\r", b"\n")
        lines = data.split(b"\n")
        return lines, lines.pop()

    def _line(self, raw: bytes, t_ns: int, index: int, out: list[Event]) -> None:
        if not raw:
            self._dispatch(t_ns, index, out)
            return
        if self._first_chunk < 0:
            self._first_chunk = index
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            line = raw.decode("utf-8", "replace")
            self.hazards.invalid_utf8 += 1
            self.hazards.note("invalid_utf8", index)
        if line[0] == ":":
            return
        name, colon, value = line.partition(":")
        if colon and value[:1] == " ":
            value = value[1:]
        if name == "data":
            self._data.append(value)
            self._has_field = True
        elif name == "event":
            self._event = value
            self._has_field = True
        elif name == "id":
            if "\0" not in value:
                self.last_id = value
        elif name == "retry" and value.isdigit() and value.isascii():
            self.retry = int(value)

    def _dispatch(self, t_ns: int, index: int, out: list[Event]) -> None:
        first = self._first_chunk if self._first_chunk >= 0 else index
        data = self._data
        if data:
            event = Event(
                self._event or "message", "\n".join(data), self.last_id, self.retry, t_ns, first, index
            )
            if first != index:
                self.hazards.split_events += 1
                self.hazards.note("split_events", first)
            out.append(event)
        self._event = ""
        self._data = []
        self._has_field = False
        self._first_chunk = -1

    def finish(self) -> None:
        """End of the body: an event without its blank line is not dispatched (the standard), only noted."""
        if self._buf.strip() or self._has_field:
            self.hazards.unterminated = True


def decode(chunks: list[tuple[int, bytes]]) -> tuple[list[Event], Hazards]:
    """All events of a whole body given as ``(t_ns, data)`` chunks."""
    decoder = SSEDecoder()
    events: list[Event] = []
    for t_ns, data in chunks:
        events += decoder.feed(data, t_ns)
    decoder.finish()
    return events, decoder.hazards
