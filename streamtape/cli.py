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

from ._version import __version__
from .errors import TapeError
from .jsonl import record_to_json
from .records import Header
from .tape import Exchange, Tape, iter_records, open_tape

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


# -- demo --------------------------------------------------------------------------------------------
@main.command()
@click.option(
    "--tape", "path", type=click.Path(dir_okay=False), help="Where to write the tape (default: a temp file)."
)
@_one_line_errors
def demo(path: str | None) -> None:
    """Record a local streaming chat completion through the OpenAI SDK, then show the tape. No network."""
    from .demo import run_demo

    run_demo(path, echo=click.echo)
