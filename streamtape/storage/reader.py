"""Reading tapes from files: ``iter_records`` streams one record by record, ``open_tape`` reads it whole.

Both raise ``TapeError`` subclasses whose messages name the file; the sans-IO decoder underneath
(``format.codec.TapeDecoder``) knows only byte offsets.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

from ..errors import TapeError
from ..format.codec import TapeDecoder
from ..format.records import Record
from ..model import StrPath, Tape, TapeBuilder

_READ_SIZE = 1 << 20


@dataclass
class RecordStream:
    """Records of a tape read lazily; ``incomplete`` and ``problem`` are known once it is exhausted."""

    path: str
    incomplete: bool = False
    problem: str | None = None
    good_end: int = 0

    def __iter__(self) -> Iterator[Record]:
        decoder = TapeDecoder()
        try:
            with open(self.path, "rb") as f:
                while data := f.read(_READ_SIZE):
                    yield from decoder.feed(data)
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


def iter_records(path: StrPath) -> RecordStream:
    """Iterate the records of the tape at ``path`` without loading it whole.

    >>> stream = iter_records("run.tape")
    >>> chunks = sum(isinstance(r, Chunk) for r in stream)
    >>> stream.incomplete
    False
    """
    return RecordStream(os.fspath(path))


def open_tape(path: StrPath) -> Tape:
    """Read the tape at ``path``.

    A tape cut short (a process killed mid-stream, a partial download) opens with every complete record
    and ``incomplete=True``; a damaged, foreign or newer-version file raises ``TapeError``.

    >>> tape = open_tape("bug-1234.tape")
    >>> [(e.request.url, e.end.outcome) for e in tape.exchanges]
    """
    stream = iter_records(path)
    builder = TapeBuilder(path=stream.path)
    for record in stream:
        builder.add(record)
    tape = builder.build()
    if any(e.recorded_end is None for e in tape.exchanges) and not stream.incomplete:
        stream.problem = "some exchanges have no end (the recorder stopped before they finished)"
        stream.incomplete = True
    tape.incomplete, tape.problem = stream.incomplete, stream.problem
    return tape
