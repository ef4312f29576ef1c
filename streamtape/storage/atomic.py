"""Writing a whole tape at once, atomically: a temporary file renamed over the target once synced.

What ``Tape.save`` and ``streamtape compact`` use; the appending writer that recorders use is ``writer``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable

from ..format.codec import compress_frame, encode_record, new_compressor
from ..format.records import Record
from ..model import StrPath

_SAVE_FRAME_SIZE = 4 << 20


def write_tape(path: StrPath, records: Iterable[Record], *, level: int = 19) -> None:
    """Write ``records`` as a new tape at ``path`` in frames of up to 4 MiB: atomically, mode 0600."""
    compressor = new_compressor(level)
    target = os.fspath(path)
    tmp = f"{target}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), 0o600)
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
