"""What happened in a recorded exchange: the seed article's ``StreamDiagnostics``, computed from a tape.

Pure: an ``Exchange`` in, a ``Diagnostics`` out. Field names follow the article's hand-written diagnostics
(``chunks_received``, ``total_content_length``, ``first_chunk_ms``, ``last_chunk_ms``, ``finish_reason``,
``errors``, ``chunk_gaps_ms``) so code written against it reads the same; the rest is what it could not see.
All times are milliseconds from the moment the request reached the transport.
"""

from __future__ import annotations

import zlib
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

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
    chunk_gaps_ms: list[float]  # one per chunk: the wait before it (the first: since the request)
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
        return asdict(self)


def _ms(ns: int) -> float:
    return round(ns / 1e6, 3)


def _percentile(ordered: list[float], q: float) -> float:
    """The ``q`` quantile of already sorted values (sorted once for both percentiles)."""
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _content_type(exchange: Exchange) -> str:
    if exchange.response is None:
        return ""
    return next((v for n, v in exchange.response.headers if n.lower() == "content-type"), "").lower()


def decoded_chunks(exchange: Exchange, notes: list[str]) -> list[tuple[int, bytes]]:
    """The body's chunks, content-decoded when the response was gzip/deflate (times kept per chunk)."""
    pairs = [(c.t_ns, c.data) for c in exchange.chunks]
    if exchange.response is None:
        return pairs
    encoding = next((v for n, v in exchange.response.headers if n.lower() == "content-encoding"), "").lower()
    if encoding not in ("gzip", "deflate", "x-gzip"):
        return pairs
    wbits = 16 + zlib.MAX_WBITS if "gzip" in encoding else zlib.MAX_WBITS
    inflater = zlib.decompressobj(wbits)
    out = []
    try:
        for t_ns, data in pairs:
            out.append((t_ns, inflater.decompress(data)))
    except zlib.error as exc:
        notes.append(f"the {encoding} body does not decode past chunk {len(out)}: {exc}")
    return out


def _assemble(
    exchange: Exchange, chunks: list[tuple[int, bytes]], notes: list[str]
) -> tuple[Assembly, list[str], bool]:
    request = exchange.request
    content_type = _content_type(exchange)
    if "text/event-stream" in content_type or (
        not content_type and chunks and chunks[0][1].lstrip()[:5] in (b"data:", b"event")
    ):
        with fastpath.gc_paused():
            found = fastpath.scan(chunks)
            provider = detect(request.url, request.body, content_type, fastpath.head(found, 5))
            assembly = fastpath.assemble(provider, found)
        return assembly, found.hazards.as_list(), True
    body = b"".join(d for _, d in chunks)
    provider = detect(request.url, request.body, content_type, [])
    assembly = assemble_json(provider, body)
    return assembly, [], False


def diagnose(exchange: Exchange) -> Diagnostics:
    """Diagnose one exchange of a tape.

    >>> d = streamtape.diagnose(streamtape.open_tape("bug.tape").exchanges[0])
    >>> d.verdict, d.finish_reason, d.gap_max_ms
    ('truncated', None, 61000.2)
    """
    notes: list[str] = []
    end = exchange.end
    chunks = decoded_chunks(exchange, notes)
    assembly, hazards, streamed = _assemble(exchange, chunks, notes)
    times = [c.t_ns for c in exchange.chunks]
    gaps = [round((t - p) / 1e6, 3) for p, t in zip([0, *times], times, strict=False)]  # _ms, inlined
    errors = list(assembly.errors)
    status = exchange.response.status_code if exchange.response else None
    if status is not None and status >= 400:
        body = b"".join(d for _, d in chunks)[:300].decode("utf-8", "replace")
        errors.insert(0, f"HTTP {status}: {body}" if body else f"HTTP {status}")
    if end.outcome == "error":
        errors.append(f"{end.error_type}: {end.message}")
    for gap in exchange.gaps:
        what = f"{gap.records} chunk(s), {gap.bytes} bytes," if gap.records else "an unknown number of chunks"
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
            notes.append("the tape holds no end for this exchange: the recording stopped while it was open")
    ordered = sorted(gaps)
    gap_max = ordered[-1] if gaps else None
    at = gaps.index(gap_max) if gaps and gap_max is not None else None
    return Diagnostics(
        verdict=verdict,
        provider=assembly.provider,
        outcome=end.outcome,
        status=status,
        chunks_received=len(exchange.chunks),
        events=assembly.events,
        total_content_length=len(assembly.text),
        first_chunk_ms=_ms(times[0]) if times else None,
        first_token_ms=_ms(assembly.first_token_t_ns) if assembly.first_token_t_ns is not None else None,
        last_chunk_ms=_ms(times[-1]) if times else None,
        duration_ms=_ms(end.t_ns),
        finish_reason=assembly.finish_reason,
        errors=errors,
        chunk_gaps_ms=gaps,
        gap_p50_ms=_percentile(ordered, 0.5) if gaps else None,
        gap_p95_ms=_percentile(ordered, 0.95) if gaps else None,
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


__all__ = ["Diagnostics", "diagnose"]
