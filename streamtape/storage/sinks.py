"""Where recorded exchanges go: one tape file, a directory of tapes (one per exchange), or memory.

A sink is used by one thread (the recorder's writer thread) and may raise ``OSError`` / ``TapeError``;
the writer contains those (logs, counts, marks the exchanges damaged) so traffic never sees them.

- ``FileSink``: every exchange into one tape. The path may hold ``{pid}`` and ``{date}`` (UTC, YYYY-MM-DD),
  re-evaluated whenever no exchange is open, so ``{date}`` rotates daily. When another process already
  records to the path, this one says so (a warning) and records to ``<name>.<pid><suffix>`` beside it.
  ``max_bytes`` stops new exchanges once the file is that large.
- ``DirectorySink``: one tape per exchange, written as ``<time>-<pid>-<n>.partial`` (a crash leaves a cut
  tape that still opens) and renamed to ``<time>-<pid>-<n>-<status>-<outcome>.tape`` when the exchange
  ends, so ``ls`` sorts by time and shows how each ended. Any number of processes can share a directory.
  ``max_bytes`` / ``max_age`` delete the oldest tapes so the recorder never fills a disk.
- ``MemorySink``: records kept in a list (tests, the pytest plugin).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

import msgspec

from ..errors import TapeError
from ..format.records import End, Header, Record, Request, Response
from ..model import Tape, build_tape
from .tapefile import TapeBusy, TapeFile

logger = logging.getLogger("streamtape")

#: Compression for the directory sink's per-exchange tapes: a 128 KiB window keeps each open exchange's
#: compression context near 1 MiB, so many concurrent streams stay cheap.
_EXCHANGE_WINDOW_LOG = 17
_PRUNE_EVERY_S = 30.0


class Sink(Protocol):
    """What the writer thread writes into.

    ``buffer`` (or None) is a bytearray into which the writer may append encoded records directly, its
    hot path for chunks; ``spill()`` is called now and then while it does, to bound memory.
    """

    @property
    def buffer(self) -> bytearray | None: ...
    def spill(self) -> None: ...
    def write(self, records: list[Record]) -> None: ...
    def flush(self) -> None: ...
    def idle(self) -> None: ...
    def accepts(self) -> bool: ...
    def close(self) -> None: ...


def expand(template: str, now: float | None = None) -> str:
    """A path template with ``{pid}`` and ``{date}`` filled in."""
    if "{" not in template:
        return template
    date = datetime.fromtimestamp(time.time() if now is None else now, UTC).strftime("%Y-%m-%d")
    return template.replace("{pid}", str(os.getpid())).replace("{date}", date)


def _beside(path: str) -> str:
    """Where a process records when another process holds ``path``: ``name.<pid>.tape`` next to it."""
    stem, suffix = os.path.splitext(path)
    return f"{stem}.{os.getpid()}{suffix or '.tape'}"


class FileSink:
    """Every exchange into one tape file (see the module docstring)."""

    def __init__(
        self, template: str, header: Header, *, max_bytes: int | None = None, level: int = 3
    ) -> None:
        self.template = template
        self.header = header
        self.max_bytes = max_bytes
        self.level = level
        self.file = self._open(expand(template))
        self._full_reported = False

    @property
    def path(self) -> str:
        return self.file.path

    @property
    def where(self) -> str:
        """What log lines name: the tape's path."""
        return self.file.path

    def _open(self, path: str) -> TapeFile:
        directory = os.path.dirname(path)
        if directory and "{" in self.template:
            os.makedirs(directory, mode=0o700, exist_ok=True)
        try:
            return TapeFile(path, self.header, level=self.level)
        except TapeBusy:
            other = _beside(path)
            logger.warning(
                "streamtape: another process is recording to %s; this process (pid %d) records to %s",
                path,
                os.getpid(),
                other,
            )
            return TapeFile(other, self.header, level=self.level)

    @property
    def buffer(self) -> bytearray | None:
        return self.file.buffer

    def spill(self) -> None:
        self.file.spill()

    def write(self, records: list[Record]) -> None:
        self.file.write(records)

    def flush(self) -> None:
        self.file.flush()

    def accepts(self) -> bool:
        if self.max_bytes is None or self.file.size < self.max_bytes:
            return True
        if not self._full_reported:
            self._full_reported = True
            logger.error(
                "streamtape: %s reached max_bytes (%d); later exchanges are not recorded",
                self.path,
                self.max_bytes,
            )
        return False

    def idle(self) -> None:
        """No exchange is open: end the frame; follow a template to its next path; notice a deleted tape."""
        self.file.end_frame()
        wanted = expand(self.template)
        moved = self.file.moved()
        if wanted != self.file.path and wanted != _beside(self.file.path) and "{" in self.template:
            self.file.close()
            self.file = self._open(wanted)
        elif moved:
            logger.error(
                "streamtape: %s was deleted or replaced while recording; recording continues in a new file there",
                self.file.path,
            )
            path = self.file.path
            self.file.close()
            self.file = self._open(path)

    def close(self) -> None:
        self.file.close()


class DirectorySink:
    """One tape per exchange in a directory (see the module docstring)."""

    def __init__(
        self,
        directory: str,
        header: Header,
        *,
        max_bytes: int | None = None,
        max_age: float | None = None,
        level: int = 3,
    ) -> None:
        self.directory = self.where = directory
        self.header = header
        self.max_bytes = max_bytes
        self.max_age = max_age
        self.level = level
        os.makedirs(directory, mode=0o700, exist_ok=True)
        self._open: dict[int, tuple[TapeFile, str]] = {}  # exchange id -> (file, name stem)
        self._status: dict[int, int] = {}
        self._total = self._scan_size() if max_bytes is not None else 0
        self._pruned_at = 0.0
        self.prune()

    def _stem(self, request: Request) -> str:
        wall = (self.header.started_unix_ns + request.t_ns) / 1e9
        stamp = datetime.fromtimestamp(wall, UTC).strftime("%Y%m%dT%H%M%S.%f")
        return os.path.join(self.directory, f"{stamp}Z-{os.getpid()}-{request.x:06d}")

    buffer = None  # records go to one file per exchange: no shared buffer

    def spill(self) -> None:
        pass

    def write(self, records: list[Record]) -> None:
        for record in records:
            if isinstance(record, Request):
                self._begin(record)
                continue
            entry = self._open.get(record.x)  # type: ignore[union-attr]
            if entry is None:
                continue  # its file could not be opened: that failure was raised already
            entry[0].write([record])
            if isinstance(record, Response):
                self._status[record.x] = record.status_code
            elif isinstance(record, End):
                self._finish(record)

    def _begin(self, request: Request) -> None:
        stem = self._stem(request)
        header = msgspec.structs.replace(
            self.header, started_unix_ns=self.header.started_unix_ns + request.t_ns
        )
        tape = TapeFile(
            f"{stem}.partial", header, level=self.level, window_log=_EXCHANGE_WINDOW_LOG, create_only=True
        )
        try:
            tape.write([msgspec.structs.replace(request, t_ns=0)])
        except BaseException:
            tape.close()
            raise
        self._open[request.x] = (tape, stem)

    def _finish(self, end: End) -> None:
        tape, stem = self._open.pop(end.x)
        status = self._status.pop(end.x, 0)
        try:
            tape.close()
        finally:
            final = f"{stem}-{status:03d}-{end.outcome}.tape"
            os.replace(tape.path, final)
            self._total += tape.size
            if self.max_bytes is not None and self._total > self.max_bytes:
                self.prune()

    def flush(self) -> None:
        failure: BaseException | None = None
        for tape, _ in list(self._open.values()):
            try:
                tape.flush()
            except (OSError, TapeError) as exc:
                failure = failure or exc
        if failure is not None:
            raise failure

    def accepts(self) -> bool:
        return True

    def idle(self) -> None:
        if self.max_age is not None and time.monotonic() - self._pruned_at > _PRUNE_EVERY_S:
            self.prune()

    def _tapes(self) -> list[tuple[str, os.stat_result]]:
        """The finished tapes (and stale ``.partial`` ones) in the directory, oldest name first."""
        found = []
        with os.scandir(self.directory) as entries:
            for entry in entries:
                if entry.name.endswith((".tape", ".partial")) and entry.is_file(follow_symlinks=False):
                    try:
                        found.append((entry.path, entry.stat(follow_symlinks=False)))
                    except FileNotFoundError:
                        continue  # another process pruned it
        found.sort(key=lambda item: os.path.basename(item[0]))
        return found

    def _scan_size(self) -> int:
        return sum(info.st_size for _, info in self._tapes())

    def prune(self) -> None:
        """Delete the oldest tapes past ``max_age``, then until the directory is under ``max_bytes``."""
        if self.max_bytes is None and self.max_age is None:
            return
        self._pruned_at = time.monotonic()
        mine = {tape.path for tape, _ in self._open.values()}
        tapes = self._tapes()
        total = sum(info.st_size for _, info in tapes)
        cutoff = time.time() - self.max_age if self.max_age is not None else None
        for path, info in tapes:
            too_old = cutoff is not None and info.st_mtime < cutoff
            too_big = self.max_bytes is not None and total > self.max_bytes
            live = path in mine or (path.endswith(".partial") and not too_old)  # another writer's open tape
            if live or not (too_old or too_big):
                continue
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            total -= info.st_size
        self._total = total

    def close(self) -> None:
        for tape, _ in list(self._open.values()):
            tape.close()  # left as .partial: the exchange never ended
        self._open.clear()


class MemorySink:
    """Records kept in memory, in order; ``tape()`` builds the ``Tape``."""

    buffer = None
    where = "memory"

    def __init__(self, header: Header) -> None:
        self.records: list[Record] = [header]

    def spill(self) -> None:
        pass

    def write(self, records: list[Record]) -> None:
        self.records.extend(records)

    def flush(self) -> None:
        pass

    def idle(self) -> None:
        pass

    def accepts(self) -> bool:
        return True

    def close(self) -> None:
        pass

    def tape(self) -> Tape:
        return build_tape(list(self.records))


SinkFactory = Callable[[Header], Sink]
