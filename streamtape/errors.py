"""Every exception streamtape raises on purpose, in one place.

::

    TapeError                    a tape cannot be read or used as asked (``path``, ``offset`` say where)
    ├── NotATapeError            empty, not zstd, or no streamtape header first
    ├── TapeVersionError         a newer major format version than this reader understands
    ├── CorruptTapeError         bad zstd data, a failed checksum, a malformed record, records out of order
    │   └── TapeLimitError       over a hard limit that keeps a reader's time and memory bounded
    ├── TapeMismatch             replay: the tape holds no (unserved) exchange for a live request
    ├── TapeMissingError         replay only (``mode="none"``), and there is no tape to replay
    └── FaultError               a fault cannot apply to a tape as asked (``streamtape.faults``)

Every message names the file (when there is one) and says what is wrong, because these errors are read by
someone holding a tape from a bug report, not by the code that wrote it. The sans-IO layers know byte
offsets but not file names; the layer that opened the file adds its name with ``with_path``.

Transports never raise these into a client's request for recording problems (recording is observation
only); a replay transport raises ``TapeMismatch`` for a request it cannot answer, and the client's own
library's exception classes for what the tape recorded.
"""

from __future__ import annotations

from os import PathLike
from typing import Self


class TapeError(Exception):
    """A tape cannot be read or used as asked. ``path`` and ``offset`` say where, when known."""

    def __init__(
        self, message: str, *, path: str | PathLike[str] | None = None, offset: int | None = None
    ) -> None:
        self.reason = message
        self.path = None if path is None else str(path)
        self.offset = offset
        super().__init__(f"{self.path}: {message}" if self.path else message)

    def with_path(self, path: str | PathLike[str]) -> Self:
        """The same error, now naming ``path`` (the sans-IO decoder does not know file names)."""
        return type(self)(self.reason, path=path, offset=self.offset)


class NotATapeError(TapeError):
    """The file is empty, or is not a zstd stream, or does not start with a streamtape header."""


class TapeVersionError(TapeError):
    """The tape was written in a newer major format version than this reader understands."""


class CorruptTapeError(TapeError):
    """A frame or record is damaged: bad zstd data, a failed checksum, a malformed record."""


class TapeLimitError(CorruptTapeError):
    """A record or frame is over the hard limits that keep a reader's memory bounded."""


class TapeMismatch(TapeError):
    """The tape cannot answer a request: nothing like it was recorded, or every match was already served."""


class TapeMissingError(TapeError):
    """Replay only was asked (``use_tape(mode="none")``, ``--tape-mode=none``) and the tape does not exist."""


class FaultError(TapeError):
    """A fault cannot apply to a tape as asked (``streamtape.faults``): a chunk past the end, no body, ..."""

    def __init__(self, fault: str, tape: object, reason: str) -> None:
        self.fault = fault
        super().__init__(f"fault {fault}: {reason}", path=getattr(tape, "path", None))

    def with_path(self, path: str | PathLike[str]) -> FaultError:
        error = FaultError(self.fault, None, self.reason.removeprefix(f"fault {self.fault}: "))
        error.path = str(path)
        return error
