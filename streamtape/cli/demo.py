"""``streamtape demo``: the command around ``streamtape.demo.run_demo`` (imported when the verb runs)."""

from __future__ import annotations

import sys

import click


@click.command()
@click.option(
    "--tape", "path", type=click.Path(dir_okay=False), help="Where to write the tape (default: a temp file)."
)
def demo(path: str | None) -> None:
    """Record a local streaming chat completion through the OpenAI SDK, then show the tape. No network."""
    from ..demo import MissingExtra, run_demo  # the emulator and the SDK load only for this verb

    try:
        run_demo(path, echo=click.echo)
    except MissingExtra as exc:  # an extra to install: a usage problem, one line, exit 2
        click.echo(f"streamtape: error: {exc}", err=True)
        sys.exit(2)
