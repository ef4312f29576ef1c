"""The tape object model, and reading tapes from files.

``iter_records`` streams a tape of any size record by record; ``open_tape`` reads one whole and groups its
records into exchanges. Both raise ``TapeError`` subclasses whose messages name the file.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from os import PathLike

from .codec import TapeDecoder, compress_frame, encode_record, new_compressor
from .errors import CorruptTapeError, TapeError
from .records import Chunk, End, Header, Record, Request, Response

_READ_SIZE = 1 << 20
_SAVE_FRAME_SIZE = 4 << 20

StrPath = str | PathLike[str]


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


@dataclass
class Exchange:
    """One request and what came back: the response head, the chunks, and how it ended.

    ``segment`` counts the recording sessions appended to one tape (0 for the first); ``id`` is unique within
    a segment. ``start_ns`` is the request's time from the segment's start; chunk times count from the request.
    """

    segment: int
    id: int
    request: Request
    response: Response | None = None
    chunks: list[Chunk] = field(default_factory=list)
    _end: End | None = None

    @property
    def start_ns(self) -> int:
        return self.request.t_ns

    @property
    def end(self) -> End:
        """How the exchange ended; ``outcome == "incomplete"`` when the tape holds no end for it."""
        if self._end is not None:
            return self._end
        last = self.chunks[-1].t_ns if self.chunks else (self.response.t_ns if self.response else 0)
        return End(self.id, last, "incomplete", None, "the tape holds no end for this exchange")

    @property
    def body(self) -> bytes:
        """The response body as received: the chunks joined (still content-encoded, if it was)."""
        return b"".join(c.data for c in self.chunks)

    def records(self) -> Iterator[Record]:
        yield self.request
        if self.response is not None:
            yield self.response
        yield from self.chunks
        if self._end is not None:
            yield self._end


@dataclass
class Tape:
    """A whole tape in memory: its header, its exchanges in request order, and whether it was cut short."""

    header: Header
    exchanges: list[Exchange]
    incomplete: bool = False
    problem: str | None = None
    path: str | None = None
    segments: list[Header] = field(default_factory=list)

    def records(self) -> Iterator[Record]:
        """Every record, each segment's header then its exchanges' records, exchange by exchange."""
        for segment, header in enumerate(self.segments or [self.header]):
            yield header
            for exchange in self.exchanges:
                if exchange.segment == segment:
                    yield from exchange.records()

    def save(self, path: StrPath) -> None:
        """Write this tape to ``path`` (atomically, mode 0600), grouped by exchange in large frames."""
        write_tape(path, self.records())


def write_tape(path: StrPath, records: Iterable[Record], *, level: int = 19) -> None:
    """Write ``records`` as a new tape at ``path`` in frames of up to 4 MiB: atomically (a temporary file
    renamed over ``path`` once synced), mode 0600."""
    compressor = new_compressor(level)
    target = os.fspath(path)
    tmp = f"{target}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            buf = bytearray()
            for record in records:
                encode_record(record, buf)
                if len(buf) >= _SAVE_FRAME_SIZE:
                    f.write(compress_frame(compressor, buf))
                    buf.clear()
            if buf:
                f.write(compress_frame(compressor, buf))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def build_tape(records: Iterator[Record] | list[Record], *, path: str | None = None) -> Tape:
    """Group records into exchanges. Records of an unknown exchange id are a corrupt tape."""
    segments: list[Header] = []
    exchanges: list[Exchange] = []
    current: dict[int, Exchange] = {}
    for index, record in enumerate(records):
        if isinstance(record, Header):
            segments.append(record)
            current = {}
            continue
        if not segments:
            raise CorruptTapeError(f"record #{index} comes before the header", path=path)
        if isinstance(record, Request):
            if record.x in current:
                raise CorruptTapeError(f"record #{index}: exchange {record.x} has two requests", path=path)
            exchange = Exchange(len(segments) - 1, record.x, record)
            current[record.x] = exchange
            exchanges.append(exchange)
            continue
        exchange = current.get(record.x)  # type: ignore[union-attr]
        if exchange is None:
            raise CorruptTapeError(
                f"record #{index} ({type(record).__name__.lower()}) names exchange {record.x}, which has no request",  # type: ignore[union-attr]
                path=path,
            )
        if exchange._end is not None:
            raise CorruptTapeError(
                f"record #{index}: exchange {exchange.id} continues after its end", path=path
            )
        if isinstance(record, Chunk):
            if exchange.response is None:
                raise CorruptTapeError(
                    f"record #{index}: exchange {exchange.id} has a chunk before its response", path=path
                )
            exchange.chunks.append(record)
        elif isinstance(record, Response):
            if exchange.response is not None or exchange.chunks:
                raise CorruptTapeError(
                    f"record #{index}: exchange {exchange.id} has a second response head", path=path
                )
            exchange.response = record
        elif isinstance(record, End):
            exchange._end = record
    exchanges.sort(key=lambda e: (e.segment, e.request.t_ns, e.id))
    return Tape(segments[0], exchanges, path=path, segments=segments)


def open_tape(path: StrPath) -> Tape:
    """Read the tape at ``path``.

    A tape cut short (a process killed mid-stream, a partial download) opens with every complete record
    and ``incomplete=True``; a damaged, foreign or newer-version file raises ``TapeError``.

    >>> tape = open_tape("bug-1234.tape")
    >>> [(e.request.url, e.end.outcome) for e in tape.exchanges]
    """
    stream = iter_records(path)
    records = list(stream)
    tape = build_tape(records, path=stream.path)
    if any(e._end is None for e in tape.exchanges) and not stream.incomplete:
        stream.problem = "some exchanges have no end (the recorder stopped before they finished)"
        stream.incomplete = True
    tape.incomplete, tape.problem = stream.incomplete, stream.problem
    return tape
