"""What ``diagnose`` shows: one exchange's diagnosis as lines of text, the verdict first.

Separate from the CLI so the demo (and later reports) print the same diagnosis without the command line;
colour is plain ANSI so this view needs no terminal library.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from itertools import accumulate

from ..analysis.diagnose import Diagnostics, Verdict
from ..analysis.outline import Outline
from ..model import Exchange

_BARS = "▁▂▃▄▅▆▇█"
_VERDICT_COLOURS: dict[Verdict, int] = {"complete": 32, "truncated": 33, "error": 31}  # green, yellow, red
VERDICT_MEANS: dict[Verdict, str] = {
    "complete": "terminal marker seen, body done",
    "truncated": "the stream ended without the provider's terminal marker",
    "error": "a transport error or a provider error",
}


def gap_picture(gaps_ms: Sequence[float], times_ms: Sequence[float], width: int = 60) -> str:
    """The longest wait in each of ``width`` slices of the stream's timeline, as bars (log scale)."""
    if not gaps_ms:
        return ""
    span = times_ms[-1] or 1.0
    columns = [0.0] * width
    for gap, t in zip(gaps_ms, times_ms, strict=True):
        col = min(width - 1, int(t / span * width))
        columns[col] = max(columns[col], gap)
    top = max(columns) or 1.0

    def bar(v: float) -> str:
        if v <= 0:
            return " "
        level = math.log1p(v) / math.log1p(top)
        return _BARS[min(len(_BARS) - 1, int(level * (len(_BARS) - 1) + 0.5))]

    return "".join(bar(v) for v in columns)


def preview(text: str, head: int = 240, tail: int = 80) -> str:
    """``text`` whole when short, else its head and tail around a count of what was left out."""
    if len(text) <= head + tail + 5:
        return text
    return f"{text[:head]} [... {len(text) - head - tail} characters ...] {text[-tail:]}"


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f} ms"


def diagnosis_lines(n: int, exchange: Exchange | Outline, d: Diagnostics, colour: bool) -> list[str]:
    """Exchange number ``n``'s diagnosis: verdict, provider, timing, chunks, gaps, hazards, text, tool calls."""
    verdict = d.verdict.upper()
    if colour:
        verdict = f"\x1b[{_VERDICT_COLOURS[d.verdict]}m\x1b[1m{verdict}\x1b[0m"
    tail = ""
    if d.last_chunk_ms is not None and d.duration_ms - d.last_chunk_ms >= 1:
        tail = f" ({d.duration_ms - d.last_chunk_ms:.1f} ms after the last chunk)"
    model = f", model {d.model}" if d.model else ""
    status = d.status if d.status is not None else "---"
    lines = [
        f"#{n} {exchange.request.method} {exchange.request.url}",
        f"  verdict   {verdict}  ({VERDICT_MEANS[d.verdict]})",
        f"  provider  {d.provider}{model}; status {status}; outcome {d.outcome}",
        f"  timing    first byte {_ms(d.first_chunk_ms)}, first token {_ms(d.first_token_ms)}, "
        f"last chunk {_ms(d.last_chunk_ms)}, end {_ms(d.duration_ms)}{tail}",
        f"  chunks    {d.chunks_received} chunks, {d.events} events, {d.total_content_length} characters of text",
    ]
    if d.chunk_gaps_ms:
        lines.append(
            f"  gaps      p50 {_ms(d.gap_p50_ms)}, p95 {_ms(d.gap_p95_ms)}, max {_ms(d.gap_max_ms)} "
            f"before chunk {d.gap_max_at_chunk} (at {_ms(d.gap_max_at_ms)})"
        )
        times = list(accumulate(d.chunk_gaps_ms))  # each chunk's time, to the microsecond
        lines.append(f"            |{gap_picture(d.chunk_gaps_ms, times)}|  longest wait per slice of time")
    usage = f"; usage {json.dumps(d.usage)}" if d.usage else ""
    lines.append(f"  finish    {d.finish_reason or '(none)'}{usage}")
    lines.extend(f"  hazard    {hazard}" for hazard in d.hazards)
    lines.extend(f"  error     {error}" for error in d.errors)
    lines.extend(f"  note      {note}" for note in d.notes)
    if d.text:
        lines.append(f"  text      {preview(d.text)!r}")
    if d.refusal:
        lines.append(f"  refusal   {preview(d.refusal)!r}")
    for i, call in enumerate(d.tool_calls):
        valid = "valid JSON" if call["valid_json"] else "INVALID JSON"
        lines.append(
            f"  tool      #{i} {call['name']} {preview(call['arguments'], 160, 40)} ({valid}, id {call['id']})"
        )
    return lines
