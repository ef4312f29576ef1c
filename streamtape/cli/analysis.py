"""Verbs that read what an exchange said: ``diagnose``, ``compare`` (two exchanges) and ``play``."""

from __future__ import annotations

import json
import sys

import click

from ..analysis.compare import compare_diagnostics
from ..analysis.diagnose import Diagnostics
from ..analysis.outline import Outline
from ..report.diagnosis import diagnosis_lines
from ..report.player import play_exchange
from ._numbering import exchange_from_file, exchange_option, one, outline_file, select

#: The exit status of a finding: exchanges differ, a verdict other than ``complete`` under ``--check``.
FINDING = 1


#: The pace of a replay, as asciinema names it too (``play``, ``serve``).
speed_option = click.option(
    "-s",
    "--speed",
    type=float,
    default=1.0,
    show_default=True,
    help="Times the recorded pace (inf: no waiting).",
)
max_gap_option = click.option(
    "-i",
    "--max-gap",
    "--idle-time-limit",
    "max_gap",
    type=float,
    default=None,
    help="Cap every wait at this many seconds of tape time.",
)


def _diagnosis(outline: Outline) -> Diagnostics:
    assert outline.diagnostics is not None  # outline_file(diagnose=True) diagnoses every exchange
    return outline.diagnostics


@click.command()
@click.argument("tapes", nargs=-1, required=True, metavar="TAPE...", type=click.Path(dir_okay=False))
@exchange_option("Only exchange number N (as numbered by `info`), in each tape.")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="A JSON list of diagnosis objects (the Diagnostics fields); for several tapes, one list per tape.",
)
@click.option(
    "--check", is_flag=True, help="Exit 1 when a diagnosed exchange's verdict is not `complete` (for CI)."
)
def diagnose(tapes: tuple[str, ...], exchange: int | None, as_json: bool, check: bool) -> None:
    """Diagnose the exchanges of each tape: verdict, timings, gaps, hazards, the text and tool calls."""
    # Every tape is read (in one pass, holding no body) before anything is printed: bad input gives one
    # error line, not half an answer.
    opened = [outline_file(path, diagnose=True) for path in tapes]
    runs = [(t, [(n, o, _diagnosis(o)) for n, o in select(t, exchange)]) for t in opened]
    if as_json:
        docs = [[d.as_dict() for _, _, d in results] for _, results in runs]
        click.echo(json.dumps(docs[0] if len(docs) == 1 else docs, indent=2, ensure_ascii=False))
    else:
        colour = sys.stdout.isatty()
        for k, (t, results) in enumerate(runs):
            if k:
                click.echo("")
            if len(runs) > 1:
                click.echo(f"tape {t.path}")
            if t.incomplete:
                click.echo(f"INCOMPLETE tape: {t.problem}")
            for i, (n, e, d) in enumerate(results):
                if i:
                    click.echo("")
                for line in diagnosis_lines(n, e, d, colour):
                    click.echo(line)
    if check and any(d.verdict != "complete" for _, results in runs for _, _, d in results):
        sys.exit(FINDING)


@click.command()
@click.argument("a", type=click.Path(dir_okay=False))
@click.argument("b", type=click.Path(dir_okay=False))
@click.option(
    "--exchange-a", "xa", type=int, default=0, show_default=True, help="Exchange number in A (as `info`)."
)
@click.option(
    "--exchange-b", "xb", type=int, default=0, show_default=True, help="Exchange number in B (as `info`)."
)
def compare(a: str, b: str, xa: int, xb: int) -> None:
    """Compare what two exchanges said: text, tool calls, finish reason.

    Exit status: 0 when they say the same, 1 when they differ (the first divergence is printed), 2 on bad
    input.
    """
    result = compare_diagnostics(
        _diagnosis(one(outline_file(a, diagnose=True), xa)),
        _diagnosis(one(outline_file(b, diagnose=True), xb)),
    )
    if result.equal:
        d = result.a
        assert d is not None  # compare() always gives both diagnoses
        click.echo(
            f"same: {len(d.text)} characters of text, {len(d.tool_calls)} tool calls, finish {d.finish_reason}"
        )
        return
    for diff in result.differences:
        click.echo(str(diff))
    sys.exit(FINDING)


@click.command()
@click.argument("tape", type=click.Path(dir_okay=False))
@exchange_option("Exchange number to play (as numbered by `info`).", default=0)
@speed_option
@max_gap_option
@click.option("--raw", is_flag=True, help="Write the raw body bytes instead of the assembled text.")
def play(tape: str, exchange: int, speed: float, max_gap: float | None, raw: bool) -> None:
    """Replay an exchange to the terminal at its recorded pace, like a terminal-session player.

    `-s` and `-i/--idle-time-limit` are asciinema's names for `--speed` and `--max-gap`.
    """
    if not speed > 0:
        raise click.BadParameter("must be > 0", param_hint="--speed")
    played = exchange_from_file(tape, exchange)  # no other exchange's body is held
    play_exchange(played, speed=speed, max_gap=max_gap, raw=raw, out=sys.stdout)
