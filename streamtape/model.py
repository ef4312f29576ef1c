"""The tape object model: ``Tape``, ``Exchange``, ``Chunks``, and building them from records. Sans-IO.

Everything that reads a tape (replay, analysis, reports) works on these types, never on files; reading
and writing files is ``streamtape.storage``. Records become exchanges through one builder
(``TapeBuilder``) that checks them against the lifecycle table, and an exchange's chunks are a read-only
``Chunks`` sequence, so that how chunks are stored can change without touching the code that reads them.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import Enum
from io import BytesIO
from itertools import chain, repeat
from os import PathLike
from typing import Protocol, overload

from .errors import CorruptTapeError
from .format.lifecycle import LifecycleError, Phase, advance
from .format.records import Chunk, End, Gap, Header, Record, Request, Response

StrPath = str | PathLike[str]


#: An exchange of up to this many chunks keeps each chunk's bytes as read (a replay hands them out as they
#: are, and a few thousand chunks cost at most a few hundred KB more); a longer one is stored in pages.
WHOLE_CHUNKS = 4096
#: Pages of chunk bytes are about this size: few objects, and a bounded copy while building.
PAGE_BYTES = 1 << 20


class Chunks(Sequence[Chunk]):
    """An exchange's chunks, in arrival order, read-only. Build one with ``Chunks(iterable)``.

    Stored compactly rather than as three Python objects a chunk: each chunk's time, end offset and size in
    arrays (20 bytes a chunk), and the bytes as read for an exchange of up to ``WHOLE_CHUNKS`` chunks, else
    joined into pages of about ``PAGE_BYTES`` (whole chunks), so a long stream costs its body bytes plus 20
    bytes a chunk. Indexing and iterating make ``Chunk`` records on the fly; ``times``, ``datas()`` and
    ``joined()`` are the fast ways through.
    """

    __slots__ = ("_ends", "_firsts", "_longest", "_pages", "_sizes", "_times", "_whole", "_x")
    _pages: list[bytes]  # one per chunk when ``_whole``
    _whole: bool
    _firsts: array[int]  # the index of each page's first chunk
    _ends: array[int]  # each chunk's end offset in the body
    _sizes: array[int]  # each chunk's size (4 bytes: a record is at most 64 MiB), for the fast ``datas()``
    _times: array[int]
    _longest: int  # the longest wait between two chunks, in nanoseconds (0 for fewer than two)
    _x: int | array[int]  # the exchange id, or one per chunk when they differ

    def __init__(self, chunks: Iterable[Chunk] = ()) -> None:
        builder = ChunksBuilder()
        for chunk in chunks:
            builder.add(chunk.x, chunk.t_ns, chunk.data)
        builder.fill(self)

    @property
    def times(self) -> array[int]:
        """Each chunk's time in nanoseconds from the request (do not change it)."""
        return self._times

    @property
    def nbytes(self) -> int:
        """The bytes of all chunks."""
        return self._ends[-1] if self._ends else 0

    def joined(self) -> bytes:
        """All chunks' bytes, joined."""
        return self._pages[0] if len(self._pages) == 1 else b"".join(self._pages)

    @property
    def longest_wait_ns(self) -> int:
        """The longest wait between two consecutive chunks (0 for fewer than two): known without a pass."""
        return self._longest

    def datas(self) -> Iterator[bytes]:
        """Each chunk's bytes, in order (read from each page by C-level calls: the replay's hot path)."""
        pages, sizes, firsts = self._pages, self._sizes, self._firsts
        if self._whole:
            return iter(pages)
        if len(pages) == 1:
            return map(BytesIO(pages[0]).read, sizes)
        return chain.from_iterable(
            map(BytesIO(page).read, sizes[firsts[p] : firsts[p + 1] if p + 1 < len(firsts) else len(sizes)])
            for p, page in enumerate(pages)
        )

    def _x_of(self, index: int) -> int:
        return self._x if isinstance(self._x, int) else self._x[index]

    @overload
    def __getitem__(self, index: int) -> Chunk: ...
    @overload
    def __getitem__(self, index: slice) -> Chunks: ...
    def __getitem__(self, index: int | slice) -> Chunk | Chunks:
        if isinstance(index, slice):
            return Chunks(self[i] for i in range(*index.indices(len(self))))
        n = len(self._times)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError("chunk index out of range")
        if self._whole:
            return Chunk(self._x_of(index), self._times[index], self._pages[index])
        ends = self._ends
        p = bisect_right(self._firsts, index) - 1
        first = self._firsts[p]
        base = ends[first - 1] if first else 0
        start = ends[index - 1] if index else 0
        return Chunk(self._x_of(index), self._times[index], self._pages[p][start - base : ends[index] - base])

    def __len__(self) -> int:
        return len(self._times)

    def __iter__(self) -> Iterator[Chunk]:
        if isinstance(self._x, int):
            return map(Chunk, repeat(self._x), self._times, self.datas())
        return map(Chunk, self._x, self._times, self.datas())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Chunks):
            return (
                self._times == other._times
                and self._sizes == other._sizes
                and list(map(self._x_of, range(len(self)))) == list(map(other._x_of, range(len(other))))
                and self.joined() == other.joined()
            )
        if isinstance(other, Sequence):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Chunks({len(self)} chunks, {self.nbytes} bytes)"


class ChunksBuilder:
    """Chunks appended one by one (a reader's hot path), then ``build()``: the one way ``Chunks`` are made."""

    __slots__ = (
        "_count",
        "_ends",
        "_firsts",
        "_longest",
        "_pages",
        "_pending",
        "_pending_bytes",
        "_sizes",
        "_times",
        "_total",
        "_whole",
        "_x",
    )

    def __init__(self) -> None:
        self._pages: list[bytes] = []
        self._firsts = array("q")
        self._ends = array("q")
        self._sizes = array("I")
        self._times = array("q")
        self._longest = 0
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._total = 0
        self._count = 0  # chunks in sealed pages
        self._whole = True  # until the exchange has more than WHOLE_CHUNKS chunks
        self._x: int | array[int] | None = None

    def add(self, x: int, t_ns: int, data: bytes) -> None:
        if x != self._x:
            self._mixed(x)
        times = self._times
        if times and t_ns - times[-1] > self._longest:
            self._longest = t_ns - times[-1]
        times.append(t_ns)
        self._sizes.append(len(data))
        self._total += len(data)
        self._ends.append(self._total)
        self._pending.append(data)
        self._pending_bytes += len(data)
        if self._whole:
            if len(times) > WHOLE_CHUNKS:
                self._to_pages()
        elif self._pending_bytes >= PAGE_BYTES:
            self._seal()
        if type(self._x) is array:
            self._x.append(x)

    def _mixed(self, x: int) -> None:
        """The first chunk sets the exchange id; chunks of several ids (a hand-built list) keep one each."""
        if self._x is None:
            self._x = x
        elif isinstance(self._x, int):
            self._x = array("q", repeat(self._x, len(self._times)))

    @property
    def last_ns(self) -> int | None:
        return self._times[-1] if self._times else None

    def ended(self, parts: ExchangeParts) -> None:
        pass

    def __len__(self) -> int:
        return len(self._times)

    def _to_pages(self) -> None:
        whole, self._pending, self._pending_bytes, self._whole = self._pending, [], 0, False
        for data in whole:
            self._pending.append(data)
            self._pending_bytes += len(data)
            if self._pending_bytes >= PAGE_BYTES:
                self._seal()

    def _seal(self) -> None:
        if self._pending:
            self._firsts.append(self._count)
            self._pages.append(self._pending[0] if len(self._pending) == 1 else b"".join(self._pending))
            self._count += len(self._pending)
            self._pending, self._pending_bytes = [], 0

    def fill(self, chunks: Chunks) -> None:
        if self._whole:
            self._pages = self._pending
        else:
            self._seal()
        chunks._whole = self._whole
        chunks._pages, chunks._firsts, chunks._ends, chunks._sizes, chunks._times = (
            self._pages,
            self._firsts,
            self._ends,
            self._sizes,
            self._times,
        )
        chunks._longest = self._longest
        chunks._x = 0 if self._x is None else self._x

    def build(self) -> Chunks:
        chunks = Chunks.__new__(Chunks)
        self.fill(chunks)
        return chunks


def no_end(x: int, last_ns: int) -> End:
    """What ``Exchange.end`` says of an exchange the tape holds no end for: "incomplete", at its last record."""
    return End(x, last_ns, "incomplete", None, "the tape holds no end for this exchange")


class Keep(Enum):
    """The default of ``Exchange.replace``'s ``recorded_end``: keep it (None means remove it)."""

    KEEP = "keep"


@dataclass(frozen=True)
class Exchange:
    """One request and what came back: the response head, the chunks, and how it ended.

    ``segment`` counts the recording sessions appended to one tape (0 for the first); ``id`` is unique within
    a segment. ``start_ns`` is the request's time from the segment's start; chunk times count from the request.
    ``recorded_end`` is the end record, or None when the tape holds none (``end`` then says "incomplete").
    Derive a changed exchange with ``dataclasses.replace`` (or ``Exchange.replace``): exchanges never change.
    """

    segment: int
    id: int
    request: Request
    response: Response | None = None
    chunks: Chunks = field(default_factory=Chunks)
    recorded_end: End | None = None
    #: Where the recorder lost records (format 1.1): a damaged exchange is missing data at each gap.
    gaps: tuple[Gap, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.chunks, Chunks):  # a list of Chunk, stored the one way
            object.__setattr__(self, "chunks", Chunks(self.chunks))

    @property
    def start_ns(self) -> int:
        return self.request.t_ns

    @property
    def damaged(self) -> bool:
        """Whether records of this exchange were lost: by the recorder, or with a frame missing from the file."""
        return bool(self.gaps)

    @property
    def end(self) -> End:
        """How the exchange ended; ``outcome == "incomplete"`` when the tape holds no end for it."""
        if self.recorded_end is not None:
            return self.recorded_end
        times = self.chunks.times
        return no_end(self.id, times[-1] if times else (self.response.t_ns if self.response else 0))

    @property
    def body(self) -> bytes:
        """The response body as received: the chunks joined (still content-encoded, if it was)."""
        return self.chunks.joined()

    def replace(
        self,
        *,
        response: Response | None = None,
        chunks: Iterable[Chunk] | None = None,
        recorded_end: End | Keep | None = Keep.KEEP,
    ) -> Exchange:
        """A copy with some parts changed; ``recorded_end=None`` removes the end (an "incomplete" exchange)."""
        return Exchange(
            self.segment,
            self.id,
            self.request,
            self.response if response is None else response,
            self.chunks if chunks is None else chunks if isinstance(chunks, Chunks) else Chunks(chunks),
            self.recorded_end if recorded_end is Keep.KEEP else recorded_end,
            self.gaps,
        )

    def records(self) -> Iterator[Record]:
        yield self.request
        if self.response is not None:
            yield self.response
        if self.gaps:  # gaps go back before the first chunk recorded after them
            chunks = list(self.chunks)
            at = 0
            for gap in self.gaps:
                while at < len(chunks) and chunks[at].t_ns <= gap.t_ns:
                    yield chunks[at]
                    at += 1
                yield gap
            yield from chunks[at:]
        else:
            yield from self.chunks
        if self.recorded_end is not None:
            yield self.recorded_end


@dataclass
class Tape:
    """A whole tape in memory: its header, its exchanges in request order, and whether it was cut short.

    ``exchanges[n]`` is exchange number ``n`` everywhere (``info`` shows it, ``-x N`` selects it).
    ``segments`` holds each recording session's header; ``header`` is the first.
    ``incomplete`` says the tape does not hold everything that was recorded (cut short, frames missing or
    repeated, exchanges without an end), ``problem`` how, in one line; ``damage`` lists each place where
    the file's frames are missing or repeated (empty for a tape that is merely cut).
    """

    header: Header
    exchanges: list[Exchange]
    incomplete: bool = False
    problem: str | None = None
    path: str | None = None
    segments: list[Header] = field(default_factory=list)
    damage: list[str] = field(default_factory=list)

    def records(self) -> Iterator[Record]:
        """Every record, each segment's header then its exchanges' records, exchange by exchange."""
        for segment, header in enumerate(self.segments or [self.header]):
            yield header
            for exchange in self.exchanges:
                if exchange.segment == segment:
                    yield from exchange.records()

    def save(self, path: StrPath) -> None:
        """Write this tape to ``path`` (atomically, mode 0600), grouped by exchange in large frames."""
        from .storage.atomic import write_tape  # the model itself never touches files

        write_tape(path, self.records())


class ChunkSink(Protocol):
    """Where a ``TapeBuilder`` puts an exchange's chunks: a ``ChunksBuilder`` keeps them; a one-pass reader
    (``analysis.outline``) diagnoses or counts them instead."""

    def add(self, x: int, t_ns: int, data: bytes) -> None: ...

    def ended(self, parts: ExchangeParts) -> None:
        """The exchange's end record arrived: no more chunks (a diagnosis can finish and let go)."""

    @property
    def last_ns(self) -> int | None: ...

    def build(self) -> Chunks: ...


class ExchangeParts:
    """An exchange being assembled from its records, phase by phase."""

    __slots__ = ("chunks", "end", "gaps", "id", "phase", "request", "response", "segment")

    def __init__(self, segment: int, request: Request) -> None:
        self.segment, self.id, self.request = segment, request.x, request
        self.phase = advance(Phase.NEW, "request")
        self.response: Response | None = None
        self.chunks: ChunkSink = ChunksBuilder()
        self.end: End | None = None
        self.gaps: list[Gap] = []

    def last_ns(self) -> int:
        """The time of the latest record so far (from the request)."""
        last = self.chunks.last_ns
        if last is not None:
            return last
        return self.response.t_ns if self.response is not None else 0

    def build(self) -> Exchange:
        return Exchange(
            self.segment,
            self.id,
            self.request,
            self.response,
            self.chunks.build(),
            self.end,
            tuple(self.gaps),
        )


def exchange_order(segment: int, request: Request) -> tuple[int, int, int]:
    """The sort key that numbers exchanges: by segment, then request time, then id."""
    return (segment, request.t_ns, request.x)


#: Damage messages a tape keeps (a hostile file may have millions); the rest are counted in ``problem``.
_MAX_DAMAGE = 100


class TapeBuilder:
    """Records in (in file order), a ``Tape`` out. Out-of-order records are a ``CorruptTapeError``.

    ``damaged`` tells it, between two records, that the reader found frames missing (``lost``) or repeated
    there. Each exchange then open is marked with a gap (an unknown number of its records are lost), and
    for the rest of the segment a record that no longer fits its exchange's lifecycle (its request, head or
    end was in a missing frame) is dropped and counted (``dropped``) rather than an error.
    """

    def __init__(
        self, *, path: str | None = None, sink: Callable[[ExchangeParts], ChunkSink] | None = None
    ) -> None:
        """``sink`` makes where each exchange's chunks go (default: a ``ChunksBuilder``, which keeps them)."""
        self.path = path
        self._sink = sink
        self.segments: list[Header] = []
        self.damage: list[str] = []
        self.dropped = 0
        self._all: list[ExchangeParts] = []
        self._current: dict[int, ExchangeParts] = {}
        self._index = 0
        self._lost = False  # records of this segment are missing: lifecycle breaks are damage, not errors

    def damaged(self, message: str, *, lost: bool) -> None:
        """Frames are missing (``lost``) or repeated at this point of the tape; ``message`` says where."""
        if len(self.damage) < _MAX_DAMAGE:
            self.damage.append(message)
        if not lost or not self.segments:
            return
        self._lost = True
        reason = f"{message}: an unknown number of records lost"
        for parts in self._current.values():
            if parts.end is None:
                parts.gaps.append(Gap(parts.id, parts.last_ns(), 0, 0, reason))

    def dropped_message(self) -> str:
        return (
            f"{self.dropped} records after missing frames were dropped (their exchange's request, head or end "
            f"was in a missing frame)"
        )

    def _drop(self, index: int, why: str) -> None:
        if not self._lost:
            raise CorruptTapeError(f"record #{index}{why}", path=self.path)
        self.dropped += 1

    def add(self, record: Record) -> None:
        index = self._index
        self._index += 1
        if type(record) is Chunk:  # the hot path: a chunk of an exchange that is streaming
            found = self._current.get(record.x)
            if found is not None and found.phase is Phase.STREAMING:
                found.chunks.add(record.x, record.t_ns, record.data)
                return
        if isinstance(record, Header):
            self.segments.append(record)
            self._current = {}
            self._lost = False
            return
        if not self.segments:
            raise CorruptTapeError(f"record #{index} comes before the header", path=self.path)
        if isinstance(record, Request):
            if record.x in self._current:
                return self._drop(index, f": exchange {record.x} has two requests")
            parts = ExchangeParts(len(self.segments) - 1, record)
            if self._sink is not None:
                parts.chunks = self._sink(parts)
            self._current[record.x] = parts
            self._all.append(parts)
            return
        kind = record.__struct_config__.tag
        found = self._current.get(record.x)
        if found is None:
            return self._drop(index, f" ({kind}) names exchange {record.x}, which has no request")
        try:
            found.phase = advance(found.phase, kind)  # type: ignore[arg-type]
        except LifecycleError as exc:
            return self._drop(index, f": exchange {found.id} {exc}")
        if isinstance(record, Chunk):
            found.chunks.add(record.x, record.t_ns, record.data)
        elif isinstance(record, Response):
            found.response = record
        elif isinstance(record, Gap):
            found.gaps.append(record)
        else:
            found.end = record
            found.chunks.ended(found)

    def ordered(self) -> list[ExchangeParts]:
        """The exchanges, numbered as ``Tape.exchanges`` numbers them (a ``CorruptTapeError`` without a header)."""
        if not self.segments:
            raise CorruptTapeError("the tape holds no header", path=self.path)
        return sorted(self._all, key=lambda p: exchange_order(p.segment, p.request))

    def all_damage(self) -> list[str]:
        return [*self.damage, self.dropped_message()] if self.dropped else list(self.damage)

    def build(self) -> Tape:
        parts = self.ordered()
        return Tape(
            self.segments[0],
            [p.build() for p in parts],
            path=self.path,
            segments=self.segments,
            damage=self.all_damage(),
        )


def build_tape(records: Iterable[Record], *, path: str | None = None) -> Tape:
    """Group records into exchanges (see ``TapeBuilder``)."""
    builder = TapeBuilder(path=path)
    for record in records:
        builder.add(record)
    return builder.build()
