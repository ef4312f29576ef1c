"""``streamtape report``'s page: a whole tape as one self-contained HTML file, to open in a browser.

Pure: a ``Tape`` in, a ``str`` out (no files, no clock: the same tape gives the same page). The facts come
from ``streamtape.diagnose``, the SSE decoder and the ``info`` view, so the page says what the text verbs say.

Everything from the tape is untrusted (header values, bodies and meta can hold markup): it only ever
reaches the page through ``_t``/``_exact``/``_wire_text``, which escape it, and never reaches the style or
the script. The page's Content-Security-Policy admits its own style and script by hash and nothing else,
so the page loads nothing from anywhere, and a mistake in escaping would still run nothing.

Stable DOM hooks, for tests and scripts: one ``section.exchange[data-exchange=N]`` per exchange, N as
``info`` numbers them; in it ``.verdict`` (text: complete, truncated or error), ``.finish``, ``.text``
(text: the assembled text, exactly ``Diagnostics.text``; a ``span[data-c=K]`` per chunk K that added to it),
``svg.timeline`` with one ``.chunk-mark`` per chunk (and ``.ttfb``, ``.first-token``, ``.longest-gap``,
``.end[data-outcome]``, ``.gap-record``), one ``.hazard``/``.error``/``.note`` per item,
``.tool-call[data-valid-json]`` with ``.tool-name`` and ``.tool-args``, and ``.wire`` with a ``.chunk`` row
per chunk shown (rows stop once ``WIRE_BUDGET`` bytes are shown: the timeline always has every chunk).
"""

from __future__ import annotations

import bisect
import contextlib
import html
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from .._version import __version__
from ..analysis.diagnose import Diagnostics, decoded_chunks, diagnose
from ..analysis.providers import new_assembler
from ..analysis.sse import Event, SSEDecoder
from ..format.records import Header, Headers
from ..model import Exchange, Tape
from .diagnosis import VERDICT_MEANS
from .html_assets import CSP, CSS, JS
from .summary import (
    Numbered,
    exchange_summary,
    format_text,
    meta_text,
    provenance_text,
    redaction_text,
    segment_exchanges,
)

#: Characters of markup the chunk rows may take, over all exchanges; past it, rows give way to a note.
WIRE_BUDGET = 200_000
#: Bytes of each request body shown.
BODY_LIMIT = 64 * 1024
#: Chunks past which the text is not attributed to chunks (each attribution re-assembles the text so far).
ATTRIBUTE_LIMIT = 4000

# Control characters shown as escapes (tab and line ends are kept), so a header cannot hide or fake text.
_CONTROLS = {c: f"\\x{c:02x}" for c in [*range(0x20), *range(0x7F, 0xA0)] if c not in (9, 10, 13)}
_LINE_END = re.compile(rb"\r\n|\r|\n")
_INVALID = re.compile("[\udc80-\udcff]+")


def _t(value: object, cr: str = "\u240d") -> str:
    """Any value from the tape as escaped, visible text (controls as ``\\xNN``, CR as ``␍``)."""
    text = str(value).translate(_CONTROLS).replace("\r", cr)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates (JSON "\\ud800"): shown, not fatal to the page
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return html.escape(text)


def _exact(text: str) -> str:
    """Text the page must give back exactly (``.text``): escaped, CR kept as a character reference."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return html.escape(text, quote=False).replace("\r", "&#13;")


def _hex(data: bytes) -> str:
    return data.hex(" ").upper()


def _wire_text(data: bytes) -> str:
    """Bytes as text: line ends marked (``↵``, ``␍`` by the style), invalid UTF-8 as marked hex bytes."""
    out = []
    text = data.decode("utf-8", "surrogateescape")
    pos = 0
    for bad in _INVALID.finditer(text):
        out.append(_t(text[pos : bad.start()], cr="\r"))
        raw = bad.group().encode("utf-8", "surrogateescape")
        out.append(f'<b class="bad" title="not valid UTF-8">{_hex(raw)}</b>')
        pos = bad.end()
    out.append(_t(text[pos:], cr="\r"))
    return "".join(out).replace("\r", '<i class="r"></i>').replace("\n", "<i></i>\n")


def _dur(ms: float | None) -> str:
    if ms is None:
        return "-"
    return f"{ms:.1f} ms" if abs(ms) < 1000 else f"{ms / 1000:.2f} s"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


# -- what the decoder says about each chunk --------------------------------------------------------------------


@dataclass
class _Stream:
    """Per chunk: where events end inside it, the event it leaves open, the events it completes."""

    ends: dict[int, list[tuple[int, int]]] = field(default_factory=dict)  # chunk -> [(offset, event number)]
    open_after: dict[int, tuple[int, int, int]] = field(default_factory=dict)  # chunk -> (event, first, last)
    events_at: dict[int, list[Event]] = field(default_factory=dict)
    unterminated: bool = False


def _stream(chunks: list[tuple[int, bytes]]) -> _Stream:
    """Feed the SSE decoder line by line, so each event's end is known to the byte within its chunk."""
    decoder, owner, out, number = SSEDecoder(), [], _Stream(), 0
    for c, (t_ns, data) in enumerate(chunks):
        cuts = [m.end() for m in _LINE_END.finditer(data)]
        if not cuts or cuts[-1] != len(data):
            cuts.append(len(data))  # the chunk's last, unfinished line
        start = 0
        for end in cuts:
            if end == start:  # an empty chunk
                continue
            owner.append(c)
            for event in decoder.feed(data[start:end], t_ns):
                first = owner[event.first_chunk]
                out.ends.setdefault(c, []).append((end, number))
                out.events_at.setdefault(c, []).append(replace(event, first_chunk=first, last_chunk=c))
                for k in range(first, c):
                    out.open_after[k] = (number, first, c)
                number += 1
            start = end
    decoder.finish()
    out.unterminated = decoder.hazards.unterminated
    return out


def _split_chars(datas: list[bytes]) -> tuple[list[int], list[int], dict[tuple[int, str], str]]:
    """Per chunk, how many bytes at its head end a UTF-8 character begun earlier, and how many at its tail
    begin one finished later; with a title for each mark, keyed by (chunk, "lead"/"tail")."""
    body = b"".join(datas)
    starts = [0]
    for data in datas:
        starts.append(starts[-1] + len(data))
    chars: list[tuple[int, int, str]] = []  # characters a chunk boundary falls inside
    for p in starts[1:-1]:
        if p >= len(body) or not 0x80 <= body[p] <= 0xBF or (chars and chars[-1][0] < p < chars[-1][1]):
            continue  # not inside a character, or inside one already found
        q = p - 1
        while q > max(p - 4, 0) and 0x80 <= body[q] <= 0xBF:
            q -= 1
        need = next((n for n, top in ((2, 0xDF), (3, 0xEF), (4, 0xF4)) if 0xC2 <= body[q] <= top), 0)
        if q + need <= p:
            continue
        try:
            chars.append((q, q + need, body[q : q + need].decode("utf-8")))
        except UnicodeDecodeError:
            continue
    lead, tail, titles = [0] * len(datas), [0] * len(datas), {}
    for q, end, char in chars:
        first = bisect.bisect_right(starts, q) - 1
        name = f"{char!r} (U+{ord(char):04X})"
        for c in range(first, len(datas)):
            s, e = starts[c], starts[c + 1]
            if s >= end:
                break
            a, z = max(s, q) - q + 1, min(e, end) - q
            title = f"bytes {a}-{z} of the {end - q} of {name}: a UTF-8 character split across chunks"
            if s > q:
                lead[c] = min(e, end) - s
                titles[(c, "lead")] = title
            else:
                tail[c] = e - q
                titles[(c, "tail")] = title
    return lead, tail, titles


# -- the timeline ------------------------------------------------------------------------------------------------


class _Axis:
    """Time to x, linear except that a wait taking over a third of the picture (and four times the median
    wait) is drawn short and labelled, so one long stall does not squeeze every chunk into a line."""

    def __init__(self, times_ms: Iterable[float], left: float, width: float, *, breaks: bool) -> None:
        self.pts = sorted({0.0, *times_ms})
        spans = [b - a for a, b in zip(self.pts, self.pts[1:], strict=False)]
        self.broken: set[int] = set()
        unbroken = sum(spans)
        median = sorted(spans)[len(spans) // 2] if breaks and spans else math.inf
        for i in sorted(range(len(spans)), key=lambda i: -spans[i]):
            shown = unbroken + 0.2 * unbroken * len(self.broken)
            if spans[i] <= max(0.35 * shown, 4 * median) or unbroken - spans[i] <= 0:
                break
            self.broken.add(i)
            unbroken -= spans[i]
        short = 0.2 * unbroken
        scale = width / ((unbroken + short * len(self.broken)) or 1.0)
        self.px_per_ms = scale
        self.xs = [left]
        for i, d in enumerate(spans):
            self.xs.append(self.xs[-1] + (short if i in self.broken else d) * scale)
        self.spans = spans

    def x(self, t: float) -> float:
        i = min(max(bisect.bisect_right(self.pts, t) - 1, 0), len(self.pts) - 1)
        if i == len(self.pts) - 1:
            return self.xs[i]
        a, b = self.pts[i], self.pts[i + 1]
        return self.xs[i] + (t - a) / (b - a) * (self.xs[i + 1] - self.xs[i])

    def ticks(self) -> list[tuple[float, str]]:
        """Round times, in the stretches drawn to scale, at least 70 px apart."""
        if not self.px_per_ms or self.pts[-1] <= 0:
            return []
        raw = 70 / self.px_per_ms
        e = 10 ** math.floor(math.log10(raw))
        step = next(m * e for m in (1, 2, 5, 10) if m * e >= raw)
        out: list[tuple[float, str]] = []
        for i, (a, d) in enumerate(zip(self.pts, self.spans, strict=False)):
            if i in self.broken:
                continue
            for k in range(math.ceil(a / step), math.floor((a + d) / step) + 1):
                x = self.x(k * step)
                if not out or x - out[-1][0] >= 30:
                    out.append((x, _tick(k * step, step)))
        return out


def _tick(ms: float, step: float) -> str:
    """A tick's label: milliseconds, or seconds with as many decimals as the step needs."""
    if ms < 1000:
        return f"{round(ms, 6):g} ms"
    return f"{ms / 1000:.{max(0, -math.floor(math.log10(step / 1000)))}f} s"


_ENDS = {
    "complete": "complete",
    "client_closed": "client closed",
    "incomplete": "incomplete: no end recorded",
}


def _line(cls: str, x: float, top: float, title: str, extra: str = "") -> str:
    return f'<line class="{cls}" x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="92"{extra}><title>{_t(title)}</title></line>'


def _label(x: float, y: float, text: str) -> str:
    anchor = "start" if x < 700 else "end"
    return f'<text x="{x + 3 if x < 700 else x - 3:.1f}" y="{y}" text-anchor="{anchor}">{_t(text)}</text>'


def _timeline(e: Exchange, d: Diagnostics) -> str:
    """An SVG: a mark per chunk at its time (height by bytes), the first byte and token, the longest wait,
    the end and the recorder's gaps; waits drawn short are shaded and labelled with their length."""
    ms = [c.t_ns / 1e6 for c in e.chunks]
    end = e.end
    head = e.response.t_ns / 1e6 if e.response is not None else None
    axis = _Axis(
        [*ms, end.t_ns / 1e6, *(g.t_ns / 1e6 for g in e.gaps), *([head] if head else [])],
        8,
        984,
        breaks=len(ms) >= 3,
    )
    out = [
        f'<svg class="timeline" viewBox="0 0 1000 122" data-t="{" ".join(f"{t:.2f}" for t in ms)}" '
        f'data-b="{" ".join(str(len(c.data)) for c in e.chunks)}" role="img">'
        f"<title>{_t(f'{len(ms)} chunks over {_dur(end.t_ns / 1e6)}')}</title>"
    ]
    for i in sorted(axis.broken):
        x0, x1 = axis.xs[i], axis.xs[i + 1]
        long = _dur(axis.spans[i])
        out.append(
            f'<rect class="brk" x="{x0:.1f}" y="40" width="{x1 - x0:.1f}" height="52">'
            f"<title>{_t(f'{long} without data, drawn short (not to scale)')}</title></rect>"
            f'<text x="{(x0 + x1) / 2:.1f}" y="117" text-anchor="middle">≈ {_t(long)} ≈</text>'
        )
    longest = d.gap_max_at_chunk if len(ms) > 1 and d.gap_max_ms else None  # one wait is no outlier
    if longest is not None and d.gap_max_ms is not None:
        k = longest
        x0, x1 = axis.x(ms[k - 1] if k else 0.0), axis.x(ms[k])
        out.append(
            f'<rect class="lg longest-gap" x="{x0:.1f}" y="40" width="{max(x1 - x0, 1):.1f}" height="52">'
            f"<title>longest wait: {_t(_dur(d.gap_max_ms))} before chunk #{k}</title></rect>"
            f"{_label(min(x0, 880), 50, f'longest wait {_dur(d.gap_max_ms)}')}"
        )
    out.append('<line class="ax" x1="8" x2="992" y1="92.5" y2="92.5"/>')
    for x, text in axis.ticks():
        out.append(f'<line class="tick" x1="{x:.1f}" x2="{x:.1f}" y1="92" y2="96"/>')
        anchor = "start" if x < 20 else "end" if x > 980 else "middle"
        out.append(f'<text x="{x:.1f}" y="105" text-anchor="{anchor}">{_t(text)}</text>')
    if head is not None:
        out.append(_line("head", axis.x(head), 40, f"response head at {_dur(head)}"))
    if d.first_chunk_ms is not None:
        x = axis.x(d.first_chunk_ms)
        out.append(_line("ttfb", x, 4, "first byte") + _label(x, 12, f"first byte {_dur(d.first_chunk_ms)}"))
    if d.first_token_ms is not None:
        x = axis.x(d.first_token_ms)
        out.append(
            _line("ft first-token", x, 16, "first token")
            + _label(x, 24, f"first token {_dur(d.first_token_ms)}")
        )
    top = max(len(c.data) for c in e.chunks) if e.chunks else 1
    for i, (t, c) in enumerate(zip(ms, e.chunks, strict=True)):
        h = 3 + 37 * math.sqrt(len(c.data) / top) if top else 3
        hi = " hi" if i == longest else ""
        out.append(f'<path class="chunk-mark{hi}" d="M{axis.x(t):.1f} 92v-{h:.1f}"/>')
    for gap in e.gaps:
        what = f"lost {_plural(gap.records, 'chunk')} ({gap.bytes} B)" if gap.records else "records lost"
        x = axis.x(gap.t_ns / 1e6)
        out.append(_line("gap-record", x, 40, f"{what}: {gap.reason}") + _label(x, 62, what))
    said = _ENDS.get(end.outcome, end.outcome) if end.outcome != "error" else f"error: {end.error_type}"
    x = axis.x(end.t_ns / 1e6)
    out.append(
        _line(
            f"end o-{_t(end.outcome)}",
            x,
            28,
            f"{said}: {end.message or ''}",
            f' data-outcome="{_t(end.outcome)}"',
        )
        + _label(x, 36, f"{said} at {_dur(end.t_ns / 1e6)}")
    )
    out.append("</svg>")
    return "".join(out)


# -- the chunks as they arrived, and the text ------------------------------------------------------------------


@dataclass
class _Budget:
    """Characters of chunk rows this page may still take (the timeline is outside it: it has every chunk)."""

    left: int


def _u8(data: bytes, title: str) -> str:
    return f'<b class="u8" title="{_t(title)}">{_hex(data)}</b>'


def _chunk_bytes(
    i: int, data: bytes, st: _Stream, split: tuple[int, int, dict[tuple[int, str], str]], cut: int
) -> str:
    """One chunk's bytes: the pieces of split characters as hex, then text with the events ending inside it."""
    lead, tail, titles = split
    body_end = len(data) - tail
    out = [_u8(data[: min(lead, cut)], titles[(i, "lead")])] if lead else []
    pos = min(lead, cut)
    for offset, number in st.ends.get(i, []):
        if offset < min(body_end, cut):  # an event that ends with the chunk is the clean case: not marked
            out.append(_wire_text(data[pos:offset]))
            out.append(f'<b class="eb" title="an event boundary inside a chunk">end of event {number}</b>')
            pos = offset
    out.append(_wire_text(data[pos : min(body_end, cut)]))
    if cut < len(data):
        out.append(f'<b class="cut">… {len(data) - cut} more bytes not shown</b>')
    elif tail:
        out.append(_u8(data[body_end:], titles[(i, "tail")]))
    return "".join(out)


def _wire(
    n: int, e: Exchange, d: Diagnostics, datas: list[bytes], st: _Stream, budget: _Budget, path: str
) -> str:
    """Each chunk's bytes with its time, size and wait, as far as the page's budget goes."""
    if not e.chunks:
        return '<h3>Chunks</h3><p class="note">none: no body was received</p>'
    lead, tail, titles = _split_chars(datas)
    rows = []
    for i, (chunk, data) in enumerate(zip(e.chunks, datas, strict=True)):
        if budget.left <= 0 and data:
            break
        cut = min(len(data), budget.left)
        size = f"{len(chunk.data)} B" + (f" ({len(data)} B decoded)" if len(data) != len(chunk.data) else "")
        parts = [
            f'<span class="ch">#{i}  {_dur(chunk.t_ns / 1e6)}  {size}  +{_dur(d.chunk_gaps_ms[i])}  </span>'
        ]
        before, after = st.open_after.get(i - 1), st.open_after.get(i)
        if before is not None and before != after:  # the chunk that ends an event begun earlier
            ev, first, _ = before
            parts.append(f'<b class="sp" title="event {ev} began in chunk #{first}">→ event {ev}</b>')
        parts.append(_chunk_bytes(i, data, st, (lead[i], tail[i], titles), cut))
        if after is not None and after != before:  # the chunk that begins an event it does not finish
            ev, _, last = after
            parts.append(f'<b class="sp" title="event {ev} ends in chunk #{last}">event {ev} goes on →</b>')
        elif st.unterminated and i == len(e.chunks) - 1:
            parts.append('<b class="sp">the stream ends inside an event, which is never dispatched</b>')
        cls = "chunk"
        if i == d.gap_max_at_chunk and len(e.chunks) > 1:
            cls += " hi"  # after the longest wait
        elif before is not None and before == after:
            cls += " mid"  # all of it inside one event: no marks, a border
        rows.append(f'<div class="{cls}">{"".join(parts)}</div>')
        budget.left -= len(rows[-1])
    if len(rows) < len(e.chunks):
        hidden = sum(len(c.data) for c in e.chunks[len(rows) :])
        rows.append(
            f'<div class="note">chunks #{len(rows)}-#{len(e.chunks) - 1} ({hidden} B) are not shown, to keep '
            f"this page small: <code>streamtape cat {_t(path)} -x {n}</code> prints every record</div>"
        )
    summary = (
        f"Chunks as they arrived: {_plural(len(e.chunks), 'chunk')}; each read's bytes as UTF-8 text "
        "(↵ a line end; hex: a character split across reads, or bytes that are not UTF-8)"
    )
    attrs = " open" if len(e.chunks) <= 400 else ""
    return f'<details class="chunks"{attrs}><summary>{summary}</summary><div class="wire">{"".join(rows)}</div></details>'


def _pieces(d: Diagnostics, st: _Stream) -> list[tuple[int | None, str]]:
    """The text cut where each chunk added to it (re-assembled chunk by chunk, as the player shows it)."""
    whole: list[tuple[int | None, str]] = [(None, d.text)]
    if not d.streamed or not d.text or len(st.events_at) > ATTRIBUTE_LIMIT:
        return whole
    assembler, shown = new_assembler(d.provider), ""
    out: list[tuple[int | None, str]] = []
    for c in sorted(st.events_at):
        for event in st.events_at[c]:
            assembler.feed(event)
        text = assembler.result().text
        if not text.startswith(shown):  # a format whose text is not a growing prefix: one piece
            return whole
        if len(text) > len(shown):
            out.append((c, text[len(shown) :]))
            shown = text
    return out if shown == d.text else whole


def _text(d: Diagnostics, pieces: list[tuple[int | None, str]], e: Exchange) -> str:
    spans = "".join(
        _exact(p)
        if c is None
        else f'<span data-c="{c}" title="chunk #{c} at {_dur(e.chunks[c].t_ns / 1e6)}">{_exact(p)}</span>'
        for c, p in pieces
    )
    how = "; shaded by the chunk that completed each piece" if pieces and pieces[0][0] is not None else ""
    out = f'<h3>Text <span class="note">{d.total_content_length} characters{how}</span></h3><div class="text">{spans}</div>'
    if d.refusal:
        out += f'<h3>Refusal</h3><div class="refusal">{_exact(d.refusal)}</div>'
    return out


def _tools(d: Diagnostics) -> str:
    if not d.tool_calls:
        return ""
    rows = []
    for i, call in enumerate(d.tool_calls):
        args, valid = call["arguments"], bool(call["valid_json"])
        if valid and args:
            with contextlib.suppress(ValueError, RecursionError):
                args = json.dumps(json.loads(args), indent=2, ensure_ascii=False)
        verdict = '<span class="ok">valid JSON</span>' if valid else '<span class="no">INVALID JSON</span>'
        rows.append(
            f'<tr class="tool-call" data-valid-json="{str(valid).lower()}"><td>#{i}</td>'
            f'<td class="tool-name">{_t(call["name"])}</td><td class="u">{_t(call["id"])}</td>'
            f'<td>{verdict}<pre class="tool-args">{_exact(args)}</pre></td></tr>'
        )
    return (
        f"<h3>Tool calls ({len(rows)})</h3><table><tr><th>#</th><th>name</th><th>id</th>"
        f"<th>arguments (indented when valid JSON)</th></tr>{''.join(rows)}</table>"
    )


# -- heads, facts, the tape's header, the page ------------------------------------------------------------------


def _headers(headers: Headers) -> str:
    if not headers:
        return '<p class="note">(no headers)</p>'
    rows = "".join(f'<tr><td>{_t(name)}</td><td class="u">{_t(value)}</td></tr>' for name, value in headers)
    return f"<table><tr><th>name</th><th>value</th></tr>{rows}</table>"


def _body(body: bytes, size: int | None) -> str:
    if not body:
        return '<p class="note">no request body</p>'
    what = f"{size if size is not None else len(body)} bytes as recorded"
    if size is not None:
        what += f", of which the tape holds the first {len(body)}"
    inner, more = None, ""
    if len(body) <= BODY_LIMIT:
        try:
            inner = _exact(json.dumps(json.loads(body), indent=2, ensure_ascii=False))
            what += " (JSON, indented here)"
        except (ValueError, RecursionError):
            pass
    elif body[BODY_LIMIT:]:
        more = f'<b class="cut">… {len(body) - BODY_LIMIT} more bytes not shown</b>'
    if inner is None:
        inner = _wire_text(body[:BODY_LIMIT])
    return f"<details><summary>Request body: {what}</summary><pre>{inner}{more}</pre></details>"


def _heads(e: Exchange) -> str:
    r, resp = e.request, e.response
    if resp is None:
        response = '<p class="note">none: the exchange ended before a response head arrived</p>'
    else:
        line = f"{resp.http_version} {resp.status_code} {resp.reason}"
        response = f'<p><code>{_t(line)}</code> <span class="note">after {_dur(resp.t_ns / 1e6)}</span></p>'
        response += _headers(resp.headers)
    return (
        "<details open><summary>Request and response heads, as on the tape (credentials the "
        f'recorder knew are fingerprints)</summary><div class="heads"><div><h3>Request</h3><p><code>{_t(r.method)} '
        f"{_t(r.url)}</code></p>{_headers(r.headers)}{_body(r.body, r.body_size)}</div><div><h3>Response</h3>"
        f"{response}</div></div></details>"
    )


def _dl(rows: list[tuple[str, str]]) -> str:
    return '<dl class="kv">' + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows) + "</dl>"


def _facts(e: Exchange, d: Diagnostics) -> str:
    end = e.end
    ended = end.outcome + (f" ({end.error_type}: {end.message})" if end.outcome == "error" else "")
    status = "---" if e.response is None else f"{e.response.status_code} {e.response.reason}"
    tail = ""
    if d.last_chunk_ms is not None and d.duration_ms - d.last_chunk_ms >= 1:
        tail = f" ({_dur(d.duration_ms - d.last_chunk_ms)} after the last chunk)"
    finish = f'<span class="finish">{_t(d.finish_reason or "")}</span>' + (
        "" if d.finish_reason else "(none)"
    )
    if d.usage:
        finish += f"; usage <code>{_t(json.dumps(d.usage, ensure_ascii=False))}</code>"
    rows = [
        ("verdict", _t(VERDICT_MEANS[d.verdict])),
        ("provider", _t(d.provider + (f", model {d.model}" if d.model else ""))),
        ("status", _t(status)),
        ("ended", _t(f"{ended} at {_dur(d.duration_ms)}")),
        ("finish", finish),
        (
            "chunks",
            _t(
                f"{_plural(d.chunks_received, 'chunk')}, {len(e.body)} B, {_plural(d.events, 'event')}, "
                f"{d.total_content_length} characters of text" + ("" if d.streamed else "; not a stream")
            ),
        ),
        (
            "timing",
            _t(
                f"first byte {_dur(d.first_chunk_ms)}, first token {_dur(d.first_token_ms)}, "
                f"last chunk {_dur(d.last_chunk_ms)}, end {_dur(d.duration_ms)}{tail}"
            ),
        ),
    ]
    if d.chunk_gaps_ms:
        rows.append(
            (
                "waits",
                _t(
                    f"p50 {_dur(d.gap_p50_ms)}, p95 {_dur(d.gap_p95_ms)}, longest {_dur(d.gap_max_ms)} "
                    f"before chunk #{d.gap_max_at_chunk} (at {_dur(d.gap_max_at_ms)})"
                ),
            )
        )
    items = (
        [("hazard", h) for h in d.hazards] + [("error", x) for x in d.errors] + [("note", x) for x in d.notes]
    )
    alerts = "".join(f'<li class="{kind}">{kind}: {_t(text)}</li>' for kind, text in items)
    return _dl(rows) + (f'<ul class="alerts">{alerts}</ul>' if alerts else "")


def _exchange(n: int, e: Exchange, d: Diagnostics, budget: _Budget, path: str) -> str:
    decoded = decoded_chunks(e, [])
    datas = [data for _, data in decoded] + [c.data for c in e.chunks[len(decoded) :]]
    st = _stream(decoded) if d.streamed else _Stream()
    r = e.request
    return (
        f'<section class="exchange" id="x-{n}" data-exchange="{n}"><h2>#{n} {_t(r.method)} {_t(r.url)} '
        f'<span class="verdict v-{d.verdict}" data-verdict="{d.verdict}">{d.verdict}</span></h2>'
        f'<p class="note">segment {e.segment}, exchange id {e.id}, sent {_dur(r.t_ns / 1e6)} after the '
        f"segment started</p>{_facts(e, d)}<h3>Timeline</h3>{_timeline(e, d)}"
        '<p class="note">One mark per chunk at its arrival, its height by its size (red: after the longest '
        "wait); dashed lines: first byte, first token; solid: the end; shaded and labelled ≈: a wait drawn "
        'short.</p><p class="tl-info">Hover over the timeline for each chunk; click for its bytes.</p>'
        f"{_text(d, _pieces(d, st), e)}{_tools(d)}{_wire(n, e, d, datas, st, budget, path)}"
        f"{_heads(e)}</section>"
    )


def _segment(tape: Tape, n: int | None, h: Header) -> list[tuple[str, str]]:
    rows = [("format", _t(format_text(h) + ("" if n is None else f"; {segment_exchanges(tape, n)}")))]
    if h.meta:
        rows.append(("meta", f"<code>{_t(meta_text(h))}</code>"))
    rows.append(("redacted", _t(redaction_text(h))))
    r = h.redaction
    if r is not None and (r.body_fields or r.kinds or r.patterns or r.prompts or r.passes):
        more = [f"body fields {', '.join(r.body_fields)}"] if r.body_fields else []
        more += [f"secrets {', '.join(r.kinds)}"] if r.kinds else []
        more += [_plural(len(r.patterns), "pattern")] if r.patterns else []
        more += ["prompts"] if r.prompts else []
        more += [f"rewritten by {p.tool} (key {p.key_id})" for p in r.passes]
        rows.append(("also", _t("; ".join(more))))
    if h.provenance:
        rows.append(("derived", _t(provenance_text(h))))
    return rows


def _tape_header(tape: Tape, diagnosed: list[tuple[int, Exchange, Diagnostics]]) -> str:
    rows = [("tape", f"<code>{_t(tape.path or '(not from a file)')}</code>")]
    if len(tape.segments) <= 1:
        rows += _segment(tape, None, tape.header)
    else:
        rows.append(("segments", f"{len(tape.segments)} (recordings appended to one tape)"))
        rows += [(f"segment {n}", _dl(_segment(tape, n, h))) for n, h in enumerate(tape.segments)]
    if tape.incomplete:
        rows.append(('<span class="warn">INCOMPLETE</span>', _t(tape.problem or "")))
    rows += [('<span class="warn">damage</span>', _t(message)) for message in tape.damage]
    lines = []
    for n, e, d in diagnosed:
        s = exchange_summary(e)
        ended = (
            s["outcome"]
            + (f" ({s['error_type']})" if s["error_type"] else "")
            + (", DAMAGED" if s["damaged"] else "")
        )
        ttfb = None if s["ttfb_ns"] is None else s["ttfb_ns"] / 1e6
        lines.append(
            f'<tr><td><a href="#x-{n}">#{n}</a></td><td>{_t(s["method"])}</td><td class="u">{_t(s["url"])}</td>'
            f"<td>{_t(s['status'] if s['status'] is not None else '---')}</td><td>{_t(ended)}</td>"
            f'<td><span class="vb v-{d.verdict}">{d.verdict}</span></td><td>{s["chunks"]}</td>'
            f"<td>{s['bytes']} B</td><td>{_dur(ttfb)}</td><td>{_dur(s['duration_ns'] / 1e6)}</td></tr>"
        )
    shown = f"{len(tape.exchanges)}" + (
        "" if len(diagnosed) == len(tape.exchanges) else f", showing {len(diagnosed)}"
    )
    return (
        f'<header><h1>streamtape report</h1>{_dl(rows)}<p class="note">Headers, bodies and streams are shown '
        "as recorded: the recorder replaces the credentials it knows in headers and query strings with "
        "fingerprints (REDACTED:…) but keeps bodies, prompts included, unless a hook or <code>streamtape "
        f"redact</code> scrubbed them.</p><h3>Exchanges: {shown}</h3><table><tr><th>#</th><th>method</th>"
        "<th>URL</th><th>status</th><th>ended</th><th>verdict</th><th>chunks</th><th>bytes</th><th>first byte"
        f"</th><th>duration</th></tr>{''.join(lines)}</table></header>"
    )


def render_report(tape: Tape, exchanges: Numbered | None = None) -> str:
    """The page for ``tape``: its header, then a section per exchange (all, or the numbered ones given)."""
    chosen = list(enumerate(tape.exchanges)) if exchanges is None else list(exchanges)
    diagnosed = [(n, e, diagnose(e)) for n, e in chosen]
    budget = _Budget(WIRE_BUDGET)
    path = tape.path or "TAPE"
    sections = "".join(_exchange(n, e, d, budget, path) for n, e, d in diagnosed)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}"><meta name="referrer" content="no-referrer">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_t(f'streamtape report: {path}')}</title><style>{CSS}</style></head><body>"
        f'{_tape_header(tape, diagnosed)}{sections}<footer class="note">Made by streamtape {__version__}.'
        f"</footer><script>{JS}</script></body></html>\n"
    )


__all__ = ["BODY_LIMIT", "WIRE_BUDGET", "render_report"]
