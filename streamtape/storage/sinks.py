"""Where recorded exchanges go: one tape file, a directory of tapes (one per exchange), or memory.

A sink is used by one thread (the recorder's writer thread) and may raise ``OSError`` / ``TapeError``;
the writer contains those (logs, counts, marks the exchanges damaged) so traffic never sees them.

- ``FileSink``: every exchange into one tape. The path may hold ``{pid}`` and ``{date}`` (UTC, YYYY-MM-DD),
  re-evaluated whenever no exchange is open, so ``{date}`` rotates daily. When another process already
  records to the path, this one says so (a warning) and records to ``<name>.<pid><suffix>`` beside it.
  ``max_bytes`` stops new exchanges once the file is that large. A tape deleted, renamed away or replaced
  while recording is noticed (before an exchange begins when none is open, else at most ``CHECK_EVERY_S``
  after a flush: one ``stat``), said once in the log, and recording goes on in a new file at the path: a
  new segment in which each exchange still open begins again with its request (and response) head and a
  ``gap`` record counting the chunks the old file got, so the new tape reads as damaged where it lacks
  them. A tape truncated under the writer (``copytruncate``) starts again from nothing in place.
- ``DirectorySink``: one tape per exchange, written as ``<time>-<pid>-<n>.partial`` (a crash leaves a cut
  tape that still opens) and renamed to ``<time>-<pid>-<n>-<status>-<outcome>.tape`` when the exchange
  ends, so ``ls`` sorts by time and shows how each ended. Any number of processes can share a directory.
  ``max_bytes`` / ``max_age`` delete the oldest tapes so the recorder never fills a disk. A directory
  deleted while recording is created again (0700) for the next exchange, and that is said once in the log.
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
from ..format.records import Chunk, End, Gap, Header, Record, Request, Response
from ..model import Tape, build_tape
from .tapefile import TapeBusy, TapeFile

logger = logging.getLogger("streamtape")

#: Compression for the directory sink's per-exchange tapes: a 128 KiB window keeps each open exchange's
#: compression context near 1 MiB, so many concurrent streams stay cheap.
_EXCHANGE_WINDOW_LOG = 17
_PRUNE_EVERY_S = 30.0
#: How often, at most, a flush checks that the tape's path still names the file being written.
CHECK_EVERY_S = 1.0
#: ``TapeFile.check()``'s findings, in words.
_HAPPENED = {
    "deleted": "deleted or renamed away",
    "replaced": "replaced by another file",
    "truncated": "truncated",
}
_GONE_REASON = "the tape file was {} while recording: this exchange's earlier chunks are in the old file"


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
        self._links: set[str] = set()  # paths that were symbolic links when recording to them began
        self.file = self._open(expand(template))
        self._full_reported = False
        #: The heads (request, then response) of each exchange with records in the file and no end yet:
        #: what a new file at the path must begin with for the rest of that exchange to be readable.
        self._heads: dict[int, list[Request | Response]] = {}
        #: Chunks of open exchanges that earlier files at the path got (``(count, bytes, last t_ns)``).
        self._missing: dict[int, tuple[int, int, int]] = {}
        #: Where in the file each open exchange's records begin, at the earliest (``TapeFile.record_floor``).
        self._since: dict[int, int] = {}
        self._check_at = time.monotonic() + CHECK_EVERY_S
        self._reopen_failed = False

    @property
    def path(self) -> str:
        return self.file.path

    @property
    def where(self) -> str:
        """What log lines name: the tape's path."""
        return self.file.path

    def _open(self, path: str, *, again: bool = False) -> TapeFile:
        """Open the tape at ``path``; ``again``: a new file where the old one was deleted or replaced, which
        follows a symbolic link only if the path was one when recording began."""
        directory = os.path.dirname(path)
        if directory and "{" in self.template:
            os.makedirs(directory, mode=0o700, exist_ok=True)
        if not again and os.path.islink(path):
            self._links.add(path)
        try:
            return TapeFile(
                path, self.header, level=self.level, follow_links=path in self._links or not again
            )
        except TapeBusy:
            other = _beside(path)
            logger.warning(
                "streamtape: another process is recording to %s; this process (pid %d) records to %s",
                path,
                os.getpid(),
                other,
            )
            return TapeFile(other, self.header, level=self.level, follow_links=False)

    @property
    def buffer(self) -> bytearray | None:
        return self.file.buffer

    def spill(self) -> None:
        self.file.spill()

    def write(self, records: list[Record]) -> None:
        heads = self._heads
        if not heads and (what := self.file.check()) is not None:
            self._replace(what)  # an exchange begins after a pause: never into a file no longer there
        floor = self.file.record_floor
        self.file.write(records)
        for record in records:
            if isinstance(record, Chunk):
                continue
            if isinstance(record, Request):
                heads[record.x] = [record]
                self._since[record.x] = floor
            elif isinstance(record, Response):
                if (held := heads.get(record.x)) is not None:
                    held.append(record)
            elif isinstance(record, End):
                heads.pop(record.x, None)
                self._missing.pop(record.x, None)
                self._since.pop(record.x, None)

    def flush(self) -> None:
        now = time.monotonic()
        if now >= self._check_at:
            self._check_at = now + CHECK_EVERY_S
            if (what := self.file.check()) is not None:
                self._replace(what)
        self.file.flush()

    def _replace(self, found: str) -> None:
        """The file at the path is no longer the one being written (``TapeFile.check``): go on in a new one
        at the path (or, truncated, in the same one from nothing), said once in the log."""
        old, what = self.file, _HAPPENED.get(found, found)
        if found == "truncated":
            old.restart(self.header)
            tally = None
        else:
            try:
                new = self._open(old.path, again=True)
            except (OSError, TapeError) as exc:
                if not self._reopen_failed:  # tried again at every check; said once
                    self._reopen_failed = True
                    logger.error(
                        "streamtape: %s was %s while recording and cannot be created again (%s: %s); "
                        "recording continues into the old file",
                        old.path,
                        what,
                        type(exc).__name__,
                        exc,
                    )
                return
            tally = None
            with contextlib.suppress(OSError, TapeError):
                old.end_frame()  # (into the old file: a rotated tape ends on a whole frame)
                streaming = {x for x, heads in self._heads.items() if len(heads) > 1}
                if streaming:
                    tally = old.tally(
                        streaming, min(self._since.get(x, old.segment_start) for x in streaming)
                    )
                else:
                    tally = {}
            with contextlib.suppress(OSError, TapeError):
                old.close()
            self.file = new
        self._reopen_failed = False
        logger.warning(
            "streamtape: %s was %s while recording; recording continues in a new tape there%s",
            old.path,
            what,
            f" ({len(self._heads)} exchange(s) in progress begin there without their earlier chunks)"
            if self._heads
            else "",
        )
        self._resume(what, tally)

    def _resume(self, what: str, tally: dict[int, tuple[int, int, int]] | None) -> None:
        """Begin each open exchange again in the new file: its heads, then a gap for the chunks it lacks."""
        records: list[Record] = []
        for x, heads in self._heads.items():
            records.extend(heads)
            self._since[x] = self.file.segment_start
            if len(heads) < 2:
                continue  # no response head yet: no chunk can be missing
            n, nbytes, t_ns = (tally or {}).get(x, (0, 0, 0))
            before_n, before_bytes, before_t = self._missing.get(x, (0, 0, 0))
            missing = (before_n + n, before_bytes + nbytes, max(before_t, t_ns, heads[1].t_ns))
            self._missing[x] = missing
            if tally is not None and not missing[0]:
                continue  # it had no chunk yet: nothing is missing
            reason = _GONE_REASON.format(what)
            if tally is None:
                reason += " (how many is unknown)"
            records.append(Gap(x, missing[2], missing[0], missing[1], reason))
        if records:
            self.file.write(records)

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
        """No exchange is open: notice a deleted tape; end the frame; follow a template to its next path."""
        self._heads.clear()  # (an exchange whose end could not be written is over, too)
        self._missing.clear()
        self._since.clear()
        self._check_at = time.monotonic() + CHECK_EVERY_S
        if (what := self.file.check()) is not None:
            self._replace(what)
        self.file.end_frame()
        wanted = expand(self.template)
        if wanted != self.file.path and wanted != _beside(self.file.path) and "{" in self.template:
            self.file.close()
            self.file = self._open(wanted)

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
        self._vanished_reported = False
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
        try:
            tape = self._create(f"{stem}.partial", header)
        except FileNotFoundError:
            if os.path.isdir(self.directory):
                raise
            os.makedirs(self.directory, mode=0o700, exist_ok=True)  # deleted while recording: again
            if not self._vanished_reported:
                self._vanished_reported = True
                logger.warning(
                    "streamtape: the directory %s was deleted while recording; it was created again "
                    "(exchanges in progress then are lost)",
                    self.directory,
                )
            tape = self._create(f"{stem}.partial", header)
        try:
            tape.write([msgspec.structs.replace(request, t_ns=0)])
        except BaseException:
            tape.close()
            raise
        self._open[request.x] = (tape, stem)

    def _create(self, path: str, header: Header) -> TapeFile:
        return TapeFile(path, header, level=self.level, window_log=_EXCHANGE_WINDOW_LOG, create_only=True)

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
        try:
            entries = os.scandir(self.directory)
        except FileNotFoundError:
            return []  # deleted: created again for the next exchange
        with entries:
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
