"""An exclusive, non-blocking lock on an open tape file, where the platform has one.

POSIX ``flock`` keeps two processes from appending to one tape. Where ``fcntl`` does not exist (Windows)
or the file system refuses locks, locking degrades to nothing: recording still works, unguarded.
"""

from __future__ import annotations

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


class LockHeld(Exception):
    """Another process holds the lock."""


def lock_exclusive(fd: int) -> bool:
    """Take the lock without waiting. True when held, False when locking is unavailable here.

    Raises ``LockHeld`` when another process has it.
    """
    if fcntl is None:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise LockHeld from None
    except OSError:
        return False  # a file system without locks: carry on
    return True
