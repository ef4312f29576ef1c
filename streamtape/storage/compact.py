"""``streamtape compact``: rewrite a closed tape at a high compression level, as an explicit step.

Recording never compacts (closing a client costs milliseconds whatever the tape's size); a tape meant
for archiving or attaching can be made smaller afterwards, typically 1.2-2x. Records and their order are
unchanged; the rewrite is atomic and keeps the crash-safe shape (a block flushed after every exchange).
"""

from __future__ import annotations

import os

from ..errors import TapeError
from ..format.records import FORMAT_MAJOR, FORMAT_MINOR, MAX_HELD_RECORDS, Header
from ..model import StrPath
from .atomic import write_tape
from .reader import iter_records


def compact(path: StrPath, *, level: int = 19, output: StrPath | None = None) -> int:
    """Rewrite the tape at ``path`` (or into ``output``) at ``level``; returns the new size in bytes.

    Refuses a cut or damaged tape (``TapeError``: compaction would drop what a reader flags), and a tape
    with segments from a newer minor version (their unknown records would be lost).
    """
    stream = iter_records(path, max_records=MAX_HELD_RECORDS)  # held whole: the model's cap, not the stream's
    records = list(stream)
    if stream.incomplete:
        raise TapeError(f"not compacting an incomplete tape: {stream.problem}", path=os.fspath(path))
    newer = [r for r in records if isinstance(r, Header) and tuple(r.version) > (FORMAT_MAJOR, FORMAT_MINOR)]
    if newer:
        raise TapeError(
            f"not compacting: a segment was written in format {newer[0].version[0]}.{newer[0].version[1]} "
            f"by {newer[0].writer}, whose records this version would drop",
            path=os.fspath(path),
        )
    target = output if output is not None else path
    write_tape(target, records, level=level)
    return os.path.getsize(target)
