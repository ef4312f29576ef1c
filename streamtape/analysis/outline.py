"""A tape read in one pass, keeping no chunk bytes: what ``info``, ``diagnose`` and ``compare`` need. Sans-IO.

Why: ``open_tape`` holds every body, and a flight recorder's 200 MB tape should not need 200 MB to be
looked at. Records go through the same ``TapeBuilder`` as ``open_tape`` (the same lifecycle checks, damage
and numbering; ``storage.reader.read_into`` feeds it from a file), but each exchange's chunks go into a
sink that counts them, or diagnoses them as they arrive (``Diagnoser``): memory grows with the assembled
text and 8 bytes a chunk, not with the body.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import TapeError
from ..format.records import End, Gap, Header, Request, Response
from ..model import Chunks, ChunksBuilder, ChunkSink, Exchange, ExchangeParts, TapeBuilder, no_end
from .diagnose import Diagnoser, Diagnostics


@dataclass(frozen=True)
class Outline:
    """One exchange without its body: its records' heads, its chunks counted, and (when asked) its diagnosis."""

    segment: int
    id: int
    request: Request
    response: Response | None
    end: End
    gaps: tuple[Gap, ...]
    chunks: int
    bytes: int
    first_chunk_ns: int | None
    diagnostics: Diagnostics | None = None

    @property
    def damaged(self) -> bool:
        return bool(self.gaps)

    @classmethod
    def of(cls, exchange: Exchange, diagnostics: Diagnostics | None = None) -> Outline:
        """The outline of an exchange already in memory."""
        times = exchange.chunks.times
        return cls(
            exchange.segment,
            exchange.id,
            exchange.request,
            exchange.response,
            exchange.end,
            exchange.gaps,
            len(times),
            exchange.chunks.nbytes,
            times[0] if times else None,
            diagnostics,
        )


@dataclass
class TapeOutline:
    """A tape's headers and its exchanges' outlines, numbered as ``Tape.exchanges`` numbers them."""

    header: Header
    exchanges: list[Outline]
    incomplete: bool = False
    problem: str | None = None
    path: str | None = None
    segments: list[Header] = field(default_factory=list)
    damage: list[str] = field(default_factory=list)


class _Counting:
    """A chunk sink that keeps only the count, the bytes and the first and last times."""

    __slots__ = ("bytes", "count", "first_ns", "last_ns")

    def __init__(self) -> None:
        self.count = self.bytes = 0
        self.first_ns: int | None = None
        self.last_ns: int | None = None

    def add(self, x: int, t_ns: int, data: bytes) -> None:
        if self.first_ns is None:
            self.first_ns = t_ns
        self.last_ns = t_ns
        self.count += 1
        self.bytes += len(data)

    def build(self) -> Chunks:
        return Chunks()

    def ended(self, parts: ExchangeParts) -> None:
        pass


class _Diagnosing(_Counting):
    """A chunk sink that diagnoses the exchange as its chunks arrive (the head precedes them on a tape)."""

    __slots__ = ("diagnoser", "parts", "result")

    def __init__(self, parts: ExchangeParts) -> None:
        super().__init__()
        self.parts = parts
        self.diagnoser: Diagnoser | None = None
        self.result: Diagnostics | None = None

    def _started(self) -> Diagnoser:
        if self.diagnoser is None:
            self.diagnoser = Diagnoser(self.parts.request)
            if self.parts.response is not None:
                self.diagnoser.head(self.parts.response)
        return self.diagnoser

    def add(self, x: int, t_ns: int, data: bytes) -> None:
        super().add(x, t_ns, data)
        self._started().chunk(t_ns, data)

    def ended(self, parts: ExchangeParts) -> None:
        """Diagnose now, and drop the diagnoser: a tape of many exchanges holds one body window at a time."""
        assert parts.end is not None
        self.finish(parts.end, parts.gaps)

    def finish(self, end: End, gaps: list[Gap]) -> Diagnostics:
        if self.result is None:
            diagnoser = self._started()
            for gap in gaps:
                diagnoser.gap(gap)
            self.result, self.diagnoser = diagnoser.finish(end), None
        return self.result


class OutlineBuilder(TapeBuilder):
    """A ``TapeBuilder`` that keeps no chunk bytes: each exchange's chunks are counted, or diagnosed as they
    arrive (``diagnose``), except the one exchange ``keep=(segment, id)`` names, which is kept whole."""

    def __init__(
        self, *, path: str | None = None, diagnose: bool = False, keep: tuple[int, int] | None = None
    ) -> None:
        def sink(parts: ExchangeParts) -> ChunkSink:
            if (parts.segment, parts.id) == keep:
                return ChunksBuilder()
            return _Diagnosing(parts) if diagnose else _Counting()

        super().__init__(path=path, sink=sink)

    def kept(self) -> Exchange:
        """The exchange ``keep`` named, with its chunks (a ``TapeError`` when the tape has none such)."""
        for parts in self.ordered():
            if isinstance(parts.chunks, ChunksBuilder):
                return parts.build()
        raise TapeError("no such exchange", path=self.path)

    def outline(self, incomplete: bool, problem: str | None) -> TapeOutline:
        """The tape's outline, once every record was added (``incomplete`` and ``problem`` from the reader)."""
        outlines = []
        for parts in self.ordered():
            counted = parts.chunks
            if not isinstance(counted, _Counting):  # the exchange ``keep`` named: its chunks are whole
                outlines.append(Outline.of(parts.build()))
                continue
            end = parts.end if parts.end is not None else no_end(parts.id, parts.last_ns())
            diagnostics = counted.finish(end, parts.gaps) if isinstance(counted, _Diagnosing) else None
            outlines.append(
                Outline(
                    parts.segment,
                    parts.id,
                    parts.request,
                    parts.response,
                    end,
                    tuple(parts.gaps),
                    counted.count,
                    counted.bytes,
                    counted.first_ns,
                    diagnostics,
                )
            )
        return TapeOutline(
            self.segments[0], outlines, incomplete, problem, self.path, self.segments, self.all_damage()
        )


__all__ = ["Outline", "OutlineBuilder", "TapeOutline"]
