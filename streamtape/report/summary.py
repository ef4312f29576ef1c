"""What ``info`` shows: a tape's header (every segment's, when recordings were appended) and a line per
exchange, as text or as the ``--json`` document.

Separate from the CLI so the demo prints the very same view without importing the command line.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from ..analysis.outline import Outline, TapeOutline
from ..format.jsonform import record_to_json, to_json
from ..format.records import Header
from ..model import Exchange, Tape

#: Exchanges with the number ``info`` gives them: their index in ``Tape.exchanges``.
Numbered = Sequence[tuple[int, Exchange]]
#: The same for ``info``, which shows outlines too.
Listed = Sequence[tuple[int, Exchange | Outline]]
#: A tape in memory, or read in one pass (``analysis.outline``): ``info`` shows either the same way.
AnyTape = Tape | TapeOutline


def _numbered(tape: AnyTape) -> Listed:
    exchanges: Sequence[Exchange | Outline] = tape.exchanges
    return list(enumerate(exchanges))


def ms(ns: int | None) -> str:
    """Nanoseconds as milliseconds with one decimal, ``-`` when unknown."""
    return "-" if ns is None else f"{ns / 1e6:.1f}ms"


def exchange_summary(exchange: Exchange | Outline) -> dict[str, Any]:
    """The facts ``info`` shows for one exchange (also its ``--json`` form)."""
    if isinstance(exchange, Exchange):
        exchange = Outline.of(exchange)
    end = exchange.end
    return {
        "segment": exchange.segment,
        "id": exchange.id,
        "method": exchange.request.method,
        "url": exchange.request.url,
        "status": exchange.response.status_code if exchange.response else None,
        "outcome": end.outcome,
        "error_type": end.error_type,
        "message": end.message,
        "chunks": exchange.chunks,
        "bytes": exchange.bytes,
        "ttfb_ns": exchange.first_chunk_ns,
        "duration_ns": end.t_ns,
        "lost_chunks": sum(g.records for g in exchange.gaps),
        "damaged": bool(exchange.gaps),
        "lost_bytes": sum(g.bytes for g in exchange.gaps),
    }


def _started(header: Header) -> str:
    ns = header.started_unix_ns
    try:
        return datetime.fromtimestamp(ns / 1e9, UTC).isoformat(timespec="milliseconds")
    except (OverflowError, ValueError, OSError, TypeError):  # a hostile header's time, shown as it is
        return f"{ns!r} ns after the Unix epoch (not a date)"


def meta_text(header: Header) -> str:
    """The header's ``meta`` as one line of JSON, whatever MessagePack it holds (bytes as in ``cat``)."""
    return json.dumps(to_json(header.meta), sort_keys=True)


def format_text(header: Header) -> str:
    return f"{header.version[0]}.{header.version[1]}, written by {header.writer}, started {_started(header)}"


def redaction_text(header: Header) -> str:
    redaction = header.redaction
    if redaction is None:
        return "nothing (recorded with redact=False)"
    return f"{', '.join(redaction.headers)}; query {', '.join(redaction.query)} (key {redaction.key_id})"


def provenance_text(header: Header) -> str:
    """The faults applied to derive this tape (format 1.1 provenance), in order."""
    steps = []
    for applied in header.provenance or []:
        params = ", ".join(f"{k}={json.dumps(to_json(v))}" for k, v in applied.params.items())
        where = "every exchange" if applied.exchange is None else f"#{applied.exchange}"
        steps.append(f"{applied.fault}({params}) on {where}")
    return ", then ".join(steps)


def segment_exchanges(tape: AnyTape, segment: int) -> str:
    held = [n for n, e in _numbered(tape) if e.segment == segment]
    if not held:
        return "no exchanges"
    if len(held) == 1:
        return f"exchange #{held[0]}"
    return f"exchanges #{held[0]}-#{held[-1]}"  # numbered by segment first, so a segment's are consecutive


def _details(header: Header, indent: str) -> list[str]:
    """A header's meta (when any), redaction and provenance (when derived), as ``info`` shows them."""
    lines = [f"{indent}meta      {meta_text(header)}"] if header.meta else []
    lines.append(f"{indent}redacted  {redaction_text(header)}")
    if header.provenance:
        lines.append(f"{indent}derived   {provenance_text(header)}")
    return lines


def header_lines(tape: AnyTape) -> list[str]:
    """The tape's path and header; with several segments, each one's format, meta and redaction."""
    lines = [f"tape      {tape.path}"]
    if len(tape.segments) <= 1:
        lines.append(f"format    {format_text(tape.header)}")
        lines += _details(tape.header, "")
    else:
        lines.append(f"segments  {len(tape.segments)} (recordings appended to one tape)")
        for n, header in enumerate(tape.segments):
            lines.append(f"segment {n} format {format_text(header)}; {segment_exchanges(tape, n)}")
            lines += _details(header, "          ")
    if tape.incomplete:
        lines.append(f"INCOMPLETE {tape.problem}")
    return lines


def exchange_line(n: int, exchange: Exchange | Outline) -> str:
    """One exchange as ``info`` lists it: number, method, URL, status, outcome, chunks, bytes, ttfb, duration."""
    s = exchange_summary(exchange)
    outcome = s["outcome"] + (f" ({s['error_type']})" if s["error_type"] else "")
    if s["lost_chunks"]:
        outcome += f", DAMAGED: {s['lost_chunks']} chunks ({s['lost_bytes']} B) lost by the recorder"
    elif s["damaged"]:
        outcome += ", DAMAGED: an unknown part of it is missing from the file"
    status = s["status"] if s["status"] is not None else "---"
    return (
        f"  #{n:<3} {s['method']:<6} {s['url']}  {status}  {outcome}  {s['chunks']} chunks  {s['bytes']} B  "
        f"ttfb {ms(s['ttfb_ns'])}  {ms(s['duration_ns'])}"
    )


def info_lines(tape: AnyTape, exchanges: Listed | None = None) -> list[str]:
    """The human form of ``info``: the header, then a line per exchange (all, or the numbered ones given)."""
    chosen = _numbered(tape) if exchanges is None else exchanges
    shown = f"{len(tape.exchanges)}" if exchanges is None else f"{len(tape.exchanges)}, showing {len(chosen)}"
    return [*header_lines(tape), f"exchanges {shown}", *(exchange_line(n, e) for n, e in chosen)]


def info_document(tape: AnyTape, exchanges: Listed | None = None) -> dict[str, Any]:
    """The ``--json`` form of ``info``: the first header, every segment's, and a summary per exchange."""
    chosen = _numbered(tape) if exchanges is None else exchanges
    return {
        "path": tape.path,
        "header": record_to_json(tape.header),
        "segments": [record_to_json(h) for h in tape.segments or [tape.header]],
        "incomplete": tape.incomplete,
        "problem": tape.problem,
        "exchanges": [{"number": n, **exchange_summary(e)} for n, e in chosen],
    }
