"""Reading tapes from files: ``iter_records`` streams one record by record, ``open_tape`` reads it whole.

Both raise ``TapeError`` subclasses whose messages name the file; the sans-IO decoder underneath
(``format.codec.TapeDecoder``) knows only byte offsets. Both bound what a hostile file can cost:
``iter_records`` holds one block's records at a time and stops at ``max_records``; ``open_tape`` holds the
whole tape, so it stops sooner, at ``max_records`` records or ``max_bytes`` bytes of record content.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from ..errors import TapeError
from ..format.codec import Damage, TapeDecoder
from ..format.records import MAX_HELD_BYTES, MAX_HELD_RECORDS, MAX_RECORDS, MAX_TIME_NS, Record
from ..model import StrPath, Tape, TapeBuilder

_READ_SIZE = 1 << 20


@dataclass
class RecordStream:
    """Records of a tape read lazily; ``incomplete``, ``problem`` and ``good_end`` are known once it is
    exhausted. ``damage`` lists the places where frames are missing or repeated as they are found (each
    before the records that follow it); ``on_damage`` is called with each.

    Records come out as each block decompresses: those of a frame whose checksum then fails have been
    yielded before the ``CorruptTapeError`` (a reader that must have all or nothing collects them first,
    as ``open_tape`` does).
    """

    path: str
    max_records: int | None = MAX_RECORDS
    max_time_ns: int = MAX_TIME_NS
    max_bytes: int | None = None
    on_damage: Callable[[Damage], None] | None = field(default=None, repr=False)
    incomplete: bool = False
    problem: str | None = None
    good_end: int = 0
    damage: list[Damage] = field(default_factory=list)

    def __iter__(self) -> Iterator[Record]:
        decoder = TapeDecoder(
            streaming=True,
            max_records=self.max_records,
            max_content=self.max_bytes,
            max_time_ns=self.max_time_ns,
            on_damage=self.on_damage,
        )
        self.damage = decoder.damage
        try:
            with open(self.path, "rb") as f:
                while data := f.read(_READ_SIZE):
                    yield from decoder.feed_iter(data)
            yield from decoder.finish()
        except TapeError as exc:
            raise exc.with_path(self.path) from None
        except IsADirectoryError:
            raise TapeError("is a directory, not a tape", path=self.path) from None
        except FileNotFoundError:
            raise TapeError("no such file", path=self.path) from None
        except OSError as exc:
            raise TapeError(f"cannot read: {exc.strerror or exc}", path=self.path) from None
        self.incomplete, self.problem, self.good_end = decoder.incomplete, decoder.problem, decoder.good_end


def iter_records(
    path: StrPath, *, max_records: int | None = MAX_RECORDS, max_time_ns: int = MAX_TIME_NS
) -> RecordStream:
    """Iterate the records of the tape at ``path`` without loading it whole (memory stays flat).

    ``max_records`` caps the records read (``TapeLimitError`` past it; None: no cap), ``max_time_ns`` the
    times recorded within an exchange (a ``CorruptTapeError`` past it: a day by default).

    >>> stream = iter_records("run.tape")
    >>> chunks = sum(isinstance(r, Chunk) for r in stream)
    >>> stream.incomplete
    False
    """
    return RecordStream(os.fspath(path), max_records=max_records, max_time_ns=max_time_ns)


def open_tape(
    path: StrPath,
    *,
    max_records: int | None = MAX_HELD_RECORDS,
    max_bytes: int | None = MAX_HELD_BYTES,
    max_time_ns: int = MAX_TIME_NS,
) -> Tape:
    """Read the tape at ``path``.

    A tape cut short (a process killed mid-stream, a partial download) opens with every complete record
    and ``incomplete=True``; so does a tape whose frames are missing or repeated (``damage`` says where;
    each exchange open across a missing frame gets a gap naming it). A damaged, foreign or newer-version
    file raises ``TapeError``, and so does one past the caps on what is held in memory: ``max_records``
    records, ``max_bytes`` bytes of record content (``TapeLimitError``; None lifts a cap; ``iter_records``
    streams a tape of any size). ``max_time_ns`` caps the times within an exchange (a day by default).

    >>> tape = open_tape("bug-1234.tape")
    >>> [(e.request.url, e.end.outcome) for e in tape.exchanges]
    """
    builder = TapeBuilder(path=os.fspath(path))
    incomplete, problem = read_into(
        builder, path, max_records=max_records, max_bytes=max_bytes, max_time_ns=max_time_ns
    )
    tape = builder.build()
    tape.incomplete, tape.problem = incomplete, problem
    return tape


def read_into(
    builder: TapeBuilder,
    path: StrPath,
    *,
    max_records: int | None = MAX_HELD_RECORDS,
    max_bytes: int | None = MAX_HELD_BYTES,
    max_time_ns: int = MAX_TIME_NS,
) -> tuple[bool, str | None]:
    """Every record of the tape at ``path`` into ``builder`` (``open_tape``'s reading, for builders that keep
    less); then whether the tape is incomplete, and how, in one line."""
    stream = RecordStream(
        os.fspath(path),
        max_records=max_records,
        max_bytes=max_bytes,
        max_time_ns=max_time_ns,
        on_damage=lambda damage: builder.damaged(damage.message, lost=damage.lost),
    )
    add = builder.add
    for record in stream:
        add(record)
    incomplete, problem = stream.incomplete, stream.problem
    if builder.dropped:
        incomplete = True
        problem = f"{problem}; {builder.dropped_message()}" if problem else builder.dropped_message()
    if not incomplete and any(p.end is None for p in builder.ordered()):
        problem = "some exchanges have no end (the recorder stopped before they finished)"
        incomplete = True
    return incomplete, problem
