"""Exchange numbers, one meaning in every verb: N is ``open_tape(path).exchanges[N]``, the number ``info``
shows, counted across segments (ordered by ``streamtape.model.exchange_order``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from ..errors import TapeError
from ..format.records import Header, Request
from ..model import Exchange, Tape, exchange_order
from ..storage.reader import iter_records

F = TypeVar("F", bound=Callable[..., Any])


def exchange_option(text: str, default: int | None = None) -> Callable[[F], F]:
    """The ``--exchange/-x N`` option every verb takes."""
    return click.option(
        "--exchange", "-x", "exchange", type=int, default=default, show_default=default is not None, help=text
    )


def _no_such(path: str | None, n: int, count: int) -> TapeError:
    return TapeError(f"no exchange #{n}: the tape has {count} (numbered from 0)", path=path)


def select(tape: Tape, n: int | None) -> list[tuple[int, Exchange]]:
    """Every exchange with its number, or only number ``n`` (a ``TapeError`` when the tape has none)."""
    if n is None:
        return list(enumerate(tape.exchanges))
    if not 0 <= n < len(tape.exchanges):
        raise _no_such(tape.path, n, len(tape.exchanges))
    return [(n, tape.exchanges[n])]


def one(tape: Tape, n: int) -> Exchange:
    """Exchange number ``n`` (a ``TapeError`` when the tape has none)."""
    ((_, exchange),) = select(tape, n)
    return exchange


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
