"""Verbs that write tapes: ``compact`` (a closed tape rewritten smaller, as an explicit step) and ``fault``
(a tape with faults applied, ``streamtape.faults``)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import click

from .. import faults
from ..model import Tape
from ..storage.compact import compact as compact_tape
from ..storage.reader import open_tape
from ._numbering import exchange_option


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


# -- fault --------------------------------------------------------------------------------------------------

#: The fault flags: flag, value type (None: a flag without a value), help. Applied in command-line order.
_FAULTS: tuple[tuple[str, type | None, str], ...] = (
    ("--truncate-after", int, "Keep the first N chunks, then end as --error says."),
    ("--truncate-bytes", int, "Keep the first N bytes of the body, then end as --error says."),
    ("--stall-at", int, "Wait --stall-s seconds more before chunk K."),
    ("--rechunk", int, "Cut the body again into N-byte chunks."),
    ("--rechunk-seed", int, "Cut the body again at random points drawn from SEED."),
    ("--drop", int, "Lose chunk K."),
    ("--duplicate", int, "Deliver chunk K twice."),
    ("--delay-head", float, "Wait S seconds more for the response head."),
    ("--throttle", float, "Deliver the body at most BPS bytes a second."),
    ("--garbage-after", int, "Keep K chunks, then send 64 random bytes, then end as --error says."),
    ("--status", int, "Answer with HTTP status CODE instead of the stream (the provider's error body)."),
    ("--fail-connect", None, "The connection never opens (--error: ConnectError by default)."),
)
_ORDER = "streamtape_fault_order"


class _FaultsInOrder(click.Command):
    """Notes the order the fault flags come in: click groups a repeated option's values together, so
    ``--drop 1 --rechunk 7 --drop 3`` would otherwise apply both drops first."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        flags = {flag for flag, _, _ in _FAULTS}
        ctx.meta[_ORDER] = [arg.partition("=")[0] for arg in args if arg.partition("=")[0] in flags]
        return super().parse_args(ctx, args)


def _fault_options(command: Callable[..., Any]) -> Callable[..., Any]:
    for flag, kind, text in reversed(_FAULTS):
        if kind is None:
            command = click.option(flag, count=True, help=text)(command)
        else:
            command = click.option(flag, type=kind, multiple=True, help=text)(command)
    return command


def _steps(order: list[str], given: dict[str, Any]) -> list[tuple[str, Any]]:
    """Each fault flag with its value, in the order given on the command line."""
    used: dict[str, int] = {}
    steps = []
    for flag in order:
        name = flag.removeprefix("--")
        values = given[name.replace("-", "_")]
        at = used.get(name, 0)
        used[name] = at + 1
        steps.append((name, True if isinstance(values, int) else values[at]))
    return steps


def _error_name(value: str | None, default: str) -> str | None:
    """``--error``: a class name, ``none`` (a clean end), or the fault's own default when not given."""
    if value is None:
        return default
    return None if value.lower() == "none" else value


@click.command(cls=_FaultsInOrder)
@click.argument("source", metavar="IN", type=click.Path(dir_okay=False))
@click.argument("output", metavar="OUT", type=click.Path(dir_okay=False))
@exchange_option("Apply every fault to exchange number N only (default: every exchange it applies to).")
@_fault_options
@click.option(
    "--error",
    "error",
    default=None,
    help="How a truncation ends: an exception class name (RemoteProtocolError, the default; ReadError "
    "for a reset; ReadTimeout), or `none` for a clean end of the body; for --fail-connect, ConnectError "
    "(the default) or ConnectTimeout.",
)
@click.option("--stall-s", type=float, default=None, help="Seconds a --stall-at adds.")
@click.option(
    "--header",
    "headers",
    multiple=True,
    metavar="'NAME: VALUE'",
    help="A header for --status (repeatable), e.g. 'retry-after: 2'.",
)
@click.pass_context
def fault(
    ctx: click.Context,
    /,
    source: str,
    output: str,
    exchange: int | None,
    error: str | None,
    stall_s: float | None,
    headers: tuple[str, ...],
    **given: Any,
) -> None:
    """Write OUT: the tape IN with faults applied, in the order given (its header records them).

    \b
    streamtape fault good.tape cut.tape --truncate-after 12 --error none   # no finish_reason
    streamtape fault good.tape reset.tape --rechunk 1 --truncate-bytes 900 --error ReadError
    streamtape fault good.tape slow.tape --stall-at 5 --stall-s 90        # past a 60 s read timeout
    streamtape fault good.tape busy.tape --status 529 --header 'retry-after: 1'
    """
    steps = _steps(ctx.meta.get(_ORDER, []), given)
    if not steps:
        raise click.UsageError("give at least one fault (--truncate-after, --stall-at, --rechunk, ...)")
    if any(name == "stall-at" for name, _ in steps) and stall_s is None:
        raise click.UsageError("--stall-at needs --stall-s (the seconds to add)")
    pairs = []
    for line in headers:
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            raise click.UsageError(f"--header takes 'NAME: VALUE', not {line!r}")
        pairs.append((name.strip(), value.strip()))
    tape = open_tape(source)
    for name, value in steps:
        tape = _apply_step(tape, name, value, exchange, error, stall_s, pairs)
    tape.save(output)
    applied = ", then ".join(a.fault for a in tape.header.provenance or [])
    click.echo(f"{output}: {applied} ({len(tape.exchanges)} exchanges)")


def _apply_step(
    tape: Tape,
    name: str,
    value: Any,
    exchange: int | None,
    error: str | None,
    stall_s: float | None,
    headers: list[tuple[str, str]],
) -> Tape:
    """One fault of the command line applied (``error`` as given to ``--error``, None when not given)."""
    if name == "truncate-after":
        return faults.truncate(
            tape, after_chunk=value, error=_error_name(error, "RemoteProtocolError"), exchange=exchange
        )
    if name == "truncate-bytes":
        return faults.truncate(
            tape, after_bytes=value, error=_error_name(error, "RemoteProtocolError"), exchange=exchange
        )
    if name == "stall-at":
        assert stall_s is not None
        return faults.stall(tape, at_chunk=value, seconds=stall_s, exchange=exchange)
    if name == "rechunk":
        return faults.rechunk(tape, size=value, exchange=exchange)
    if name == "rechunk-seed":
        return faults.rechunk(tape, seed=value, exchange=exchange)
    if name == "drop":
        return faults.drop(tape, chunk=value, exchange=exchange)
    if name == "duplicate":
        return faults.duplicate(tape, chunk=value, exchange=exchange)
    if name == "delay-head":
        return faults.delay_head(tape, seconds=value, exchange=exchange)
    if name == "throttle":
        return faults.throttle(tape, bytes_per_second=value, exchange=exchange)
    if name == "garbage-after":
        chosen = _error_name(error, "RemoteProtocolError")
        return faults.garbage(tape, after_chunk=value, error=chosen, exchange=exchange)
    if name == "status":
        return faults.status(tape, code=value, headers=headers or None, exchange=exchange)
    assert name == "fail-connect"
    connect_error = _error_name(error, "ConnectError")
    if connect_error is None:
        raise click.UsageError("--fail-connect needs an error class (--error none means a clean end)")
    return faults.fail_connect(tape, error=connect_error, exchange=exchange)
