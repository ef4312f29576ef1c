"""What happened in a recorded exchange: the seed article's ``StreamDiagnostics``, computed from a tape.

Pure: an ``Exchange`` in, a ``Diagnostics`` out. Field names follow the article's hand-written diagnostics
(``chunks_received``, ``total_content_length``, ``first_chunk_ms``, ``last_chunk_ms``, ``finish_reason``,
``errors``, ``chunk_gaps_ms``) so code written against it reads the same; the rest is what it could not see.
All times are milliseconds from the moment the request reached the transport.
"""

from __future__ import annotations

import zlib
from array import array
from bisect import bisect_right
from collections import Counter
from dataclasses import asdict, dataclass, field
from itertools import accumulate, chain, compress, count, repeat
from operator import add, eq, floordiv, gt, mod, or_, sub, truediv
from typing import Any, Literal

from ..format.records import End, Gap, Request, Response
from ..model import Exchange
from . import fastpath
from .providers import Assembly, assemble_json, detect

Verdict = Literal["complete", "truncated", "error"]


@dataclass
class Diagnostics:
    """The diagnosis of one exchange. ``verdict`` first: complete, truncated or error."""

    verdict: Verdict
    provider: str
    outcome: str
    status: int | None
    chunks_received: int  # network reads, as recorded (not SSE events: see ``events``)
    events: int
    total_content_length: int  # characters of assembled text
    first_chunk_ms: float | None
    first_token_ms: float | None
    last_chunk_ms: float | None
    duration_ms: float
    finish_reason: str | None
    errors: list[str]
    #: One per chunk: the wait before it (the first: since the request); an array, 8 bytes a chunk.
    chunk_gaps_ms: array[float]
    gap_p50_ms: float | None
    gap_p95_ms: float | None
    gap_max_ms: float | None
    gap_max_at_chunk: int | None
    gap_max_at_ms: float | None
    text: str
    refusal: str
    tool_calls: list[dict[str, Any]]
    usage: dict[str, Any] | None
    terminal: bool
    hazards: list[str]
    streamed: bool
    model: str | None = None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The fields as plain JSON-ready values (the gaps as a list)."""
        return {**asdict(self), "chunk_gaps_ms": self.chunk_gaps_ms.tolist()}


def _ms(ns: int) -> float:
    return round(ns / 1e6, 3)


class _Ranks:
    """Values by rank without a sorted list of them all: each distinct value once, with how many times it
    occurs. A long stream's gaps repeat (to the microsecond), so this holds far fewer objects than chunks."""

    def __init__(self, values: array[float]) -> None:
        counts = Counter(values)
        self.values = sorted(counts)
        self.ends = list(accumulate(map(counts.__getitem__, self.values)))  # ranks up to each value
        self.n = len(values)

    def quantile(self, q: float) -> float:
        """The value at rank ``int(q * n)`` (the last for q = 1), as indexing the sorted values gives it."""
        return self.values[bisect_right(self.ends, min(self.n - 1, int(q * self.n)))]


def _gaps_ms(times: array[int]) -> array[float]:
    """Each chunk's wait in ms (``_ms``: since the chunk before, the first since the request), by C-level
    integer steps: ``round(ns / 1e6, 3)`` per chunk was a tenth of a diagnosis. Integer rounding of the
    nanoseconds to microseconds is ``round``'s own except at an exact half (``500`` ns), for waits beyond a
    float's exact integers, and for negative ones (a hostile tape's; ``round`` keeps -0.0): those go
    through ``_ms``."""
    waits = array("q", map(sub, times, chain((0,), times)))
    gaps = array("d", map(truediv, map(floordiv, map(add, waits, repeat(500)), repeat(1000)), repeat(1000)))
    ties = map(eq, map(mod, waits, repeat(1000)), repeat(500))
    half = _EXACT_NS // 2
    outside = map(gt, map(abs, map(sub, waits, repeat(half))), repeat(half))  # not in [0, _EXACT_NS]
    for i in compress(count(), map(or_, ties, outside)):
        gaps[i] = _ms(waits[i])
    return gaps


#: Past this many nanoseconds a wait's integer rounding could differ from ``round(ns / 1e6, 3)``.
_EXACT_NS = 1 << 50


def _header(headers: list[tuple[str, str]], name: str) -> str:
    return next((v for n, v in headers if n.lower() == name), "").lower()


class _Inflater:
    """Content-decoding of a gzip/deflate body chunk by chunk; after the first error, nothing more."""

    def __init__(self, encoding: str, notes: list[str]) -> None:
        self._encoding, self._notes, self.chunks = encoding, notes, 0
        wbits = 16 + zlib.MAX_WBITS if "gzip" in encoding else zlib.MAX_WBITS
        self._inflater: Any = zlib.decompressobj(wbits)

    def __call__(self, data: bytes) -> bytes | None:
        if self._inflater is None:
            return None
        try:
            out: bytes = self._inflater.decompress(data)
        except zlib.error as exc:
            self._notes.append(f"the {self._encoding} body does not decode past chunk {self.chunks}: {exc}")
            self._inflater = None
            return None
        self.chunks += 1
        return out


def _inflater(response: Response | None, notes: list[str]) -> _Inflater | None:
    if response is None:
        return None
    encoding = _header(response.headers, "content-encoding")
    return _Inflater(encoding, notes) if encoding in ("gzip", "deflate", "x-gzip") else None


def decoded_chunks(exchange: Exchange, notes: list[str]) -> list[tuple[int, bytes]]:
    """The body's chunks, content-decoded when the response was gzip/deflate (times kept per chunk)."""
    inflate = _inflater(exchange.response, notes)
    pairs = zip(exchange.chunks.times, exchange.chunks.datas(), strict=True)
    if inflate is None:
        return list(pairs)
    out = []
    for t_ns, data in pairs:
        decoded = inflate(data)
        if decoded is None:
            break
        out.append((t_ns, decoded))
    return out


#: What a diagnosis keeps of a body that is not an event stream, to read it as JSON (an event stream is
#: read as it arrives and never kept).
MAX_JSON_BODY = 64 << 20
#: What an error status's message quotes of the body.
_ERROR_QUOTE = 300


class Diagnoser:
    """One exchange diagnosed as its records arrive, so a tape of any size is read in one pass.

    What it keeps grows with the assembled text and 8 bytes a chunk (the chunk times), never with the
    body: an event stream's events are assembled as they complete (``fastpath.BodyScanner``). Feed it the
    exchange's response head, chunks and gaps in file order, then ``finish`` with its end.
    """

    def __init__(self, request: Request) -> None:
        self.request = request
        self.response: Response | None = None
        self.notes: list[str] = []
        self.gaps: list[Gap] = []
        self.times = array("q")
        self.bytes = 0
        self._inflate: _Inflater | None = None
        self._content_type = ""
        self._scanner: fastpath.BodyScanner | None = None
        self._streamed: bool | None = None  # decided at the first chunk
        self._kept: list[bytes] = []  # a non-stream body (up to MAX_JSON_BODY), or an error body's start
        self._kept_bytes = 0
        self._keep = 0  # how much of the body to keep, decided with ``_streamed``

    def head(self, response: Response) -> None:
        self.response = response
        self._content_type = _header(response.headers, "content-type")
        self._inflate = _inflater(response, self.notes)

    def gap(self, gap: Gap) -> None:
        self.gaps.append(gap)

    def chunk(self, t_ns: int, data: bytes) -> None:
        self.times.append(t_ns)
        self.bytes += len(data)
        if self._inflate is not None:
            decoded = self._inflate(data)
            if decoded is None:
                return
            data = decoded
        if self._streamed is None:
            self._decide(data)
        if self._scanner is not None:
            self._scanner.feed(t_ns, data)
        if self._kept_bytes < self._keep:
            self._kept.append(data[: self._keep - self._kept_bytes])
            self._kept_bytes += len(self._kept[-1])

    def _decide(self, first: bytes | None) -> None:
        """Whether the body is an event stream: by its content type, or without one by its first bytes."""
        content_type = self._content_type
        self._streamed = "text/event-stream" in content_type or (
            not content_type and first is not None and first.lstrip()[:5] in (b"data:", b"event")
        )
        if self._streamed:
            self._scanner = fastpath.BodyScanner(self.request.url, self.request.body, content_type)
        status = self.response.status_code if self.response is not None else 0
        self._keep = MAX_JSON_BODY if not self._streamed else _ERROR_QUOTE if status >= 400 else 0

    def _assemble(self) -> tuple[Assembly, list[str], bool]:
        if self._streamed is None:
            self._decide(None)
        if self._scanner is not None:
            assembly, hazards = self._scanner.finish()
            return assembly, hazards, True
        if self._kept_bytes >= MAX_JSON_BODY:
            self.notes.append(
                f"the body is not an event stream and is over {MAX_JSON_BODY >> 20} MiB: not read as JSON"
            )
        provider = detect(self.request.url, self.request.body, self._content_type, [])
        return assemble_json(provider, b"".join(self._kept)), [], False

    def finish(self, end: End) -> Diagnostics:
        """The diagnosis, once the exchange's end (recorded, or ``Exchange.end``'s "incomplete") is known."""
        notes = self.notes
        assembly, hazards, streamed = self._assemble()
        times = self.times
        gaps = _gaps_ms(times)
        errors = list(assembly.errors)
        status = self.response.status_code if self.response else None
        if status is not None and status >= 400:
            body = b"".join(self._kept)[:_ERROR_QUOTE].decode("utf-8", "replace")
            errors.insert(0, f"HTTP {status}: {body}" if body else f"HTTP {status}")
        if end.outcome == "error":
            errors.append(f"{end.error_type}: {end.message}")
        for gap in self.gaps:
            what = (
                f"{gap.records} chunk(s), {gap.bytes} bytes,"
                if gap.records
                else "an unknown number of chunks"
            )
            errors.append(
                f"the tape lost {what} before {_ms(gap.t_ns)} ms ({gap.reason}): it does not hold the whole stream"
            )
        if end.outcome == "error" or errors:
            verdict: Verdict = "error"
        elif assembly.terminal and end.outcome in ("complete", "client_closed"):
            verdict = "complete"
        else:
            verdict = "truncated"
            if end.outcome == "incomplete":
                notes.append(
                    "the tape holds no end for this exchange: the recording stopped while it was open"
                )
        ranks = _Ranks(gaps)
        gap_max = ranks.values[-1] if gaps else None
        at = gaps.index(gap_max) if gaps and gap_max is not None else None
        return Diagnostics(
            verdict=verdict,
            provider=assembly.provider,
            outcome=end.outcome,
            status=status,
            chunks_received=len(times),
            events=assembly.events,
            total_content_length=len(assembly.text),
            first_chunk_ms=_ms(times[0]) if times else None,
            first_token_ms=_ms(assembly.first_token_t_ns) if assembly.first_token_t_ns is not None else None,
            last_chunk_ms=_ms(times[-1]) if times else None,
            duration_ms=_ms(end.t_ns),
            finish_reason=assembly.finish_reason,
            errors=errors,
            chunk_gaps_ms=gaps,
            gap_p50_ms=ranks.quantile(0.5) if gaps else None,
            gap_p95_ms=ranks.quantile(0.95) if gaps else None,
            gap_max_ms=gap_max,
            gap_max_at_chunk=at,
            gap_max_at_ms=_ms(times[at]) if at is not None else None,
            text=assembly.text,
            refusal=assembly.refusal,
            tool_calls=[call.as_dict() for call in assembly.tool_calls],
            usage=assembly.usage,
            terminal=assembly.terminal,
            hazards=hazards,
            streamed=streamed,
            model=assembly.model,
            notes=notes,
        )


def diagnose(exchange: Exchange) -> Diagnostics:
    """Diagnose one exchange of a tape.

    >>> d = streamtape.diagnose(streamtape.open_tape("bug.tape").exchanges[0])
    >>> d.verdict, d.finish_reason, d.gap_max_ms
    ('truncated', None, 61000.2)
    """
    diagnoser = Diagnoser(exchange.request)
    if exchange.response is not None:
        diagnoser.head(exchange.response)
    for gap in exchange.gaps:
        diagnoser.gap(gap)
    chunk = diagnoser.chunk
    for t_ns, data in zip(exchange.chunks.times, exchange.chunks.datas(), strict=True):
        chunk(t_ns, data)
    return diagnoser.finish(exchange.end)


__all__ = ["Diagnoser", "Diagnostics", "decoded_chunks", "diagnose"]
