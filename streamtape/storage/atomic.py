"""Writing whole files atomically, never through a link: a temporary file renamed (or linked) into place.

``write_tape`` is what ``Tape.save`` and ``streamtape compact`` use; recorders append with ``tapefile``. The
bytes come from the same ``TapeEncoder`` as a recorder's, with a block flushed after every exchange's end,
so a copy of the file cut anywhere still reads back every exchange that ended before the cut.

Every temporary file is made by ``create_temp``: in the target's directory (so the rename is atomic), under
an unpredictable name, created exclusively (``O_EXCL``) and never through a symbolic link (``O_NOFOLLOW``),
mode 0600. A link or a file planted at a temporary name therefore never makes a save write anywhere but a
file of its own; a failure removes the temporary file.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterable

from ..format.encoder import TapeEncoder
from ..format.records import End, Record
from ..model import StrPath

_WRITE_AT = 1 << 20
_TEMP_FLAGS = (
    os.O_WRONLY
    | os.O_CREAT
    | os.O_EXCL
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)
_TEMP_ATTEMPTS = 100


def _token() -> str:
    """The unpredictable part of a temporary file's name (64 random bits)."""
    return secrets.token_hex(8)


def create_temp(target: str) -> tuple[int, str]:
    """A new, empty file beside ``target`` for writing: ``(fd, path)``, path ``.<name>.<random>.tmp``.

    Created exclusively and without following links, mode 0600; a name already taken (by anything: a
    file, a link, a directory) is skipped for another. Raises ``OSError`` (``FileExistsError`` only if
    every attempt met a taken name).
    """
    directory, name = os.path.split(target)
    for _ in range(_TEMP_ATTEMPTS):
        path = os.path.join(directory, f".{name}.{_token()}.tmp")
        try:
            return os.open(path, _TEMP_FLAGS, 0o600), path
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {target} after {_TEMP_ATTEMPTS} attempts")


def _sync_directory(path: str) -> None:
    """Make a rename in ``path``'s directory durable, where the platform allows it."""
    with contextlib.suppress(OSError):
        fd = os.open(os.path.dirname(path) or ".", os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_tape(path: StrPath, records: Iterable[Record], *, level: int = 19) -> None:
    """Write ``records`` as a new tape at ``path``: atomically, mode 0600.

    ``path`` itself is replaced, never written through: a symbolic link there is replaced by the tape.
    """
    encoder = TapeEncoder(level=level)
    target = os.fspath(path)
    fd, tmp = create_temp(target)
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
    _sync_directory(target)


def create_exclusive(path: StrPath, data: bytes) -> bool:
    """Create the file ``path`` holding ``data``, mode 0600, only if nothing is there: False if something is.

    Readers never see it part-written: the data goes to a temporary file that is then hard-linked to
    ``path`` (which fails if ``path`` exists, link or not). Where hard links are refused, ``path`` is created
    with ``O_EXCL | O_NOFOLLOW`` and written in place. Raises ``OSError`` on other failures.
    """
    target = os.fspath(path)
    fd, tmp = create_temp(target)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, target)
        except FileExistsError:
            return False
        except OSError:  # a file system without hard links: create the file itself exclusively
            try:
                out = os.open(target, _TEMP_FLAGS, 0o600)
            except FileExistsError:
                return False
            with os.fdopen(out, "wb") as f:
                f.write(data)
        return True
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
