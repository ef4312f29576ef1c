"""The verb that hands a tape to tools outside streamtape: ``export --har`` (browsers' devtools, HAR viewers)."""

from __future__ import annotations

import json

import click

from ..report.har import har_document
from ..storage.reader import open_tape
from ._numbering import exchange_option, select


@click.command()
@click.argument("tape", type=click.Path(dir_okay=False))
@click.option(
    "--har",
    "form",
    flag_value="har",
    required=True,
    help="HAR 1.2: an entry per exchange; chunk times, outcome and verdict in _chunks, _outcome, _verdict.",
)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write here instead of to stdout.")
@exchange_option("Only exchange number N (as numbered by `info`).")
def export(tape: str, form: str, output: str | None, exchange: int | None) -> None:
    """Export a tape in a format other tools read (HAR 1.2, one entry per exchange, numbered as `info`).

    Bodies are kept as received: text when UTF-8, else base64 (HAR's `encoding: "base64"`).
    """
    opened = open_tape(tape)
    # Built whole before anything is written: bad input gives one error line and no half-written file.
    text = json.dumps(har_document(opened, select(opened, exchange)), indent=2, ensure_ascii=False)
    if output is None:
        click.echo(text)
        return
    with open(output, "w", encoding="utf-8") as out:
        out.write(text + "\n")
