"""``streamtape report``: a tape as one self-contained HTML page, for a person with a browser.

The page is ``streamtape.report.html``'s; this verb only picks the exchanges and writes the file, the way
the other verbs write theirs (a temporary file renamed into place, never written through a link).
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from ..errors import TapeError
from ..report.html import render_report
from ..storage.atomic import create_temp
from ..storage.reader import open_tape
from ._numbering import exchange_option, select


def _write(target: str, data: bytes) -> None:
    """Write ``data`` to ``target`` atomically (mode 0600: a report holds the tape's bodies)."""
    fd, tmp = create_temp(target)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@click.command()
@click.argument("tape", type=click.Path(dir_okay=False))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Where to write the page (`-`: standard output). Default: the tape's name with .html, in the "
    "current directory.",
)
@exchange_option("Only exchange number N (as numbered by `info`).")
def report(tape: str, output: str | None, exchange: int | None) -> None:
    """Write a tape as one HTML page to open in a browser: per exchange a timeline of its chunks, the text
    as it arrived, tool calls, hazards, the verdict, and the request and response heads.

    The page is self-contained (no network when viewed) and shows the tape as recorded, bodies included.
    """
    opened = open_tape(tape)
    chosen = None if exchange is None else select(opened, exchange)
    page = render_report(opened, chosen).encode("utf-8")
    if output == "-":
        click.echo(page, nl=False)
        return
    target = output or Path(tape).with_suffix(".html").name
    if os.path.exists(target) and os.path.samefile(target, tape):
        raise TapeError("the report would overwrite the tape itself; name another file with -o", path=tape)
    _write(target, page)
    shown = len(opened.exchanges) if chosen is None else len(chosen)
    click.echo(f"{target}: {len(page)} bytes, {shown} {'exchange' if shown == 1 else 'exchanges'}")
