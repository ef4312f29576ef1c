"""``streamtape index``: tapes under local paths and object-storage URLs into a Parquet dataset.

One run: list the tapes (``listing``), load the output's manifest and delete the parts an interrupted run
left, plan (``manifest.plan``: new and changed tapes are read, unchanged ones skipped), read the tapes in a
process pool in batches (``reading``), write their rows to new parts, rewrite the parts that held rows of
changed tapes without them, write the manifest, delete the parts it no longer lists. See ``manifest`` for
why every exchange has exactly one row in ``OUT/*.parquet`` once a run returns.

Several runs must not write one index at the same time (nothing locks it); readers may query it at any
time, and count a changed tape twice only while a run is between writing its parts and returning.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from . import FleetError, require
from .listing import Found, Listing, is_local, list_tapes, open_url
from .manifest import (
    MANIFEST_NAME,
    Entry,
    Manifest,
    Part,
    decode,
    encode,
    is_part_name,
    part_name,
    parts_to_rewrite,
    plan,
)
from .reading import BatchResult, TapeResult, read_batch
from .rows import NAMES, arrow_schema

#: Rows per part file at most: a run indexing more writes several parts.
ROWS_PER_PART = 1_000_000
#: Tapes per task: large enough that a task's cost (pickling, a round trip to a worker) is small against
#: reading its tapes, small enough that the workers share the work evenly and the progress bar moves.
MAX_BATCH = 200
#: Fewer tapes than this are read in this process: starting workers would cost more than it saves.
POOL_FROM = 64
_TEMP_SUFFIX = ".tmp"


@dataclass
class IndexReport:
    """What a run did."""

    indexed: int = 0
    exchanges: int = 0
    unchanged: int = 0
    #: ``(tape, reason)``: not tapes, or damaged beyond reading; remembered, read again once changed.
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    #: ``(tape, reason)``: the storage failed to deliver them; the next run tries again.
    failed: list[tuple[str, str]] = field(default_factory=list)
    vanished: int = 0
    #: ``.partial`` files seen and left alone.
    partial: int = 0
    #: Tapes indexed that were cut short or lost frames (their unfinished exchanges are ``incomplete``).
    incomplete: int = 0
    #: ``(tape, why)``: tapes indexed that hold no exchange at all (cut before the first one's records).
    empty: list[tuple[str, str]] = field(default_factory=list)
    #: Tapes indexed before that changed since: their old rows were replaced.
    replaced: int = 0
    #: Tapes no longer found: rows kept, unless ``prune`` dropped them (``pruned``).
    missing: int = 0
    pruned: int = 0
    parts_written: list[str] = field(default_factory=list)
    parts_rewritten: int = 0
    #: Parts left by an interrupted run (listed by no manifest), deleted.
    leftovers: int = 0


class _Store:
    """The output: a directory (local or object storage) of part files and the manifest."""

    def __init__(self, out: str, storage_options: Mapping[str, Any] | None) -> None:
        self.url = out
        self.fs, root = open_url(out, storage_options)
        self.root = root.rstrip("/") or root
        self.local = is_local(self.fs)
        if self.local:
            try:
                os.makedirs(self.root, exist_ok=True)
            except OSError as exc:
                raise FleetError(f"{out}: {exc.strerror or exc}") from None

    def path(self, name: str) -> str:
        return f"{self.root}/{name}"

    def load(self) -> Manifest:
        where = self.path(MANIFEST_NAME)
        try:
            data = self.fs.cat_file(where)
        except FileNotFoundError:
            return Manifest()
        except OSError as exc:
            raise FleetError(f"{self.url}: cannot read {MANIFEST_NAME}: {exc}") from None
        try:
            return decode(data)
        except ValueError as exc:
            raise FleetError(f"{self.url}/{MANIFEST_NAME}: {exc}") from None

    def save(self, manifest: Manifest) -> None:
        data = encode(manifest)
        where = self.path(MANIFEST_NAME)
        if self.local:  # a reader never sees half a manifest
            with open(where + _TEMP_SUFFIX, "wb") as f:
                f.write(data)
            os.replace(where + _TEMP_SUFFIX, where)
        else:  # an object store's PUT is atomic
            self.fs.pipe_file(where, data)

    def leftovers(self, manifest: Manifest) -> list[str]:
        """Part files (and temporary files) that no manifest lists: an interrupted run's."""
        self.fs.invalidate_cache(self.root)
        try:
            names = [os.path.basename(str(name).rstrip("/")) for name in self.fs.ls(self.root, detail=False)]
        except FileNotFoundError:
            return []
        return [
            name
            for name in names
            if (is_part_name(name) and name not in manifest.parts)
            or (name.startswith("part-") and name.endswith(_TEMP_SUFFIX))
        ]

    def write_part(self, table: Any) -> str:
        import pyarrow.parquet as pq

        name = part_name(datetime.now(UTC))
        where = self.path(name)
        if self.local:  # written beside, then renamed: `*.parquet` never matches a half-written part
            pq.write_table(table, where + _TEMP_SUFFIX, compression="zstd")
            os.replace(where + _TEMP_SUFFIX, where)
        else:
            pq.write_table(table, where, filesystem=self.fs, compression="zstd")
        return name

    def read_part(self, name: str) -> Any:
        import pyarrow.parquet as pq

        if self.local:
            return pq.read_table(self.path(name))
        return pq.read_table(self.path(name), filesystem=self.fs)

    def delete(self, names: Sequence[str]) -> None:
        for name in names:
            try:
                self.fs.rm_file(self.path(name))
            except FileNotFoundError:
                continue


class _PartWriter:
    """Rows gathered from batches, written out as parts of at most ``ROWS_PER_PART`` rows."""

    def __init__(self, store: _Store) -> None:
        self.store = store
        self.schema = arrow_schema()
        self.columns: dict[str, list[Any]] = {name: [] for name in NAMES}
        self.keys: list[str] = []
        self.rows = 0
        #: Each new part: its name, its rows, the tapes whose rows it holds.
        self.written: list[tuple[str, int, list[str]]] = []

    def add(self, batch: BatchResult) -> None:
        for name in NAMES:
            self.columns[name].extend(batch.columns[name])
        added = [result for result in batch.tapes if result.kind == "indexed" and result.exchanges]
        self.keys.extend(result.key for result in added)
        self.rows += sum(result.exchanges for result in added)
        if self.rows >= ROWS_PER_PART:
            self.flush()

    def flush(self) -> None:
        if not self.rows:
            return
        import pyarrow as pa

        table = pa.Table.from_pydict(self.columns, schema=self.schema)
        self.written.append((self.store.write_part(table), self.rows, self.keys))
        self.columns = {name: [] for name in NAMES}
        self.keys, self.rows = [], 0


def _cores() -> int:
    """The cores this process may run on (a container's CPU set, not the machine's)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def _context() -> Any:
    """Worker processes start from a fork server where there is one: a clean process (no inherited
    threads or sockets, the emulator's or s3fs's), with streamtape imported once, before the forks."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["streamtape.fleet.reading"])
        return context
    return multiprocessing.get_context("spawn")


def _batches(
    tapes: list[Found], jobs: int, batch_size: int | None
) -> list[tuple[Any | None, list[tuple[str, str]]]]:
    """Tapes in batches, each of one filesystem, about eight a worker (or ``batch_size`` tapes)."""
    size = batch_size or max(1, min(MAX_BATCH, -(-len(tapes) // (jobs * 8))))
    groups: dict[int, tuple[Any | None, list[tuple[str, str]]]] = {}
    for found in tapes:
        fs = None if found.local else found.fs
        groups.setdefault(id(fs), (fs, []))[1].append((found.key, found.path))
    return [(fs, pairs[at : at + size]) for fs, pairs in groups.values() for at in range(0, len(pairs), size)]


def _read(
    tapes: list[Found], jobs: int, batch_size: int | None, on_progress: Callable[[int], None] | None
) -> Iterator[BatchResult]:
    batches = _batches(tapes, jobs, batch_size)
    if jobs <= 1 or (len(tapes) < POOL_FROM and batch_size is None) or len(batches) < 2:
        for fs, batch in batches:
            result = read_batch(fs, batch)
            if on_progress is not None:
                on_progress(len(batch))
            yield result
        return
    with ProcessPoolExecutor(max_workers=min(jobs, len(batches)), mp_context=_context()) as pool:
        futures: list[Future[BatchResult]] = [pool.submit(read_batch, fs, batch) for fs, batch in batches]
        try:
            for future, (_, batch) in zip(futures, batches, strict=True):
                result = future.result()
                if on_progress is not None:
                    on_progress(len(batch))
                yield result
        except BrokenProcessPool:
            raise FleetError(
                "a worker process died while reading tapes (out of memory?); nothing was committed"
            ) from None
        finally:
            for future in futures:
                future.cancel()


def build_index(
    paths: Sequence[str],
    out: str,
    *,
    jobs: int | None = None,
    prune: bool = False,
    storage_options: Mapping[str, Any] | None = None,
    batch_size: int | None = None,
    on_start: Callable[[int], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> IndexReport:
    """Index the tapes under ``paths`` into the Parquet dataset ``out`` (see the module docstring).

    ``jobs``: worker processes (default: one per core); ``prune``: drop the rows of indexed tapes no longer
    found under ``paths``; ``storage_options``: passed to fsspec for every path and for ``out``;
    ``on_start(n)`` is called with the number of tapes to read, ``on_progress(k)`` as each ``k`` are read.
    """
    require("index", "pyarrow", "fsspec")
    jobs = jobs or _cores()
    listing = list_tapes(paths, storage_options)
    store = _Store(out, storage_options)
    manifest = store.load()
    report = IndexReport(partial=listing.partial)
    stale = store.leftovers(manifest)
    store.delete(stale)
    report.leftovers = len(stale)

    todo = plan({key: found.stamp for key, found in listing.tapes.items()}, manifest, prune=prune)
    report.unchanged, report.missing = todo.unchanged, len(todo.missing)
    if on_start is not None:
        on_start(len(todo.read))
    writer = _PartWriter(store)
    results: list[TapeResult] = []
    for batch in _read([listing.tapes[key] for key in todo.read], jobs, batch_size, on_progress):
        writer.add(batch)
        results.extend(batch.tapes)
    writer.flush()

    # The old rows that go: those of tapes read again (indexed, or now unreadable), and of pruned tapes. A
    # tape the storage failed to deliver, or that vanished, keeps its rows and its entry for now.
    settled = {r.key for r in results if r.kind in ("indexed", "unreadable")}
    pruned = set(todo.missing) if prune else set()
    drop = {key for key in todo.drop if key in settled or key in pruned}
    report.replaced = sum(1 for key in drop if key in settled)
    report.pruned = len(pruned)
    gone = _rewrite_parts(store, manifest, drop, report)
    _note_results(manifest, listing, writer.written, results, report)
    for key in pruned:
        manifest.tapes.pop(key, None)
    if results or gone or pruned:
        store.save(manifest)  # the commit
    store.delete(gone)
    return report


def _rewrite_parts(store: _Store, manifest: Manifest, drop: set[str], report: IndexReport) -> list[str]:
    """Each part holding rows of a tape in ``drop`` written again without them, under a new name; returns
    the old parts, to delete once the manifest no longer lists them."""
    import pyarrow as pa
    import pyarrow.compute as pc

    gone: list[str] = []
    dropped = pa.array(sorted(drop), pa.string())
    for old, staying in parts_to_rewrite(manifest, drop).items():
        gone.append(old)
        manifest.parts.pop(old, None)
        if not staying:
            continue
        table = store.read_part(old)
        kept = table.filter(pc.invert(pc.is_in(table["tape"], value_set=dropped)))
        name = store.write_part(kept)
        report.parts_rewritten += 1
        manifest.parts[name] = Part(kept.num_rows, len(staying), datetime.now(UTC).isoformat())
        for key in staying:
            manifest.tapes[key].part = name
    return gone


def _note_results(
    manifest: Manifest,
    listing: Listing,
    written: list[tuple[str, int, list[str]]],
    results: list[TapeResult],
    report: IndexReport,
) -> None:
    """The new parts and what became of each tape read, in the manifest and in the report."""
    now = datetime.now(UTC).isoformat()
    part_of: dict[str, str] = {}
    for name, rows, keys in written:
        manifest.parts[name] = Part(rows, len(keys), now)
        report.parts_written.append(name)
        part_of.update(dict.fromkeys(keys, name))
    for result in results:
        stamp = listing.tapes[result.key].stamp
        if result.kind == "indexed":
            report.indexed += 1
            report.exchanges += result.exchanges
            part = part_of.get(result.key)
            manifest.tapes[result.key] = Entry(stamp, part, result.exchanges, incomplete=result.reason)
            report.incomplete += result.reason is not None
            if not result.exchanges:
                report.empty.append((result.key, result.reason or "a header and no exchange"))
        elif result.kind == "unreadable":
            report.unreadable.append((result.key, result.reason or "unreadable"))
            manifest.tapes[result.key] = Entry(stamp, None, 0, result.reason or "unreadable")
        elif result.kind == "failed":
            report.failed.append((result.key, result.reason or "failed"))
        else:
            report.vanished += 1


__all__ = ["IndexReport", "build_index"]
