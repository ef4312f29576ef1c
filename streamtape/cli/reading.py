"""Verbs that show what a tape holds: ``info`` (its headers and exchanges) and ``cat`` (every record)."""

from __future__ import annotations

import json
import sys

import click

from ..format.jsonform import record_to_json
from ..format.records import Header
from ..report.summary import info_document, info_lines
from ..storage.reader import iter_records
from ._numbering import exchange_option, locate, outline_file, select


@click.command()
@click.argument("tapes", nargs=-1, required=True, metavar="TAPE...", type=click.Path(dir_okay=False))
@exchange_option("Only exchange number N (as numbered here), in each tape.")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="One JSON object per tape: its headers and a summary per exchange (a list of them for several tapes).",
)
def info(tapes: tuple[str, ...], exchange: int | None, as_json: bool) -> None:
    """Show each tape's header (every segment's) and one line per exchange, a blank line between tapes.

    Columns: exchange number, method, URL, status, outcome, chunks, bytes, time to first byte, duration.
    """
    # Every tape is read before anything is printed: bad input gives one error line, not half an answer.
    blocks: list[list[str]] = []
    docs: list[object] = []
    for path in tapes:
        tape = outline_file(path)  # one pass, holding no body
        chosen = None if exchange is None else select(tape, exchange)
        if as_json:
            docs.append(info_document(tape, chosen))
        else:
            blocks.append(info_lines(tape, chosen))
    if as_json:
        click.echo(json.dumps(docs[0] if len(docs) == 1 else docs, indent=2))
        return
    for i, lines in enumerate(blocks):
        if i:
            click.echo("")
        for line in lines:
            click.echo(line)


@click.command()
@click.argument("tape", type=click.Path(dir_okay=False))
@exchange_option("Only exchange number N (as numbered by `info`), with its segment's header.")
def cat(tape: str, exchange: int | None) -> None:
    """Print every record of a tape as one JSON line, in file order, without loading the tape whole.

    Byte fields (chunk data, request bodies) are {"text": ...} when valid UTF-8, else {"base64": ...}.
    """
    wanted = None if exchange is None else locate(tape, exchange)  # a first pass, when asked for one
    stream = iter_records(tape)
    out = sys.stdout
    segment = -1
    for record in stream:
        if isinstance(record, Header):
            segment += 1
        if wanted is not None:
            if segment != wanted[0]:
                continue
            if not isinstance(record, Header) and record.x != wanted[1]:
                continue
        out.write(json.dumps(record_to_json(record), ensure_ascii=False) + "\n")
    if stream.incomplete:
        click.echo(f"streamtape: warning: {tape}: incomplete: {stream.problem}", err=True)
