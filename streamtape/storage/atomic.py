"""Writing a whole tape at once, atomically: a temporary file renamed over the target once synced.

What ``Tape.save`` and ``streamtape compact`` use; recorders append with ``tapefile``. The bytes come from
the same ``TapeEncoder`` as a recorder's, with a block flushed after every exchange's end, so a copy of the
file cut anywhere still reads back every exchange that ended before the cut.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable

from ..format.encoder import TapeEncoder
from ..format.records import End, Record
from ..model import StrPath

_WRITE_AT = 1 << 20


def write_tape(path: StrPath, records: Iterable[Record], *, level: int = 19) -> None:
    """Write ``records`` as a new tape at ``path``: atomically, mode 0600."""
    encoder = TapeEncoder(level=level)
    target = os.fspath(path)
    tmp = f"{target}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            for record in records:
                encoder.add(record)
                if isinstance(record, End):
                    f.write(encoder.flush())
                elif encoder.buffered >= _WRITE_AT:
                    f.write(encoder.take())
            f.write(encoder.end_frame())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
