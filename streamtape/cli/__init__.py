"""The ``streamtape`` command. A shell over the library: every verb is a few lines around a library call.

Errors are one line on stderr and exit status 1 (2 for usage errors, as click does); never a traceback.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from typing import Any, TypeVar

import click

from .._version import __version__
from ..analysis.compare import compare
from ..analysis.diagnose import Diagnostics, diagnose
from ..errors import TapeError
from ..format.jsonform import record_to_json
from ..format.records import Header
from ..model import Exchange, Tape
from ..storage.reader import iter_records, open_tape

F = TypeVar("F", bound=Callable[..., Any])


def _one_line_errors(func: F) -> F:
    """Turn library errors into one line on stderr and exit 1."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except BrokenPipeError:  # `streamtape cat t | head`: the reader left, which is not an error
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(0)
        except TapeError as exc:
            click.echo(f"streamtape: error: {exc}", err=True)
            sys.exit(1)
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            click.echo(f"streamtape: error: {where}{exc.strerror or exc}", err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            click.echo("streamtape: interrupted", err=True)
            sys.exit(130)

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="streamtape")
def main() -> None:
    """Record streaming HTTP responses into tapes, look inside them, replay them."""


# -- info --------------------------------------------------------------------------------------------
def _ms(ns: int | None) -> str:
    return "-" if ns is None else f"{ns / 1e6:.1f}ms"


def exchange_summary(exchange: Exchange) -> dict[str, Any]:
    """The facts ``info`` shows for one exchange (also its ``--json`` form)."""
    end = exchange.end
    chunks = exchange.chunks
    return {
        "segment": exchange.segment,
        "id": exchange.id,
        "method": exchange.request.method,
        "url": exchange.request.url,
        "status": exchange.response.status_code if exchange.response else None,
        "outcome": end.outcome,
        "error_type": end.error_type,
        "message": end.message,
        "chunks": len(chunks),
        "bytes": sum(len(c.data) for c in chunks),
        "ttfb_ns": chunks[0].t_ns if chunks else None,
        "duration_ns": end.t_ns,
    }


def _header_lines(tape: Tape) -> list[str]:
    header = tape.header
    started = datetime.fromtimestamp(header.started_unix_ns / 1e9, UTC).isoformat(timespec="milliseconds")
    lines = [
        f"tape      {tape.path}",
        f"format    {header.version[0]}.{header.version[1]}, written by {header.writer}, started {started}",
    ]
    if len(tape.segments) > 1:
        lines.append(f"segments  {len(tape.segments)} (recordings appended to one tape)")
    if header.meta:
        lines.append(f"meta      {json.dumps(header.meta, sort_keys=True)}")
    redaction = header.redaction
    lines.append(
        f"redacted  {', '.join(redaction.headers)}; query {', '.join(redaction.query)} (key {redaction.key_id})"
        if redaction
        else "redacted  nothing (recorded with redact=False)"
    )
    if tape.incomplete:
        lines.append(f"INCOMPLETE {tape.problem}")
    return lines


@main.command()
@click.argument("tape", type=click.Path(dir_okay=False))
@click.option(
    "--json", "as_json", is_flag=True, help="One JSON object: the header and a summary per exchange."
)
@_one_line_errors
def info(tape: str, as_json: bool) -> None:
    """Show a tape's header and one line per exchange.

    Columns: exchange number, method, URL, status, outcome, chunks, bytes, time to first byte, duration.
    """
    t = open_tape(tape)
    if as_json:
        doc = {
            "path": t.path,
            "header": record_to_json(t.header),
            "incomplete": t.incomplete,
            "problem": t.problem,
            "exchanges": [exchange_summary(e) for e in t.exchanges],
        }
        click.echo(json.dumps(doc, indent=2))
        return
    for line in info_lines(t):
        click.echo(line)


def info_lines(tape: Tape) -> list[str]:
    """The human form of ``info``: the header, then a line per exchange."""
    summaries = [exchange_summary(e) for e in tape.exchanges]
    lines = [*_header_lines(tape), f"exchanges {len(summaries)}"]
    for n, s in enumerate(summaries):
        outcome = s["outcome"] + (f" ({s['error_type']})" if s["error_type"] else "")
        lines.append(
            f"  #{n:<3} {s['method']:<6} {s['url']}  {s['status'] if s['status'] is not None else '---'}  "
            f"{outcome}  {s['chunks']} chunks  {s['bytes']} B  ttfb {_ms(s['ttfb_ns'])}  {_ms(s['duration_ns'])}"
        )
    return lines


# -- cat ---------------------------------------------------------------------------------------------
@main.command()
@click.argument("tape", type=click.Path(dir_okay=False))
@click.option(
    "--exchange", "-x", "only", type=int, help="Only the records of exchange id N (within its segment)."
)
@_one_line_errors
def cat(tape: str, only: int | None) -> None:
    """Print every record of a tape as one JSON line, in file order, without loading the tape whole.

    Byte fields (chunk data, request bodies) are {"text": ...} when valid UTF-8, else {"base64": ...}.
    """
    stream = iter_records(tape)
    out = sys.stdout
    for record in stream:
        if only is not None and not isinstance(record, Header) and record.x != only:
            continue
        out.write(json.dumps(record_to_json(record), ensure_ascii=False) + "\n")
    if stream.incomplete:
        click.echo(f"streamtape: warning: {tape}: incomplete: {stream.problem}", err=True)


# -- diagnose ----------------------------------------------------------------------------------------
_VERDICT_COLOURS = {"complete": "green", "truncated": "yellow", "error": "red"}
_BARS = "▁▂▃▄▅▆▇█"


def gap_picture(gaps_ms: list[float], times_ms: list[float], width: int = 60) -> str:
    """The longest wait in each of ``width`` slices of the stream's timeline, as bars (log scale)."""
    if not gaps_ms:
        return ""
    span = times_ms[-1] or 1.0
    columns = [0.0] * width
    for gap, t in zip(gaps_ms, times_ms, strict=True):
        col = min(width - 1, int(t / span * width))
        columns[col] = max(columns[col], gap)
    top = max(columns) or 1.0
    import math

    def bar(v: float) -> str:
        if v <= 0:
            return " "
        level = math.log1p(v) / math.log1p(top)
        return _BARS[min(len(_BARS) - 1, int(level * (len(_BARS) - 1) + 0.5))]

    return "".join(bar(v) for v in columns)


def _select(tape: Tape, exchange: int | None) -> list[tuple[int, Exchange]]:
    if exchange is None:
        return list(enumerate(tape.exchanges))
    if not 0 <= exchange < len(tape.exchanges):
        raise TapeError(
            f"no exchange #{exchange}: the tape has {len(tape.exchanges)} (numbered from 0)", path=tape.path
        )
    return [(exchange, tape.exchanges[exchange])]


def _preview(text: str, head: int = 240, tail: int = 80) -> str:
    if len(text) <= head + tail + 5:
        return text
    return f"{text[:head]} [... {len(text) - head - tail} characters ...] {text[-tail:]}"


def diagnosis_lines(n: int, exchange: Exchange, d: Diagnostics, colour: bool) -> list[str]:
    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v:.1f} ms"

    verdict = d.verdict.upper()
    if colour:
        verdict = click.style(verdict, fg=_VERDICT_COLOURS[d.verdict], bold=True)
    tail = ""
    if d.last_chunk_ms is not None and d.duration_ms - d.last_chunk_ms >= 1:
        tail = f" ({d.duration_ms - d.last_chunk_ms:.1f} ms after the last chunk)"
    why = {
        "complete": "terminal marker seen, body done",
        "truncated": "the stream ended without the provider's terminal marker",
        "error": "a transport error or a provider error",
    }[d.verdict]
    lines = [
        f"#{n} {exchange.request.method} {exchange.request.url}",
        f"  verdict   {verdict}  ({why})",
        f"  provider  {d.provider}{f', model {d.model}' if d.model else ''}; status {d.status if d.status is not None else '---'}; outcome {d.outcome}",
        f"  timing    first byte {ms(d.first_chunk_ms)}, first token {ms(d.first_token_ms)}, last chunk {ms(d.last_chunk_ms)}, "
        f"end {ms(d.duration_ms)}{tail}",
        f"  chunks    {d.chunks_received} chunks, {d.events} events, {d.total_content_length} characters of text",
    ]
    if d.chunk_gaps_ms:
        lines.append(
            f"  gaps      p50 {ms(d.gap_p50_ms)}, p95 {ms(d.gap_p95_ms)}, max {ms(d.gap_max_ms)} before chunk {d.gap_max_at_chunk} (at {ms(d.gap_max_at_ms)})"
        )
        times = [c.t_ns / 1e6 for c in exchange.chunks]
        lines.append(f"            |{gap_picture(d.chunk_gaps_ms, times)}|  longest wait per slice of time")
    lines.append(
        f"  finish    {d.finish_reason or '(none)'}{f'; usage {json.dumps(d.usage)}' if d.usage else ''}"
    )
    for hazard in d.hazards:
        lines.append(f"  hazard    {hazard}")
    for error in d.errors:
        lines.append(f"  error     {error}")
    for note in d.notes:
        lines.append(f"  note      {note}")
    if d.text:
        lines.append(f"  text      {_preview(d.text)!r}")
    if d.refusal:
        lines.append(f"  refusal   {_preview(d.refusal)!r}")
    for i, call in enumerate(d.tool_calls):
        valid = "valid JSON" if call["valid_json"] else "INVALID JSON"
        lines.append(
            f"  tool      #{i} {call['name']} {_preview(call['arguments'], 160, 40)} ({valid}, id {call['id']})"
        )
    return lines


@main.command("diagnose")
@click.argument("tape", type=click.Path(dir_okay=False))
@click.option("--exchange", "-x", type=int, help="Only exchange number N (as numbered by `info`).")
@click.option(
    "--json", "as_json", is_flag=True, help="A JSON list of diagnosis objects (the Diagnostics fields)."
)
@_one_line_errors
def diagnose_cmd(tape: str, exchange: int | None, as_json: bool) -> None:
    """Diagnose the exchanges of a tape: verdict, timings, gaps, hazards, the text and tool calls."""
    t = open_tape(tape)
    chosen = _select(t, exchange)
    results = [(n, e, diagnose(e)) for n, e in chosen]
    if as_json:
        click.echo(json.dumps([d.as_dict() for _, _, d in results], indent=2, ensure_ascii=False))
        return
    colour = sys.stdout.isatty()
    if t.incomplete:
        click.echo(f"INCOMPLETE tape: {t.problem}")
    for i, (n, e, d) in enumerate(results):
        if i:
            click.echo("")
        for line in diagnosis_lines(n, e, d, colour):
            click.echo(line)


# -- compare -----------------------------------------------------------------------------------------
@main.command("compare")
@click.argument("a", type=click.Path(dir_okay=False))
@click.argument("b", type=click.Path(dir_okay=False))
@click.option("--exchange-a", "xa", type=int, default=0, show_default=True, help="Exchange number in A.")
@click.option("--exchange-b", "xb", type=int, default=0, show_default=True, help="Exchange number in B.")
def compare_cmd(a: str, b: str, xa: int, xb: int) -> None:
    """Compare what two exchanges said: text, tool calls, finish reason.

    Exit status: 0 when they say the same, 1 when they differ (the first divergence is printed), 2 on error.
    """
    try:
        ((_, ea),) = _select(open_tape(a), xa)
        ((_, eb),) = _select(open_tape(b), xb)
        result = compare(ea, eb)
    except TapeError as exc:
        click.echo(f"streamtape: error: {exc}", err=True)
        sys.exit(2)
    if result.equal:
        click.echo(
            f"same: {len(result.a.text)} characters of text, {len(result.a.tool_calls)} tool calls, finish {result.a.finish_reason}"
        )  # type: ignore[union-attr]
        return
    for diff in result.differences:
        click.echo(str(diff))
    sys.exit(1)


# -- play --------------------------------------------------------------------------------------------
@main.command("play")
@click.argument("tape", type=click.Path(dir_okay=False))
@click.option("--exchange", "-x", type=int, default=0, show_default=True, help="Exchange number to play.")
@click.option(
    "--speed", type=float, default=1.0, show_default=True, help="Times the recorded pace (inf: no waiting)."
)
@click.option("--max-gap", type=float, help="Cap every wait at this many seconds of tape time.")
@click.option("--raw", is_flag=True, help="Write the raw body bytes instead of the assembled text.")
@_one_line_errors
def play(tape: str, exchange: int, speed: float, max_gap: float | None, raw: bool) -> None:
    """Replay an exchange to the terminal at its recorded pace, like a terminal-session player."""
    if not speed > 0:
        raise click.BadParameter("must be > 0", param_hint="--speed")
    t = open_tape(tape)
    ((_, e),) = _select(t, exchange)
    from ..report.player import play_exchange

    play_exchange(e, speed=speed, max_gap=max_gap, raw=raw, out=sys.stdout)


# -- demo --------------------------------------------------------------------------------------------
@main.command()
@click.option(
    "--tape", "path", type=click.Path(dir_okay=False), help="Where to write the tape (default: a temp file)."
)
@_one_line_errors
def demo(path: str | None) -> None:
    """Record a local streaming chat completion through the OpenAI SDK, then show the tape. No network."""
    from ..demo import run_demo

    run_demo(path, echo=click.echo)
