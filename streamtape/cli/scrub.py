"""Verbs that make a tape safe to share: ``scan`` (find secrets redaction missed) and ``redact`` (remove them).

Both are shells over ``streamtape.scrub``. A finding never shows a secret, only its masked form.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import click

from .._version import __version__
from ..errors import TapeError
from ..scrub import RedactOptions, redact_tape, scan_tape
from ..storage.reader import open_tape
from ._numbering import exchange_option, select
from .analysis import FINDING


@click.command()
@click.argument("tapes", nargs=-1, required=True, metavar="TAPE...", type=click.Path(dir_okay=False))
@exchange_option("Only exchange number N (as numbered by `info`), in each tape.")
@click.option(
    "--json", "as_json", is_flag=True, help="One JSON object per tape (a list of them for several)."
)
def scan(tapes: tuple[str, ...], exchange: int | None, as_json: bool) -> None:
    """Find secrets a tape still holds: API keys, tokens, JWTs, private keys, unredacted credentials.

    One line per finding: tape, exchange number (as `info`), place, kind, and the secret masked (its first
    and last characters and its length). Exit status: 0 none found, 1 some found, 2 bad input.
    """
    scanned = []
    for path in tapes:  # every tape read (and the exchange checked) before anything is printed
        tape = open_tape(path)
        scanned.append((path, tape, None if exchange is None else [n for n, _ in select(tape, exchange)]))
    found = False
    docs: list[dict[str, Any]] = []
    for path, tape, numbers in scanned:
        result = scan_tape(tape, numbers)
        found = found or bool(result.findings)
        if tape.incomplete:
            click.echo(f"streamtape: warning: {path}: incomplete: {tape.problem}", err=True)
        for note in result.notes:
            click.echo(f"streamtape: warning: {path}: {note}", err=True)
        if as_json:
            docs.append(
                {
                    "path": path,
                    "incomplete": tape.incomplete,
                    "exchanges": len(tape.exchanges),
                    "findings": [f.as_dict() for f in result.findings],
                    "notes": result.notes,
                }
            )
            continue
        for f in result.findings:
            click.echo(f"{path}: {f.where()} {f.place}: {f.kind} {f.masked}")
        exchanges = len({f.exchange for f in result.findings if f.exchange is not None})
        summary = (
            f"{len(result.findings)} secrets in {exchanges} of {len(tape.exchanges)} exchanges"
            if result.findings
            else f"no secrets found in {len(tape.exchanges)} exchanges"
        )
        click.echo(f"{path}: {summary}")
    if as_json:
        click.echo(json.dumps(docs[0] if len(docs) == 1 else docs, indent=2, ensure_ascii=False))
    if found:
        sys.exit(FINDING)


def _require_directory(path: str) -> None:
    """Fail before reading anything when OUT's directory is missing (the save would name its temporary file)."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise TapeError(f"cannot write there: no such directory {directory}", path=path)


@click.command()
@click.argument("source", metavar="IN", type=click.Path(dir_okay=False))
@click.argument("target", metavar="OUT", type=click.Path(dir_okay=False))
@click.option(
    "--header", "headers", multiple=True, metavar="NAME", help="Also a header whose value is secret."
)
@click.option(
    "--query", "query", multiple=True, metavar="NAME", help="Also a query parameter that is secret."
)
@click.option(
    "--field",
    "fields",
    multiple=True,
    metavar="PATH_OR_NAME",
    help="A JSON field to replace whole, in request bodies and response JSON: a name at any depth "
    "(`user`) or a path (`$.messages[*].content`).",
)
@click.option(
    "--pattern",
    "patterns",
    multiple=True,
    metavar="REGEX",
    help="Also replace what this regular expression matches.",
)
@click.option(
    "--prompts",
    is_flag=True,
    help="Replace the prompts: user, system and developer messages, instructions, input.",
)
def redact(
    source: str,
    target: str,
    headers: tuple[str, ...],
    query: tuple[str, ...],
    fields: tuple[str, ...],
    patterns: tuple[str, ...],
    prompts: bool,
) -> None:
    """Write a copy of IN to OUT with every secret `scan` finds replaced by its fingerprint.

    Fingerprints are the recorder's (REDACTED:<12 hex>, under $STREAMTAPE_REDACT_KEY or your key file), so
    equal secrets get equal fingerprints; chunk boundaries and times are kept, and OUT's header says what
    was redacted and with which key. OUT may be IN: it is replaced atomically, never written in place.
    """
    _require_directory(target)
    tape = open_tape(source)
    options = RedactOptions(headers, query, fields, patterns, prompts)
    try:
        result = redact_tape(tape, options, tool=f"streamtape {__version__}")
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    result.tape.save(target)
    redaction = result.tape.header.redaction
    assert redaction is not None and redaction.passes
    what = ", ".join(f"{kind} {n}" for kind, n in sorted(result.replaced.items())) or "nothing"
    click.echo(
        f"{target}: replaced {what} in {result.exchanges} of {len(tape.exchanges)} exchanges "
        f"(key {redaction.passes[-1].key_id})"
    )
    if tape.incomplete:
        click.echo(f"streamtape: warning: {source}: incomplete, redacted as it is: {tape.problem}", err=True)
