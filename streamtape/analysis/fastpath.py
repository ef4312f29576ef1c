"""An event-stream body read as it arrives, in bounded memory, with results identical to ``sse.SSEDecoder``.

Why: decoding line by line in Python, then parsing every event's JSON into dicts, made ``diagnose`` slower
than the SDKs' bare decoders, and holding a whole body's events made a 200 MB tape cost gigabytes.
Provider bodies are nearly always the same simple shape: events that are ``data: ...`` or ``event: ...`` +
``data: ...``, each ended by a blank line, with ``\\n`` line ends (some servers: ``\\r\\n`` throughout). So
chunks are gathered into a window (``WINDOW`` bytes) whose complete events are cut out by C-level loops
(``bytes.split``, ``count``, ``map``); split events and split UTF-8 characters are found from the chunks'
side, and an event's time only when an assembler asks (``Batch``), all as the full decoder gives them. The
unfinished last event is carried into the next window as whole chunks and an offset into the first.

Anything else (a comment such as a keep-alive ``: ping``, a BOM, a lone CR, an ``id:`` or ``retry:``
field, multi-line data, extra blank lines, invalid UTF-8) is read by the full decoder, kept for the whole
body so that it has the state it would have there: from that event's first byte to the next blank line,
where it is between events again and the fast path resumes, its events carrying the decoder's last event
id and retry. So a keep-alive every few seconds, or OpenRouter's leading ``: OPENROUTER PROCESSING``, no
longer puts the rest of the stream on the slow path; once a window has shown an unusual event, a regular
expression finds where each run of usual ones ends. Where no blank line follows (lone CRs) or unusual
events come densely (``DENSE``), the decoder reads the chunks as they come, up to a chunk that ends
between events.

The assemblers' ``feed_raw`` decodes the hot events' JSON into typed structs (only the fields they need) in
one loop per window; an event it stops at goes through ``feed``.
"""

from __future__ import annotations

import gc
import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import accumulate, compress, filterfalse, repeat
from operator import add, getitem, is_, not_, sub
from typing import cast

from .providers import Assembler, Assembly, detect, new_assembler
from .sse import Event, Hazards, SSEDecoder, incomplete_utf8_tail

#: How many bytes are gathered before their events are cut out: big enough that the per-window work is
#: nothing beside the per-event work, small enough to stay in the CPU's cache and bound the memory held.
WINDOW = 256 << 10
#: How many first events ``detect`` sniffs.
SNIFF = 5
#: When a window's unusual events come ``DENSE`` times with fewer than ``RUN`` usual events each on
#: average, the full decoder takes the rest of the window: cutting out runs so short costs more than it saves.
DENSE = 16
RUN = 3

#: A run of usual events (with ``\n`` and with ``\r\n`` line ends); what they hold is checked by
#: ``_uniform`` or ``_stepwise``. ``[^\n]*`` is the pattern ``re`` runs fastest.
_USUAL = re.compile(rb"(?:(?:event: [^\n]*\n)?data: [^\n]*\n\n)*")
_USUAL_CRLF = re.compile(rb"(?:(?:event: [^\n]*\r\n)?data: [^\n]*\r\n\r\n)*")
#: A blank line's end (after any line end): the full decoder is between events there.
_BLANK = re.compile(rb"\n\r?\n")


@dataclass(slots=True)
class Batch:
    """The events the fast path cut from a stretch of a window, as parallel lists (what ``feed_raw`` takes).

    ``ends`` are the events' end offsets in the window (the first starts at ``start``), ``chunk_ends`` and
    ``chunk_times`` the window chunks' (from ``base``, their index in the stream). With ``\\r\\n`` line
    ends (``crlf``) an event is dispatched by its last CR, the byte before its end: where a chunk ends
    between that CR and LF the full decoder ends the line there. ``last_id`` and ``retry`` are the
    decoder's (set by ``id:`` and ``retry:`` fields before the stretch). Valid while the scanner hands it
    on.
    """

    names: list[str]
    datas: list[bytes]
    ends: list[int]
    chunk_ends: list[int]
    chunk_times: list[int]
    base: int
    start: int = 0
    crlf: bool = False
    last_id: str = ""
    retry: int | None = None

    def time(self, i: int) -> int:
        """When event ``i``'s dispatching byte arrived. Looked up on demand: an assembler needs only its
        first content event's."""
        return self.chunk_times[bisect_left(self.chunk_ends, self.ends[i] - self.crlf)]

    def event(self, i: int) -> Event:
        """Event ``i`` as the full decoder gives it."""
        chunk_ends, base = self.chunk_ends, self.base
        first = bisect_right(chunk_ends, self.ends[i - 1] if i else self.start)
        last = bisect_left(chunk_ends, self.ends[i] - self.crlf)
        data = self.datas[i].decode("utf-8")
        return Event(
            self.names[i], data, self.last_id, self.retry, self.chunk_times[last], base + first, base + last
        )

    def split(self) -> tuple[int, int]:
        """How many events span more than one chunk, and the stream index of the first one's first chunk.

        From the chunks' side: an event is split when a chunk boundary lies inside it (one that is not an
        event's end, nor between its last CR and LF), and most boundaries are at events' ends, so this is a
        set lookup per chunk and a ``bisect`` only per boundary inside an event."""
        chunk_ends, ends, start = self.chunk_ends, self.ends, self.start
        inner = chunk_ends[bisect_right(chunk_ends, start) : bisect_left(chunk_ends, ends[-1])]
        if not inner:
            return 0, -1
        done = set(ends)
        if self.crlf:
            done.update(map(sub, ends, repeat(1)))
        inside = list(filterfalse(done.__contains__, inner))
        if not inside:
            return 0, -1
        holders = list(map(bisect_right, repeat(ends), inside))  # the event each boundary is inside
        first = holders[0]
        return len(set(holders)), self.base + bisect_right(chunk_ends, ends[first - 1] if first else start)


def _valid_utf8(datas: list[bytes]) -> bool:
    """Whether every data is valid UTF-8 (a newline between them keeps a split character from joining)."""
    odd = list(compress(datas, map(not_, map(bytes.isascii, datas))))
    if odd:
        try:
            b"\n".join(odd).decode("utf-8")
        except UnicodeDecodeError:
            return False
    return True


def _uniform(
    window: bytes, pos: int, cut: int, crlf: bool, ascii: bool
) -> tuple[list[str], list[bytes], list[int]] | None:
    """The names, datas and end offsets of ``window[pos:cut]``'s events when every one has the same simple
    shape, ``data: D`` or ``event: E`` + ``data: D``, its lines ending in ``\\n`` (no CR in the stretch) or
    all in ``\\r\\n`` (``crlf``), and valid UTF-8 (sure when the window is ``ascii``); None otherwise.
    C-level loops only."""
    nl = b"\r\n" if crlf else b"\n"
    step = len(nl)
    if window.startswith(b"data: ", pos):
        # k events "data: D" + blank line hold 2k LFs (and 2k CRs), all in the k - 1 separators and the end
        datas = window[pos + 6 : cut - 2 * step].split(nl + nl + b"data: ")
        newlines = 2 * len(datas)
        if window.count(b"\n", pos, cut) != newlines or (crlf and window.count(b"\r", pos, cut) != newlines):
            return None
        if not (ascii or _valid_utf8(datas)):
            return None
        ends = list(accumulate(map(add, map(len, datas), repeat(6 + 2 * step)), initial=pos))
        del ends[0]
        return ["message"] * len(datas), datas, ends
    if not window.startswith(b"event: ", pos):
        return None
    lines = window[pos:cut].split(nl)  # [e1, d1, b"", e2, d2, b"", ..., b""]
    if (len(lines) - 1) % 3 or any(lines[2::3]):
        return None
    if crlf and not window.count(b"\n", pos, cut) == window.count(b"\r", pos, cut) == len(lines) - 1:
        return None  # a lone CR or LF inside a line
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
    # "event: " + nl + "data: " + 2 nl: 6 + 3 nl bytes more than the name line and the data
    sizes = map(add, map(len, name_lines), map(len, datas))
    ends = list(accumulate(map(add, sizes, repeat(6 + 3 * step)), initial=pos))
    del ends[0]
    return list(map(known.__getitem__, name_lines)), datas, ends


def _stepwise(window: bytes, pos: int, cut: int, crlf: bool) -> tuple[list[str], list[bytes], list[int]]:
    """``_uniform`` for a stretch of mixed shapes: event by event, up to the first unusual one."""
    names: list[str] = []
    datas: list[bytes] = []
    ends: list[int] = []
    find, startswith, count = window.find, window.startswith, window.count
    nl = b"\r\n" if crlf else b"\n"
    step = len(nl)
    blank = nl + nl
    start = pos
    while start < cut:
        end = find(blank, start, cut)
        if end < 0:
            break
        if crlf and not count(b"\n", start, end) == count(b"\r", start, end) == count(nl, start, end):
            break  # a lone CR or LF
        if startswith(b"data: ", start):
            if find(nl, start, end) >= 0:
                break
            name = "message"
            data = window[start + 6 : end]
        elif startswith(b"event: ", start):
            newline = find(nl, start, end)
            if newline < 0 or not startswith(b"data: ", newline + step) or find(nl, newline + step, end) >= 0:
                break
            try:
                name = window[start + 7 : newline].decode("utf-8") or "message"
            except UnicodeDecodeError:
                break
            data = window[newline + step + 6 : end]
        else:
            break
        if not data.isascii():
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                break
        names.append(name)
        datas.append(data)
        start = end + 2 * step
        ends.append(start)
    return names, datas, ends


def _usual(window: bytes, pos: int, cut: int, crlf: bool) -> int:
    """Where the run of usual events from ``pos`` ends (``pos`` when there is none)."""
    match = (_USUAL_CRLF if crlf else _USUAL).match(window, pos, cut)
    return match.end() if match else pos


def _lone_cr(window: bytes, pos: int) -> bool:
    """Whether ``window[pos:]`` has a CR that is no CRLF's (one at the end may be, with the next chunk)."""
    return window.count(b"\r", pos) > window.count(b"\r\n", pos) + window.endswith(b"\r")


def _find(window: bytes, sub: bytes, start: int) -> int:
    """``window.find``, with ``len(window)`` for not found."""
    at = window.find(sub, start)
    return at if at >= 0 else len(window)


class EventScanner:
    """Content-decoded ``(t_ns, data)`` chunks in, the events the full decoder would give out, in order:
    ``Batch`` es from the fast path to ``_batch``, ``sse.Event`` s from the full decoder to ``_events``.

    It holds the chunks of the current window (at most ``window`` bytes, or one event when that is longer)
    and nothing of what it has passed on. ``hazards`` are the stream's, as ``sse.decode`` counts them;
    ``handover`` is the body offset where the full decoder first read (None while only the fast path has),
    ``fast`` how many body bytes the fast path read.
    """

    __slots__ = (
        "_base",
        "_datas",
        "_decoder",
        "_located",
        "_offset",
        "_pending",
        "_read",
        "_slow",
        "_threshold",
        "_times",
        "fast",
        "handover",
        "hazards",
        "window",
    )

    def __init__(self, *, window: int = WINDOW) -> None:
        self.window = window
        self.hazards = Hazards()
        self.handover: int | None = None
        self.fast = 0
        self._datas: list[bytes] = []  # the chunks not yet read whole, the first from ``_offset`` on
        self._times: list[int] = []
        self._offset = 0
        self._pending = 0  # the bytes not yet read
        self._threshold = window  # scan when this many are pending (doubled while one event fills it)
        self._base = 0  # the stream index of ``_datas[0]``
        self._read = 0  # the body offset of the first byte not yet read
        decoder = self._decoder = SSEDecoder()  # its state between events: last id, retry, BOM, chunk index
        decoder.hazards = self.hazards
        self._slow = False  # whether the decoder reads the chunks as they come
        self._located = False  # whether the last window held an unusual event (the next looks for more)

    def _batch(self, batch: Batch) -> None:
        raise NotImplementedError

    def _events(self, events: list[Event]) -> None:
        raise NotImplementedError

    def feed(self, t_ns: int, data: bytes) -> None:
        """The next chunk of the body."""
        if not self._slow:
            self._datas.append(data)
            self._times.append(t_ns)
            self._pending += len(data)
            if self._pending >= self._threshold:
                self._scan()
            return
        events = self._decoder.feed(data, t_ns)
        self._read += len(data)
        if events:
            self._events(events)
        self._resume()

    def end(self) -> None:
        """The end of the body: the unfinished tail, if any, is the full decoder's to judge."""
        if not self._slow:
            self._scan()
            if not self._slow and self._pending:
                self._hand_over()
        self._decoder.finish()

    @property
    def held(self) -> int:
        """The body bytes held (those of the pending chunks): bounded by the window and the longest event."""
        return sum(map(len, self._datas))

    def _scan(self) -> None:
        """Read the pending chunks' complete events: runs of usual ones by the fast path, each unusual one by
        the full decoder up to the next blank line; carry the unfinished rest, or hand it over."""
        datas, offset = self._datas, self._offset
        window = b"".join([datas[0][offset:], *datas[1:]] if offset else datas)
        if not window:
            return
        size = len(window)
        chunk_ends = list(accumulate(map(len, datas), initial=-offset))  # in the window
        del chunk_ends[0]
        ascii = window.isascii()
        find, rfind = window.find, window.rfind
        cr = -1  # the first CR at or after ``pos`` (found again when behind)
        located = self._located  # find where the usual events end before cutting them out
        odd = False  # the window holds an unusual event, or a stretch ``_uniform`` refused
        plain = 0  # ``_uniform`` refused a stretch up to here: ``_stepwise`` it
        usual = unusual = 0  # the events read by the fast path and by the decoder in this window
        pos = 0
        with gc_paused():
            while True:
                if cr < pos:
                    cr = _find(window, b"\r", pos)
                crlf = cr < size and window.startswith(b"\r\n", cr) and find(b"\n", pos, cr) < 0
                # the end of the last complete event (with \n line ends: before any CR)
                blank = rfind(b"\r\n\r\n", pos) if crlf else rfind(b"\n\n", pos, cr)
                cut = blank + (4 if crlf else 2) if blank >= 0 else pos
                if cut > pos:
                    end = _usual(window, pos, cut, crlf) if located else cut
                    found = _uniform(window, pos, end, crlf, ascii) if pos >= plain and end > pos else None
                    if found is None and not located:
                        located = odd = True
                        end = _usual(window, pos, cut, crlf)
                        if end < cut:  # a shorter stretch than the one refused
                            found = _uniform(window, pos, end, crlf, ascii)
                    if found is None:
                        plain, odd = end, True
                        found = _stepwise(window, pos, end, crlf)
                    names, events, ends = found
                    if events:
                        batch = Batch(names, events, ends, chunk_ends, self._times, self._base, pos, crlf)
                        self._cut(batch, window, ascii)
                        pos = ends[-1]
                        usual += len(events)
                        continue
                # nothing usual at ``pos``: an unusual event, or the unfinished last one
                blank_line = _BLANK.search(window, pos)
                if blank_line is None and not _lone_cr(window, pos):
                    break  # the unfinished last event, carried
                odd = located = True
                unusual += 1
                if blank_line is None or (unusual >= DENSE and usual < RUN * unusual):
                    self._consume(pos, chunk_ends)
                    self._located = True
                    self._hand_over()
                    return
                self._decode(window, chunk_ends, pos, blank_line.end())
                pos = blank_line.end()
        self._located = odd
        self._consume(pos, chunk_ends)
        self._threshold = max(self.window, 2 * self._pending)

    def _cut(self, batch: Batch, window: bytes, ascii: bool) -> None:
        """Hand on a run of usual events, noting the hazards of the chunks whose ends it holds (no split
        character if the window is ``ascii``)."""
        hazards, start, end = self.hazards, batch.start, batch.ends[-1]
        count, first = batch.split()
        if count:
            hazards.split_events += count
            hazards.note("split_events", first)
        chunk_ends, datas = batch.chunk_ends, self._datas
        lo, hi = bisect_right(chunk_ends, start), bisect_right(chunk_ends, end)
        if not ascii:
            tails = cast("list[bytes]", list(map(getitem, datas[lo:hi], repeat(slice(-1, None)))))
            if not b"".join(tails).isascii():
                for index in compress(range(lo, hi), map(not_, map(bytes.isascii, tails))):
                    if incomplete_utf8_tail(datas[index]):
                        hazards.split_utf8 += 1
                        hazards.note("split_utf8", self._base + index)
        if batch.crlf and "lone_cr" not in hazards.first_seen:
            # a chunk that ends between a CR and its LF: the decoder counts the CR lone, then uncounts it
            inner = chunk_ends[lo : bisect_left(chunk_ends, end)]
            last = bytes(map(window.__getitem__, map(sub, inner, repeat(1)))).find(b"\r")
            if last >= 0:
                hazards.note("lone_cr", self._base + lo + last)
        decoder = self._decoder
        decoder._started = True  # past the body's start, and its BOM if any
        batch.last_id, batch.retry = decoder.last_id, decoder.retry
        self.fast += end - start
        self._batch(batch)

    def _decode(self, window: bytes, chunk_ends: list[int], start: int, end: int) -> None:
        """The full decoder reads ``window[start:end]`` (from one event's start to just after a blank line,
        where it is between events again), chunk by chunk as it would have."""
        decoder = self._decoder
        if self.handover is None:
            self.handover = self._read + start
        base, times, feed = self._base, self._times, decoder.feed
        index = bisect_right(chunk_ends, start)
        events: list[Event] = []
        while start < end:
            stop = min(chunk_ends[index], end)
            decoder.chunk_index = base + index - 1
            events += feed(window[start:stop], times[index])
            start = stop
            index += 1
        if events:
            self._events(events)

    def _consume(self, read: int, chunk_ends: list[int]) -> None:
        """Drop the chunks read whole by now; keep the offset into the next one."""
        if not read:
            return
        done = bisect_right(chunk_ends, read)
        del self._datas[:done], self._times[:done]
        self._base += done
        self._offset = read - chunk_ends[done - 1] if done else self._offset + read
        self._pending -= read
        self._read += read

    def _hand_over(self) -> None:
        """The full decoder reads the pending chunks, from the first unread byte, and those that come after,
        until it is between events at a chunk's end."""
        decoder = self._decoder
        if self.handover is None:
            self.handover = self._read
        decoder.chunk_index = self._base - 1
        datas, times = self._datas, self._times
        events: list[Event] = []
        if datas:
            events += decoder.feed(datas[0][self._offset :], times[0])
            for data, t_ns in zip(datas[1:], times[1:], strict=True):
                events += decoder.feed(data, t_ns)
        self._read += self._pending
        self._datas, self._times, self._pending, self._offset = [], [], 0, 0
        self._slow = True
        if events:
            self._events(events)
        self._resume()

    def _resume(self) -> None:
        """The fast path reads again from the next chunk if the decoder is between events: no line begun,
        no field since the last blank line, no CR that a LF could still pair with."""
        decoder = self._decoder
        if decoder._buf or decoder._after_cr or decoder._first_chunk >= 0:
            return
        self._slow = False
        self._base = decoder.chunk_index + 1
        self._threshold = self.window


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
