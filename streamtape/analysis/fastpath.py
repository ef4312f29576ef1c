"""A fast path for the SSE bodies providers actually send, with results identical to ``sse.SSEDecoder``.

Why: decoding line by line in Python, then parsing every event's JSON into dicts, made ``diagnose`` slower
than the SDKs' bare decoders on a large stream. Provider bodies are nearly always the same simple shape:
``\\n`` line ends, and events that are ``data: ...`` or ``event: ...`` + ``data: ...`` separated by one
blank line. This module splits such a body on blank lines with ``bytes.find`` and locates each event in
the chunks with a ``bisect`` over chunk end offsets (so split events, split UTF-8 characters and event
times come out as the full decoder gives them). Where anything else starts (a CR, a BOM, a comment, an
``id:`` or ``retry:`` field, multi-line data, extra blank lines, invalid UTF-8, the unterminated tail), the
full decoder takes over from that event's first byte, in the state it would have there. Assemblers that
have a ``feed_raw(event, data, t_ns)`` decode the hot events' JSON into typed structs (only the fields they
need); when it returns False the event goes through their ordinary ``feed``.
"""

from __future__ import annotations

import gc
from bisect import bisect_right
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import accumulate, compress, repeat
from operator import add, getitem, le, not_
from typing import cast

from .providers import Assembly, detect, new_assembler
from .sse import Event, Hazards, SSEDecoder, incomplete_utf8_tail

#: One event found by the fast path: its name, its data (valid UTF-8), time, first and last chunk.
RawEvent = tuple[str, bytes, int, int, int]


@dataclass(slots=True)
class Scan:
    """A body's events: ``raw`` from the fast path, then ``rest`` from the full decoder, if it took over.

    ``handover`` is the body offset where the full decoder took over (None: the fast path read it all).
    """

    raw: list[RawEvent]
    rest: list[Event]
    hazards: Hazards
    handover: int | None


def to_event(raw: RawEvent) -> Event:
    """The ``sse.Event`` the full decoder gives for a raw event (no ``id:``/``retry:`` came before it)."""
    name, data, t_ns, first, last = raw
    return Event(name, data.decode("utf-8"), "", None, t_ns, first, last)


def _uniform_events(
    body: bytes, ends: list[int], times: list[int], hazards: Hazards
) -> tuple[list[RawEvent], int] | None:
    """All events up to the last blank line (and before any CR) when every one has the same simple shape,
    ``data: D`` or ``event: E`` + ``data: D``; None otherwise. Checked and cut with C-level loops only."""
    cr = body.find(b"\r")
    cut = (body.rfind(b"\n\n", 0, cr) if cr >= 0 else body.rfind(b"\n\n")) + 2
    if cut < 2:
        return None
    lines = body[:cut].split(b"\n")  # e.g. [d1, b"", d2, b"", b""]: line, blank line, ..., the end
    step = 3 if body.startswith(b"event: ") else 2
    count, extra = divmod(len(lines) - 1, step)
    if extra or any(lines[step - 1 :: step]) or lines[-1]:
        return None
    data_lines = lines[step - 2 : -1 : step]
    if not all(map(bytes.startswith, data_lines, repeat(b"data: "))):
        return None
    datas = cast("list[bytes]", list(map(getitem, data_lines, repeat(slice(6, None)))))
    try:
        list(map(bytes.decode, compress(datas, map(not_, map(bytes.isascii, datas)))))
        if step == 3:
            event_lines = lines[0:-1:3]
            if not all(map(bytes.startswith, event_lines, repeat(b"event: "))):
                return None
            raw_names = cast("list[bytes]", list(map(getitem, event_lines, repeat(slice(7, None)))))
            known = {raw: raw.decode("utf-8") or "message" for raw in set(raw_names)}
            names: list[str] | repeat[str] = list(map(known.__getitem__, raw_names))
        else:
            names = repeat("message")
    except UnicodeDecodeError:
        return None
    positions = list(accumulate(map(add, map(len, lines), repeat(1)), initial=0))
    firsts = list(map(bisect_right, repeat(ends), positions[0 : step * count : step]))
    blanks = positions[step - 1 : step * count : step]  # each blank line's LF, which dispatches
    # split: the event's first chunk ends at or before its blank line's LF (most events are not)
    split = list(map(le, map(ends.__getitem__, firsts), blanks))
    lasts = firsts
    if True in split:
        hazards.split_events = split.count(True)
        hazards.note("split_events", firsts[split.index(True)])
        lasts = firsts.copy()
        for k in compress(range(count), split):
            lasts[k] = bisect_right(ends, blanks[k], firsts[k])
    return list(zip(names, datas, map(times.__getitem__, lasts), firsts, lasts, strict=False)), cut


def _fast_events(
    body: bytes, ends: list[int], times: list[int], hazards: Hazards
) -> tuple[list[RawEvent], int]:
    """The events of the body's simple prefix, and the offset where that prefix ends (an event's start)."""
    raw: list[RawEvent] = []
    if body[:1] == b"\xef":  # a BOM, or a prefix of one: the full decoder's business
        return raw, 0
    uniform = _uniform_events(body, ends, times, hazards)
    if uniform is not None:
        return uniform
    cr = body.find(b"\r")
    limit = cr if cr >= 0 else len(body)
    find, startswith, append = body.find, body.startswith, raw.append
    start = chunk = split = 0
    first_split = -1
    while True:
        end = find(b"\n\n", start)
        if end < 0 or end > limit:
            break
        if startswith(b"data: ", start):
            if find(b"\n", start, end) >= 0:
                break
            name = "message"
            data = body[start + 6 : end]
        elif startswith(b"event: ", start):
            newline = find(b"\n", start, end)
            if newline < 0 or not startswith(b"data: ", newline + 1) or find(b"\n", newline + 1, end) >= 0:
                break
            try:
                name = body[start + 7 : newline].decode("utf-8") or "message"
            except UnicodeDecodeError:
                break
            data = body[newline + 7 : end]
        else:
            break
        if not data.isascii():
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                break
        chunk = bisect_right(ends, start, chunk)
        last = bisect_right(ends, end + 1, chunk)  # the blank line's LF dispatches the event
        if chunk != last:
            split += 1
            if first_split < 0:
                first_split = chunk
        append((name, data, times[last], chunk, last))
        start = end + 2
    if split:
        hazards.split_events = split
        hazards.note("split_events", first_split)
    return raw, start


def scan(chunks: list[tuple[int, bytes]]) -> Scan:
    """Decode a whole body of ``(t_ns, data)`` chunks: the same events and hazards as ``sse.decode``."""
    times = [t for t, _ in chunks]
    datas = [d for _, d in chunks]
    body = b"".join(datas)
    ends = list(accumulate(map(len, datas)))
    hazards = Hazards()
    raw, start = _fast_events(body, ends, times, hazards)
    # the chunk the full decoder starts in; the ones before it were read whole by the fast path
    resume = bisect_right(ends, start) if start < len(body) else len(chunks)
    last_bytes = cast("map[bytes]", map(getitem, datas[:resume], repeat(slice(-1, None))))
    for index in compress(range(resume), map(not_, map(bytes.isascii, last_bytes))):
        if incomplete_utf8_tail(datas[index]):
            hazards.split_utf8 += 1
            hazards.note("split_utf8", index)
    if start >= len(body):
        return Scan(raw, [], hazards, None)
    decoder = SSEDecoder()
    decoder.hazards = hazards
    decoder._started = start > 0  # at offset 0 the decoder still has to look for a BOM
    decoder.chunk_index = resume - 1
    offset = start - (ends[resume - 1] if resume else 0)
    rest = decoder.feed(datas[resume][offset:], times[resume])
    for t_ns, data in chunks[resume + 1 :]:
        rest += decoder.feed(data, t_ns)
    decoder.finish()
    return Scan(raw, rest, hazards, start)


def decode(chunks: list[tuple[int, bytes]]) -> tuple[list[Event], Hazards]:
    """``sse.decode`` through the fast path: every event as an ``sse.Event``."""
    found = scan(chunks)
    return [*map(to_event, found.raw), *found.rest], found.hazards


def head(found: Scan, n: int) -> list[Event]:
    """The first ``n`` events (what ``detect`` sniffs)."""
    return [*map(to_event, found.raw[:n]), *found.rest[: max(0, n - len(found.raw))]]


def assemble(provider: str, found: Scan) -> Assembly:
    """``assemble_events`` over a scan, hot events through the assembler's typed ``feed_raw``."""
    state = new_assembler(provider)
    feed = state.feed
    feed_raw = getattr(state, "feed_raw", None)
    for raw in found.raw:
        if feed_raw is None or not feed_raw(raw[0], raw[1], raw[2]):
            feed(to_event(raw))
    for event in found.rest:
        feed(event)
    return state.result()


class BodyScanner:
    """An event-stream body analysed as it arrives: content-decoded ``(t_ns, data)`` chunks in, the provider's
    ``Assembly`` and the stream's hazards out, the same as ``scan`` + ``detect`` + ``assemble`` over the
    whole body. The provider is detected from the request and the first events."""

    def __init__(self, url: str, request_body: bytes, content_type: str) -> None:
        self._url, self._request_body, self._content_type = url, request_body, content_type
        self._chunks: list[tuple[int, bytes]] = []

    def feed(self, t_ns: int, data: bytes) -> None:
        self._chunks.append((t_ns, data))

    def finish(self) -> tuple[Assembly, list[str]]:
        with gc_paused():
            found = scan(self._chunks)
            provider = detect(self._url, self._request_body, self._content_type, head(found, 5))
            assembly = assemble(provider, found)
        return assembly, found.hazards.as_list()


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
