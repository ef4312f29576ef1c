"""An event-stream body read as it arrives, in bounded memory, with results identical to ``sse.SSEDecoder``.

Why: decoding line by line in Python, then parsing every event's JSON into dicts, made ``diagnose`` slower
than the SDKs' bare decoders, and holding a whole body's events made a 200 MB tape cost gigabytes.
Provider bodies are nearly always the same simple shape: ``\\n`` line ends, and events that are
``data: ...`` or ``event: ...`` + ``data: ...`` separated by one blank line. So chunks are gathered into a
window (``WINDOW`` bytes) whose complete events are cut out by C-level loops (``bytes.split``, ``count``,
``map``); split events and split UTF-8 characters are found from the chunks' side, and an event's time
only when an assembler asks (``Batch``), all as the full decoder gives them. The unfinished last event is
carried into the next window as whole chunks and an offset into the first. Where anything else starts (a
CR, a BOM, a comment, an ``id:`` or ``retry:`` field, multi-line data, extra blank lines, invalid UTF-8,
the unterminated tail), the full decoder takes over from that event's first byte, in the state it would
have there, for the rest of the body. The assemblers' ``feed_raw`` decodes the hot events' JSON into typed
structs (only the fields they need) in one loop per window; an event it stops at goes through ``feed``.
"""

from __future__ import annotations

import gc
from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import accumulate, compress, filterfalse, repeat
from operator import add, getitem, is_, not_
from typing import cast

from .providers import Assembler, Assembly, detect, new_assembler
from .sse import Event, Hazards, SSEDecoder, incomplete_utf8_tail

#: How many bytes are gathered before their events are cut out: big enough that the per-window work is
#: nothing beside the per-event work, small enough to stay in the CPU's cache and bound the memory held.
WINDOW = 256 << 10
#: How many first events ``detect`` sniffs.
SNIFF = 5


@dataclass(slots=True)
class Batch:
    """The events the fast path cut from one window, as parallel lists (what ``feed_raw`` takes).

    ``ends`` are the events' end offsets in the window, ``chunk_ends`` and ``chunk_times`` the window
    chunks' (from ``base``, their index in the stream). Valid while the scanner hands it on.
    """

    names: list[str]
    datas: list[bytes]
    ends: list[int]
    chunk_ends: list[int]
    chunk_times: list[int]
    base: int

    def time(self, i: int) -> int:
        """When event ``i``'s last byte (its blank line's LF, which dispatches it) arrived. Looked up on
        demand: an assembler needs only its first content event's."""
        return self.chunk_times[bisect_left(self.chunk_ends, self.ends[i])]

    def event(self, i: int) -> Event:
        """Event ``i`` as the full decoder gives it (no ``id:``/``retry:`` came before it)."""
        first = self.base + bisect_right(self.chunk_ends, self.ends[i - 1] if i else 0)
        last = self.base + bisect_left(self.chunk_ends, self.ends[i])
        return Event(self.names[i], self.datas[i].decode("utf-8"), "", None, self.time(i), first, last)

    def split(self) -> tuple[int, int]:
        """How many events span more than one chunk, and the stream index of the first one's first chunk.

        From the chunks' side: an event is split when a chunk boundary lies inside it (one that is not an
        event's end), and most boundaries are at events' ends, so this is a set lookup per chunk and a
        ``bisect`` only per boundary inside an event."""
        chunk_ends, ends = self.chunk_ends, self.ends
        inner = chunk_ends[bisect_right(chunk_ends, 0) : bisect_left(chunk_ends, ends[-1])]
        inside = list(filterfalse(set(ends).__contains__, inner)) if inner else inner
        if not inside:
            return 0, -1
        holders = list(map(bisect_right, repeat(ends), inside))  # the event each boundary is inside
        first = holders[0]
        return len(set(holders)), self.base + bisect_right(chunk_ends, ends[first - 1] if first else 0)


def _valid_utf8(datas: list[bytes]) -> bool:
    """Whether every data is valid UTF-8 (a newline between them keeps a split character from joining)."""
    odd = list(compress(datas, map(not_, map(bytes.isascii, datas))))
    if odd:
        try:
            b"\n".join(odd).decode("utf-8")
        except UnicodeDecodeError:
            return False
    return True


def _uniform(window: bytes, cut: int, ascii: bool) -> tuple[list[str], list[bytes], list[int]] | None:
    """The names, datas and end offsets of ``window[:cut]``'s events when every one has the same simple
    shape, ``data: D`` or ``event: E`` + ``data: D``, and valid UTF-8 (sure when the window is ``ascii``);
    None otherwise. C-level loops only."""
    if window.startswith(b"data: "):
        # k events "data: D\n\n" hold 2k newlines, all in the k - 1 separators and the end: no D has one
        datas = window[6 : cut - 2].split(b"\n\ndata: ")
        if window.count(b"\n", 0, cut) != 2 * len(datas) or not (ascii or _valid_utf8(datas)):
            return None
        ends = list(accumulate(map(add, map(len, datas), repeat(8))))
        return ["message"] * len(datas), datas, ends
    if not window.startswith(b"event: "):
        return None
    lines = window[:cut].split(b"\n")  # [e1, d1, b"", e2, d2, b"", ..., b""]
    if (len(lines) - 1) % 3 or any(lines[2::3]):
        return None
    name_lines, data_lines = lines[0:-1:3], lines[1::3]
    datas = list(map(bytes.removeprefix, data_lines, repeat(b"data: ")))
    if any(map(is_, datas, data_lines)):  # a line without the prefix comes back as itself
        return None
    try:
        known = {raw: raw[7:].decode("utf-8") or "message" for raw in set(name_lines)}
    except UnicodeDecodeError:
        return None
    if not all(raw.startswith(b"event: ") for raw in known) or not (ascii or _valid_utf8(datas)):
        return None
    sizes = map(add, map(len, name_lines), map(len, datas))  # "event: " + "\ndata: " + "\n\n" = 9 bytes more
    ends = list(accumulate(map(add, sizes, repeat(9))))
    return list(map(known.__getitem__, name_lines)), datas, ends


def _stepwise(window: bytes, cut: int) -> tuple[list[str], list[bytes], list[int]]:
    """``_uniform`` for a window of mixed shapes: event by event, up to the first unusual one."""
    names: list[str] = []
    datas: list[bytes] = []
    ends: list[int] = []
    find, startswith = window.find, window.startswith
    start = 0
    while start < cut:
        end = find(b"\n\n", start, cut)
        if end < 0:
            break
        if startswith(b"data: ", start):
            if find(b"\n", start, end) >= 0:
                break
            name = "message"
            data = window[start + 6 : end]
        elif startswith(b"event: ", start):
            newline = find(b"\n", start, end)
            if newline < 0 or not startswith(b"data: ", newline + 1) or find(b"\n", newline + 1, end) >= 0:
                break
            try:
                name = window[start + 7 : newline].decode("utf-8") or "message"
            except UnicodeDecodeError:
                break
            data = window[newline + 7 : end]
        else:
            break
        if not data.isascii():
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                break
        names.append(name)
        datas.append(data)
        start = end + 2
        ends.append(start)
    return names, datas, ends


class EventScanner:
    """Content-decoded ``(t_ns, data)`` chunks in, the events the full decoder would give out, in order:
    ``Batch`` es from the fast path to ``_batch``, then ``sse.Event`` s from the full decoder to ``_events``.

    It holds the chunks of the current window (at most ``window`` bytes, or one event when that is longer)
    and nothing of what it has passed on. ``hazards`` are the stream's, as ``sse.decode`` counts them;
    ``handover`` is the body offset where the full decoder took over (None while the fast path reads).
    """

    __slots__ = (
        "_base",
        "_datas",
        "_decoder",
        "_offset",
        "_pending",
        "_read",
        "_threshold",
        "_times",
        "handover",
        "hazards",
        "window",
    )

    def __init__(self, *, window: int = WINDOW) -> None:
        self.window = window
        self.hazards = Hazards()
        self.handover: int | None = None
        self._datas: list[bytes] = []  # the chunks not yet read whole, the first from ``_offset`` on
        self._times: list[int] = []
        self._offset = 0
        self._pending = 0  # the bytes not yet read
        self._threshold = window  # scan when this many are pending (doubled while one event fills it)
        self._base = 0  # the stream index of ``_datas[0]``
        self._read = 0  # the body bytes read by the fast path
        self._decoder: SSEDecoder | None = None

    def _batch(self, batch: Batch) -> None:
        raise NotImplementedError

    def _events(self, events: list[Event]) -> None:
        raise NotImplementedError

    def feed(self, t_ns: int, data: bytes) -> None:
        """The next chunk of the body."""
        if self._decoder is None:
            self._datas.append(data)
            self._times.append(t_ns)
            self._pending += len(data)
            if self._pending >= self._threshold:
                self._scan()
        else:
            events = self._decoder.feed(data, t_ns)
            if events:
                self._events(events)

    def end(self) -> None:
        """The end of the body: the unfinished tail, if any, is the full decoder's to judge."""
        if self._decoder is None:
            self._scan()
            if self._decoder is None and self._pending:
                self._hand_over()
        if self._decoder is not None:
            self._decoder.finish()

    @property
    def held(self) -> int:
        """The body bytes held (those of the pending chunks): bounded by the window and the longest event."""
        return sum(map(len, self._datas))

    def _scan(self) -> None:
        """Read the complete events of the pending chunks; carry the rest, or hand it to the full decoder."""
        datas, offset = self._datas, self._offset
        window = b"".join([datas[0][offset:], *datas[1:]] if offset else datas)
        if not window:
            return
        if self._read == 0 and window[0] == 0xEF:  # a BOM, or a prefix of one: the full decoder's business
            self._hand_over()
            return
        cr = window.find(b"\r")
        blank = window.rfind(b"\n\n", 0, cr if cr >= 0 else len(window))
        cut = blank + 2 if blank >= 0 else 0  # the end of the last complete event (before any CR)
        read = 0
        chunk_ends = list(accumulate(map(len, datas), initial=-offset))  # in the window
        del chunk_ends[0]
        ascii = window.isascii()
        if cut:
            with gc_paused():
                uniform = _uniform(window, cut, ascii)
                names, found, ends = uniform if uniform is not None else _stepwise(window, cut)
                if found:
                    read = ends[-1]
                    batch = Batch(names, found, ends, chunk_ends, self._times, self._base)
                    count, first = batch.split()
                    if count:
                        self.hazards.split_events += count
                        self.hazards.note("split_events", first)
                    self._batch(batch)
        self._consume(read, chunk_ends, ascii)
        if read < cut or cr >= 0:  # an unusual event starts at ``read``
            self._hand_over()
        else:
            self._threshold = max(self.window, 2 * self._pending)

    def _consume(self, read: int, chunk_ends: list[int], ascii: bool) -> None:
        """Drop the chunks read whole by now (noting their split UTF-8 characters, none if the window was
        ``ascii``); keep the offset into the next one."""
        if not read:
            return
        datas = self._datas
        done = bisect_right(chunk_ends, read)
        if not ascii:
            tails = cast("list[bytes]", list(map(getitem, datas[:done], repeat(slice(-1, None)))))
            if not b"".join(tails).isascii():
                for index in compress(range(done), map(not_, map(bytes.isascii, tails))):
                    if incomplete_utf8_tail(datas[index]):
                        self.hazards.split_utf8 += 1
                        self.hazards.note("split_utf8", self._base + index)
        del datas[:done], self._times[:done]
        self._base += done
        self._offset = read - chunk_ends[done - 1] if done else self._offset + read
        self._pending -= read
        self._read += read

    def _hand_over(self) -> None:
        """The full decoder reads the rest of the body, from the first unread byte, in the state it would
        have there."""
        decoder = self._decoder = SSEDecoder()
        decoder.hazards = self.hazards
        decoder._started = self._read > 0  # at offset 0 the decoder still has to look for a BOM
        decoder.chunk_index = self._base - 1
        self.handover = self._read
        datas, times = self._datas, self._times
        events: list[Event] = []
        if datas:
            events += decoder.feed(datas[0][self._offset :], times[0])
            for data, t_ns in zip(datas[1:], times[1:], strict=True):
                events += decoder.feed(data, t_ns)
        self._datas, self._times, self._pending, self._offset = [], [], 0, 0
        if events:
            self._events(events)


class BodyScanner(EventScanner):
    """An event-stream body analysed as it arrives: content-decoded ``(t_ns, data)`` chunks in, the
    provider's ``Assembly`` and the stream's hazards out, the same as ``sse.decode`` + ``detect`` +
    ``assemble_events`` over the whole body. The provider is detected from the request and the first
    events, which are the only ones held (until then); later ones go to the assembler as they complete."""

    __slots__ = ("_assembler", "_content_type", "_head", "_request_body", "_url")

    def __init__(self, url: str, request_body: bytes, content_type: str, *, window: int = WINDOW) -> None:
        super().__init__(window=window)
        self._url, self._request_body, self._content_type = url, request_body, content_type
        self._head: list[Event] = []
        self._assembler: Assembler | None = None

    def _detect(self) -> Assembler:
        provider = detect(self._url, self._request_body, self._content_type, self._head)
        assembler = self._assembler = new_assembler(provider)
        for event in self._head:
            assembler.feed(event)
        self._head = []
        return assembler

    def _batch(self, batch: Batch) -> None:
        i, n, assembler = 0, len(batch.datas), self._assembler
        while assembler is None and i < n:
            self._head.append(batch.event(i))
            i += 1
            if len(self._head) == SNIFF:
                assembler = self._detect()
        if assembler is None:
            return
        names, datas, time, feed_raw = batch.names, batch.datas, batch.time, assembler.feed_raw
        while i < n:
            i = feed_raw(names, datas, time, i)
            if i < n:
                assembler.feed(batch.event(i))
                i += 1

    def _events(self, events: list[Event]) -> None:
        for event in events:
            if self._assembler is not None:
                self._assembler.feed(event)
                continue
            self._head.append(event)
            if len(self._head) == SNIFF:
                self._detect()

    def finish(self) -> tuple[Assembly, list[str]]:
        """The end of the body: the assembly and the hazards (as ``Hazards.as_list``)."""
        with gc_paused():
            self.end()
            assembler = self._assembler or self._detect()
        return assembler.result(), self.hazards.as_list()


class _Collector(EventScanner):
    __slots__ = ("events",)

    def __init__(self, *, window: int) -> None:
        super().__init__(window=window)
        self.events: list[Event] = []

    def _batch(self, batch: Batch) -> None:
        self.events += map(batch.event, range(len(batch.datas)))

    def _events(self, events: list[Event]) -> None:
        self.events += events


def decode(chunks: list[tuple[int, bytes]], *, window: int = WINDOW) -> tuple[list[Event], Hazards]:
    """``sse.decode`` through the scanner: every event as an ``sse.Event`` (for tests and comparisons)."""
    scanner = _Collector(window=window)
    for t_ns, data in chunks:
        scanner.feed(t_ns, data)
    scanner.end()
    return scanner.events, scanner.hazards


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic GC inside: the hot loops allocate many small objects, none cyclic, and a collection pass
    over them cost up to a third of the run. Left alone if the caller already disabled it."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
