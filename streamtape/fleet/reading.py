"""What one worker process does: read a batch of tapes and return their rows, column by column.

A batch is read in one call (a process pool pays its per-task cost once per batch, not per tape). A local
tape is opened where it is; a batch of remote tapes is fetched in one concurrent ``cat`` and opened from a
temporary file. Every tape ends one of four ways, none of them an exception out of the batch:

- ``indexed``: its rows are in the batch's columns (a tape cut mid-write too: it is read up to the cut,
  and exchanges without an end have outcome ``incomplete``);
- ``unreadable``: not a tape, or damaged beyond reading, or it broke the analysis: the index remembers it
  with the reason, and reads it again only once it changes;
- ``failed``: the storage failed to deliver it, or a newer streamtape wrote it: reported, not remembered,
  so the next run tries again;
- ``vanished``: deleted or moved between the listing and the read (retention, ``streamtape upload``).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from typing import Any, Literal

from ..analysis.outline import OutlineBuilder
from ..errors import CorruptTapeError, NotATapeError, TapeError
from ..storage.reader import read_into
from .rows import NAMES, tape_rows

Kind = Literal["indexed", "unreadable", "failed", "vanished"]


@dataclass
class TapeResult:
    key: str
    kind: Kind
    exchanges: int = 0
    #: Why it is unreadable or failed; for an indexed tape, how it is incomplete (None: it is whole).
    reason: str | None = None


@dataclass
class BatchResult:
    """The rows of a batch's tapes as columns (``rows.NAMES``), and how each tape ended."""

    columns: dict[str, list[Any]] = field(default_factory=lambda: {name: [] for name in NAMES})
    tapes: list[TapeResult] = field(default_factory=list)


def _add(result: BatchResult, key: str, path: str, *, local: bool) -> None:
    """Open the tape at ``path`` (``key`` in the index) and add its rows, or say why not."""
    try:
        builder = OutlineBuilder(path=path, diagnose=True)  # one pass, holding no body
        tape = builder.outline(*read_into(builder, path, max_bytes=None))
        rows = tape_rows(tape, key)
    except (NotATapeError, CorruptTapeError) as exc:  # what the file holds is bad: remembered
        result.tapes.append(TapeResult(key, "unreadable", reason=exc.reason))
        return
    except TapeError as exc:  # it could not be read (gone, no permission), or a newer streamtape wrote it
        if local and not os.path.exists(path):
            result.tapes.append(TapeResult(key, "vanished"))
        else:
            result.tapes.append(TapeResult(key, "failed", reason=exc.reason))
        return
    except Exception as exc:  # a bug in the analysis must not stop the other 9,999 tapes
        result.tapes.append(
            TapeResult(key, "unreadable", reason=f"cannot be indexed: {type(exc).__name__}: {exc}")
        )
        return
    columns = result.columns
    for row in rows:
        for name in NAMES:
            columns[name].append(row[name])
    problem = (tape.problem or "cut short") if tape.incomplete else None
    result.tapes.append(TapeResult(key, "indexed", exchanges=len(rows), reason=problem))


def read_batch(fs: Any | None, batch: list[tuple[str, str]]) -> BatchResult:
    """Rows of the tapes in ``batch`` (``(key, path)`` pairs); ``fs`` is None for local files."""
    result = BatchResult()
    if fs is None:
        for key, path in batch:
            _add(result, key, path, local=True)
        return result
    try:
        fetched = fs.cat([path for _, path in batch], on_error="return")
    except Exception as exc:  # the store failed the whole batch: every tape is tried again next run
        result.tapes.extend(
            TapeResult(key, "failed", reason=str(exc) or type(exc).__name__) for key, _ in batch
        )
        return result
    with tempfile.TemporaryDirectory(prefix="streamtape-index-") as scratch:
        local = os.path.join(scratch, "tape")
        for key, path in batch:
            data = fetched.get(path, FileNotFoundError(path))
            if isinstance(data, FileNotFoundError):
                result.tapes.append(TapeResult(key, "vanished"))
                continue
            if isinstance(data, BaseException):
                result.tapes.append(TapeResult(key, "failed", reason=str(data) or type(data).__name__))
                continue
            with open(local, "wb") as f:
                f.write(data)
            _add(result, key, local, local=False)
    return result


__all__ = ["BatchResult", "TapeResult", "read_batch"]
