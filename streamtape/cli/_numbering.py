"""Exchange numbers, one meaning in every verb: N is ``open_tape(path).exchanges[N]``, the number ``info``
shows, counted across segments (ordered by ``streamtape.model.exchange_order``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

import click

from ..analysis.outline import OutlineBuilder, TapeOutline
from ..errors import TapeError
from ..format.records import Header, Request
from ..model import Exchange, exchange_order
from ..storage.reader import iter_records, read_into

F = TypeVar("F", bound=Callable[..., Any])
E = TypeVar("E", covariant=True)
X = TypeVar("X")


class Numbering(Protocol[E]):
    """A tape in memory (``Tape``) or read in one pass (``TapeOutline``): exchanges numbered from 0."""

    @property
    def exchanges(self) -> Sequence[E]: ...

    @property
    def path(self) -> str | None: ...


def exchange_option(text: str, default: int | None = None) -> Callable[[F], F]:
    """The ``--exchange/-x N`` option every verb takes."""
    return click.option(
        "--exchange", "-x", "exchange", type=int, default=default, show_default=default is not None, help=text
    )


def _no_such(path: str | None, n: int, count: int) -> TapeError:
    return TapeError(f"no exchange #{n}: the tape has {count} (numbered from 0)", path=path)


def select(tape: Numbering[X], n: int | None) -> list[tuple[int, X]]:
    """Every exchange with its number, or only number ``n`` (a ``TapeError`` when the tape has none)."""
    if n is None:
        return list(enumerate(tape.exchanges))
    if not 0 <= n < len(tape.exchanges):
        raise _no_such(tape.path, n, len(tape.exchanges))
    return [(n, tape.exchanges[n])]


def one(tape: Numbering[X], n: int) -> X:
    """Exchange number ``n`` (a ``TapeError`` when the tape has none)."""
    ((_, exchange),) = select(tape, n)
    return exchange


def outline_file(path: str, *, diagnose: bool = False) -> TapeOutline:
    """The tape at ``path`` read in one pass, no body held (``analysis.outline``); diagnosed if asked."""
    builder = OutlineBuilder(path=path, diagnose=diagnose)
    return builder.outline(*read_into(builder, path, max_bytes=None))


def exchange_from_file(path: str, n: int) -> Exchange:
    """Exchange number ``n`` with its chunks, in two passes that hold no other exchange's body."""
    builder = OutlineBuilder(path=path, keep=locate(path, n))
    read_into(builder, path, max_bytes=None)
    return builder.kept()


def locate(path: str, n: int) -> tuple[int, int]:
    """The (segment, id) of exchange number ``n``, found by streaming the tape (it is never loaded whole)."""
    keys: list[tuple[int, int, int]] = []
    segment = -1
    for record in iter_records(path):
        if isinstance(record, Header):
            segment += 1
        elif isinstance(record, Request):
            keys.append(exchange_order(segment, record))
    if not 0 <= n < len(keys):
        raise _no_such(path, n, len(keys))
    segment, _, x = sorted(keys)[n]
    return segment, x
