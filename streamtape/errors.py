"""The exceptions streamtape raises for bad input.

Every message names the file (when there is one) and says what is wrong, because these errors are
read by someone holding a tape from a bug report, not by the code that wrote it.
"""

from __future__ import annotations

from os import PathLike


class TapeError(Exception):
    """A tape cannot be read or used as asked. ``path`` and ``offset`` say where, when known."""

    def __init__(self, message: str, *, path: str | PathLike[str] | None = None, offset: int | None = None):
        self.reason = message
        self.path = None if path is None else str(path)
        self.offset = offset
        super().__init__(f"{self.path}: {message}" if self.path else message)

    def with_path(self, path: str | PathLike[str]) -> TapeError:
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
