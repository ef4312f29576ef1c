"""Byte edits, applied to one byte string or across a sequence of chunks without moving chunk boundaries
in time. Sans-IO.

A response body is a sequence of chunks, each with its own arrival time. An edit replaces bytes
``start:end`` of the joined body; applied to the chunks, its replacement goes into the chunk where the
edit starts and the rest of the replaced bytes leave the chunks that held them. So a secret split across
two chunks becomes its fingerprint in the first and disappears from the second, and there are exactly as
many chunks as before, at the same times (a chunk that held only the end of a secret may become empty).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True, order=True)
class Edit:
    """Replace bytes ``start:end`` (``end > start``) with ``replacement``."""

    start: int
    end: int
    replacement: bytes = field(compare=False)


def normalized(edits: Iterable[Edit], merge: Callable[[int, int], bytes]) -> list[Edit]:
    """The edits by position, none overlapping: an edit inside another is dropped (a field replaced whole
    holds a secret replaced on its own); edits that only partly overlap become one, replacing the bytes
    they cover together with ``merge(start, end)``."""
    out: list[Edit] = []
    for edit in sorted(edits, key=lambda e: (e.start, -e.end)):
        if out and edit.start < out[-1].end:
            last = out[-1]
            if edit.end > last.end:
                out[-1] = Edit(last.start, edit.end, merge(last.start, edit.end))
            continue
        out.append(edit)
    return out


def apply(data: bytes, edits: Sequence[Edit]) -> bytes:
    """``data`` with normalized ``edits`` made."""
    out = bytearray()
    at = 0
    for edit in edits:
        out += data[at : edit.start]
        out += edit.replacement
        at = edit.end
    out += data[at:]
    return bytes(out)


def apply_to_pieces(pieces: Sequence[bytes], edits: Sequence[Edit]) -> list[bytes]:
    """The pieces of ``b"".join(pieces)`` with normalized ``edits`` made, as many pieces as before: each
    replacement in the piece where its edit starts, the other bytes where they were."""
    data = b"".join(pieces)
    out: list[bytes] = []
    lo = i = 0
    for piece in pieces:
        hi = lo + len(piece)
        buf = bytearray()
        at = lo
        while i < len(edits) and edits[i].start < hi:
            edit = edits[i]
            if edit.start >= at:  # starts in this piece
                buf += data[at : edit.start]
                buf += edit.replacement
            at = max(at, min(edit.end, hi))
            if edit.end > hi:
                break  # goes on into the next piece
            i += 1
        buf += data[at:hi]
        out.append(bytes(buf))
        lo = hi
    return out
