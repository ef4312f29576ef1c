"""Verbs that write tapes: ``compact`` (a closed tape rewritten smaller, as an explicit step)."""

from __future__ import annotations

import os

import click

from ..storage.compact import compact as compact_tape


@click.command()
@click.argument("tape", type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write here instead of replacing TAPE.")
@click.option(
    "--level", type=click.IntRange(1, 22), default=19, show_default=True, help="zstd compression level."
)
def compact(tape: str, output: str | None, level: int) -> None:
    """Rewrite a closed tape at a high compression level: the same records, fewer bytes.

    Recording never does this itself (closing a client stays instant); run it before archiving or
    attaching a tape. An incomplete tape is refused: compacting would hide what a reader flags.
    """
    before = os.path.getsize(tape)
    after = compact_tape(tape, level=level, output=output)
    click.echo(f"{output or tape}: {before} -> {after} bytes ({after / before:.0%})")
