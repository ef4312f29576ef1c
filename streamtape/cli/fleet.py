"""Verbs for the tapes of a fleet: ``upload`` (a recorder's finished tapes to object storage) and ``index``
(tapes anywhere into a Parquet dataset for SQL). Both need the ``fleet`` extra (pyarrow, fsspec, s3fs)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any, NoReturn

import click

from ..fleet import FleetError


def _fail(message: str) -> NoReturn:
    click.echo(f"streamtape: error: {message}", err=True)
    sys.exit(2)


def _warn(message: str) -> None:
    click.echo(f"streamtape: warning: {message}", err=True)


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n:,} {one if n == 1 else (many or one + 's')}"


@contextmanager
def _progress() -> Iterator[tuple[Callable[[int], None], Callable[[int], None]]]:
    """``(on_start, on_progress)`` driving a progress bar on stderr when it is a terminal, else nothing."""
    with ExitStack() as stack:
        bars: list[Any] = []

        def start(total: int) -> None:
            if total and sys.stderr.isatty():
                bar = click.progressbar(length=total, label="indexing", file=sys.stderr, show_pos=True)
                bars.append(stack.enter_context(bar))

        def advance(n: int) -> None:
            for bar in bars:
                bar.update(n)

        yield start, advance


@click.command()
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@click.option(
    "-o", "--output", "out", required=True, metavar="OUT", help="The index: a directory, local or a URL."
)
@click.option(
    "-j", "--jobs", type=click.IntRange(min=1), default=None, help="Worker processes [default: one per core]."
)
@click.option("--prune", is_flag=True, help="Drop the rows of indexed tapes no longer found under the PATHs.")
def index(paths: tuple[str, ...], out: str, jobs: int | None, prune: bool) -> None:
    """Index the tapes under each PATH (a directory, a tape, a glob, or a URL such as s3://bucket/streams/)
    into OUT, a Parquet dataset with one row per exchange: query it with DuckDB, Spark, Trino or Athena.

    Run it again to add what is new: tapes already indexed and unchanged (same size and mtime, or ETag)
    are skipped; a changed tape's rows are replaced. `.partial` files (exchanges still being recorded)
    are never indexed; a tape cut short is indexed with its unfinished exchanges marked incomplete.
    """
    from ..fleet.index import build_index

    try:
        with _progress() as (on_start, on_progress):
            report = build_index(
                paths, out, jobs=jobs, prune=prune, on_start=on_start, on_progress=on_progress
            )
    except FleetError as exc:
        _fail(str(exc))
    for tape, reason in report.unreadable:
        _warn(f"{tape}: {reason} (not indexed)")
    for tape, reason in report.empty:
        _warn(f"{tape}: holds no exchange ({reason}): no rows")
    for tape, reason in report.failed:
        _warn(f"{tape}: could not be read: {reason} (the next run tries again)")
    line = (
        f"indexed {_plural(report.indexed, 'tape')} ({_plural(report.exchanges, 'exchange')}), "
        f"skipped {report.unchanged:,} unchanged"
    )
    extra = []
    if report.incomplete:
        extra.append(f"{report.incomplete:,} cut short (unfinished exchanges marked incomplete)")
    if report.replaced:
        extra.append(f"{_plural(report.replaced, 'changed tape')} re-indexed")
    if report.unreadable:
        extra.append(f"{len(report.unreadable):,} unreadable")
    if report.failed:
        extra.append(f"{len(report.failed):,} failed")
    if report.vanished:
        extra.append(f"{report.vanished:,} vanished while listed")
    if report.partial:
        extra.append(f"{_plural(report.partial, '.partial file')} left (still being written)")
    if report.pruned:
        extra.append(f"{_plural(report.pruned, 'tape')} no longer found, pruned")
    elif report.missing:
        extra.append(f"{_plural(report.missing, 'tape')} no longer found, rows kept")
    click.echo(line + "".join(f"; {part}" for part in extra))
    if report.failed:
        _fail(f"{_plural(len(report.failed), 'tape')} could not be read (the next run tries again)")


@click.command()
@click.argument("directory", metavar="DIR", type=click.Path(file_okay=False))
@click.argument("url", metavar="URL")
@click.option("--keep", is_flag=True, help="Copy: leave the local tapes where they are.")
def upload(directory: str, url: str, keep: bool) -> None:
    """Move the finished tapes (`*.tape`, never `*.partial`) under DIR, recursively, to URL
    (s3://bucket/prefix/ or any fsspec URL), keeping their paths relative to DIR.

    Each local tape is deleted only once the store holds it at its full size. Safe to run while recorders
    write into DIR, and to run again after an interruption.
    """
    from ..fleet.upload import upload as upload_tapes

    try:
        report = upload_tapes(directory, url, keep=keep)
    except FleetError as exc:
        _fail(str(exc))
    for tape, reason in report.failed:
        _warn(f"{tape}: {reason}")
    verb = "copied" if keep else "moved"
    line = f"{verb} {_plural(report.moved, 'tape')} ({report.bytes:,} bytes) to {url}"
    if report.already:
        line += f"; {report.already:,} already there"
    if report.vanished:
        line += f"; {report.vanished:,} vanished"
    if report.partial:
        line += f"; {_plural(report.partial, '.partial file')} left (still being written)"
    if report.failed:
        line += f"; {len(report.failed):,} failed"
    click.echo(line)
    if report.failed:
        _fail(f"{_plural(len(report.failed), 'tape')} could not be uploaded (kept in {directory})")
