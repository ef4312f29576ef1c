"""``streamtape upload``: finished tapes moved from a recorder's directory to object storage (fsspec).

Only ``*.tape`` files move: a directory recorder writes each exchange as ``.partial`` and renames it
``.tape`` once the exchange has ended, so a ``.tape`` is never written again and a ``.partial`` is never
touched. That makes it safe to run while recorders write into the directory (a ``.partial`` renamed
during the run is taken by the next run) and from cron on any number of pods.

The directory is searched recursively and each tape keeps its path relative to it (``DIR/chat/x.tape``
goes to ``URL/chat/x.tape``): a pod often runs one recorder directory per service under one root, and
relative paths keep equal file names from different directories apart. Symbolic links are not followed.

Each tape is uploaded, its size read back from the store and compared with the local file's, and only
then is the local file deleted (``keep``: never). A tape already in the store with the same size is not
sent again, so an interrupted run is simply run again; one of another size is replaced (a local tape is
final: the remote one is an interrupted copy).
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

from . import FleetError, require
from .listing import PARTIAL_SUFFIX, TAPE_SUFFIX, is_local, open_url

#: Uploads in flight at once: object stores answer each request in tens of milliseconds.
THREADS = 8

Moved = Literal["moved", "already", "vanished", "failed"]


@dataclass
class UploadReport:
    moved: int = 0
    bytes: int = 0
    #: Already in the store with the same size (a run after an interrupted one): not sent again.
    already: int = 0
    #: ``.partial`` files seen and left alone.
    partial: int = 0
    #: Deleted or renamed away by another process between the listing and the upload.
    vanished: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)


def finished_tapes(directory: str) -> tuple[list[tuple[str, str]], int]:
    """``([(local path, path relative to directory, with /)], partial count)``, in name order."""
    tapes: list[tuple[str, str]] = []
    partial = 0
    for parent, dirs, files in os.walk(directory):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(parent, name)
            if name.endswith(PARTIAL_SUFFIX):
                partial += 1
            elif name.endswith(TAPE_SUFFIX) and os.path.isfile(path) and not os.path.islink(path):
                tapes.append((path, os.path.relpath(path, directory).replace(os.sep, "/")))
    return tapes, partial


def _remote_size(fs: Any, path: str) -> int | None:
    fs.invalidate_cache(path)
    try:
        return int(fs.info(path)["size"])
    except FileNotFoundError:
        return None


def _move(fs: Any, local: str, remote: str, keep: bool, local_store: bool) -> tuple[Moved, int, str]:
    """Upload one tape, check its size in the store, delete it here unless ``keep``."""
    try:
        size = os.stat(local).st_size
        if _remote_size(fs, remote) == size:
            moved: Moved = "already"
        else:
            if local_store:
                fs.makedirs(posixpath.dirname(remote), exist_ok=True)
            fs.put_file(local, remote)
            there = _remote_size(fs, remote)
            if there != size:
                return "failed", 0, f"{there} bytes in the store after the upload, {size} here: kept here"
            moved = "moved"
        if not keep:
            if os.stat(local).st_size != size:
                return "failed", 0, "changed while it was uploaded: kept here"
            os.unlink(local)
        return moved, size, ""
    except FileNotFoundError as exc:
        if not os.path.exists(local):
            return "vanished", 0, ""
        return "failed", 0, str(exc)
    except Exception as exc:  # the store's errors come in many classes; one tape's must not stop the rest
        return "failed", 0, str(exc) or type(exc).__name__


def upload(
    directory: str,
    url: str,
    *,
    keep: bool = False,
    storage_options: Mapping[str, Any] | None = None,
    threads: int = THREADS,
) -> UploadReport:
    """Move (``keep``: copy) the finished tapes under ``directory`` to ``url`` (see the module docstring)."""
    require("upload", "fsspec")
    if not os.path.isdir(directory):
        raise FleetError(f"{directory}: not a directory")
    fs, root = open_url(url, storage_options, verb="upload")
    root = root.rstrip("/") or root
    local_store = is_local(fs)
    tapes, partial = finished_tapes(directory)
    report = UploadReport(partial=partial)
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        outcomes = pool.map(lambda pair: _move(fs, pair[0], f"{root}/{pair[1]}", keep, local_store), tapes)
        for (local, _), (moved, size, reason) in zip(tapes, outcomes, strict=True):
            if moved == "moved":
                report.moved += 1
                report.bytes += size
            elif moved == "already":
                report.already += 1
            elif moved == "vanished":
                report.vanished += 1
            else:
                report.failed.append((local, reason))
    return report


__all__ = ["UploadReport", "finished_tapes", "upload"]
