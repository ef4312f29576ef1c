"""One good recording as a robustness suite: ``matrix(tape)`` names every broken variant worth a test.

Re-chunkings (one byte at a time, and random cuts from a few seeds), the body cut cleanly after each event
and in the middle of each event (a proxy that closes politely), a reset in the middle of each event, and a
stall before the first token and in the middle of the stream. Each ``Variant`` is a tape; pytest takes its
``name`` as the test id::

    @pytest.mark.parametrize("variant", faults.matrix("tests/tapes/chat.tape"))
    def test_client_survives(variant):
        with variant.use():            # every httpx and httpx2 client answered from the variant
            ...
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import FaultError
from ..model import Exchange, StrPath, Tape
from .transforms import rechunk, stall, truncate

_LINE_END = re.compile(rb"\r\n|\r|\n")


@dataclass(frozen=True)
class Variant:
    """A named broken version of a tape."""

    name: str
    tape: Tape

    @property
    def __name__(self) -> str:  # what pytest shows as the parameter's id
        return self.name

    def use(self, **options: Any) -> Any:
        """Route every httpx and httpx2 client through this variant (replay only): ``with variant.use():``."""
        from ..transports.routing import use_tape

        return use_tape(self.tape, mode="none", **options)


def event_spans(body: bytes) -> list[tuple[int, int]]:
    """``(start, end)`` of each SSE event in ``body``, ``end`` just past the blank line that dispatches it."""
    spans: list[tuple[int, int]] = []
    start = previous = 0
    for m in _LINE_END.finditer(body):
        if m.start() == previous and m.start() > start:  # an empty line: the event ends here
            spans.append((start, m.end()))
            start = m.end()
        previous = m.end()
    return spans


def matrix(
    tape: Tape | StrPath,
    *,
    exchange: int | None = None,
    seeds: Sequence[int] = (0, 1, 2),
    stall_seconds: float = 120.0,
) -> list[Variant]:
    """Every variant of one exchange (``exchange``, default: the first with a streamed body)."""
    if not isinstance(tape, Tape):
        from ..storage.reader import open_tape

        tape = open_tape(tape)
    n = _choose(tape, exchange)
    e = tape.exchanges[n]
    out = [Variant("rechunk-1-byte", rechunk(tape, size=1, exchange=n))]
    out += [Variant(f"rechunk-seed-{s}", rechunk(tape, seed=s, exchange=n)) for s in seeds]
    body = e.body
    for i, (start, end) in enumerate(event_spans(body)):
        if end < len(body):
            out.append(
                Variant(f"cut-after-event-{i}", truncate(tape, after_bytes=end, error=None, exchange=n))
            )
        middle = (start + end) // 2
        out.append(
            Variant(f"cut-inside-event-{i}", truncate(tape, after_bytes=middle, error=None, exchange=n))
        )
        out.append(
            Variant(
                f"reset-inside-event-{i}", truncate(tape, after_bytes=middle, error="ReadError", exchange=n)
            )
        )
    first = _first_token_chunk(e)
    out.append(
        Variant("stall-before-first-token", stall(tape, at_chunk=first, seconds=stall_seconds, exchange=n))
    )
    middle_chunk = max(first + 1, len(e.chunks) // 2)
    if middle_chunk < len(e.chunks):
        out.append(
            Variant("stall-mid-stream", stall(tape, at_chunk=middle_chunk, seconds=stall_seconds, exchange=n))
        )
    return out


def _choose(tape: Tape, exchange: int | None) -> int:
    if exchange is not None:
        if not 0 <= exchange < len(tape.exchanges):
            raise FaultError("matrix", tape, f"no exchange #{exchange}: the tape has {len(tape.exchanges)}")
        if len(tape.exchanges[exchange].chunks) < 2:
            raise FaultError("matrix", tape, f"exchange #{exchange} has no streamed body to break")
        return exchange
    for n, e in enumerate(tape.exchanges):
        if len(e.chunks) >= 2:
            return n
    raise FaultError("matrix", tape, "no exchange has a streamed body to break")


def _first_token_chunk(e: Exchange) -> int:
    """The chunk that completed the first event carrying text or a tool call (0 when none is found)."""
    from ..analysis.diagnose import diagnose

    first = diagnose(e).first_token_ms
    if first is None:
        return 0
    for i, c in enumerate(e.chunks):
        if c.t_ns / 1e6 >= first - 1e-6:  # chunk times, like first_token_ms, count from the request
            return i
    return 0
