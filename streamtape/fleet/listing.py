"""Finding tapes under local paths and object-storage URLs (fsspec), each with the stamp that says whether
it changed since it was indexed.

A directory (or an object-storage prefix) is searched recursively for ``*.tape`` files; a glob pattern
keeps the ``*.tape`` files it matches; a file named explicitly is taken whatever its name. ``.partial``
files (an exchange still being recorded) are never taken, only counted. One listing call per path: fsspec's
``find`` returns size and mtime (local) or ETag (object storage) with each name, so nothing is read twice.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from . import FleetError
from .manifest import Stamp

TAPE_SUFFIX = ".tape"
PARTIAL_SUFFIX = ".partial"
_MTIME_KEYS = ("mtime", "LastModified", "last_modified", "updated", "modified", "created")
_ETAG_KEYS = ("ETag", "etag")
#: URL schemes whose fsspec implementation the ``fleet`` extra installs (s3fs).
_IN_THE_EXTRA = ("s3", "s3a")


@dataclass(frozen=True)
class Found:
    """One tape found: ``key`` names it in the index (an absolute path, or a URL), ``path`` in ``fs``."""

    key: str
    path: str
    stamp: Stamp
    fs: Any = field(compare=False, repr=False)
    local: bool = False


@dataclass
class Listing:
    tapes: dict[str, Found] = field(default_factory=dict)
    #: ``.partial`` files seen (exchanges still being recorded, or a recorder that crashed): not indexed.
    partial: int = 0


def open_url(
    url: str, storage_options: Mapping[str, Any] | None = None, *, verb: str = "index"
) -> tuple[Any, str]:
    """``(filesystem, path)`` for a local path or a URL; ``FleetError`` when fsspec cannot open it."""
    import fsspec

    try:
        return fsspec.core.url_to_fs(url, **dict(storage_options or {}))  # type: ignore[no-any-return]
    except ImportError as exc:  # a protocol whose library is not installed (s3fs, gcsfs, adlfs, ...)
        if url.partition("://")[0].lower() in _IN_THE_EXTRA:
            raise FleetError(f"{verb} needs the fleet extra: pip install 'streamtape[fleet]'") from None
        raise FleetError(f"{url}: {exc}") from None
    except ValueError as exc:  # an unknown protocol
        raise FleetError(f"{url}: {exc}") from None


def is_local(fs: Any) -> bool:
    from fsspec.implementations.local import LocalFileSystem

    return isinstance(fs, LocalFileSystem)


def stamp_of(info: Mapping[str, Any]) -> Stamp:
    """The stamp of an fsspec ``info`` dict: its size, its ETag if the store gives one, its mtime."""
    mtime: float | str | None = None
    for name in _MTIME_KEYS:
        value = info.get(name)
        if value is None:
            continue
        if isinstance(value, datetime):
            mtime = value.timestamp()
        elif isinstance(value, int | float):
            mtime = float(value)
        else:
            mtime = str(value)
        break
    etag = next((str(info[name]) for name in _ETAG_KEYS if info.get(name)), None)
    return Stamp(size=int(info.get("size") or 0), mtime=mtime, etag=etag)


def _key(fs: Any, name: str, local: bool) -> str:
    return os.path.abspath(name) if local else str(fs.unstrip_protocol(name))


def _entries(fs: Any, root: str, given: str) -> tuple[dict[str, dict[str, Any]], bool]:
    """``({name: info}, explicit)``: what ``given`` names, and whether it named one file."""
    try:
        if any(c in root for c in "*?["):
            return fs.glob(root, detail=True), False
        fs.invalidate_cache(root)  # s3fs caches listings: a second run in one process must see new tapes
        info = fs.info(root)
        if info.get("type") == "directory":
            return fs.find(root, detail=True), False
        return {info.get("name", root): info}, True
    except FileNotFoundError:
        raise FleetError(f"{given}: no such file or directory") from None
    except OSError as exc:
        raise FleetError(f"{given}: {exc.strerror or exc}") from None


def list_tapes(paths: Sequence[str], storage_options: Mapping[str, Any] | None = None) -> Listing:
    """Every tape under ``paths`` (in their order, each once), and how many ``.partial`` files were seen."""
    listing = Listing()
    for given in paths:
        fs, root = open_url(given, storage_options)
        local = is_local(fs)
        entries, explicit = _entries(fs, root, given)
        for name in sorted(entries):
            info = entries[name]
            if info.get("type", "file") != "file":
                continue
            base = posixpath.basename(name)
            if base.endswith(PARTIAL_SUFFIX):
                listing.partial += 1
                continue
            if not explicit and not base.endswith(TAPE_SUFFIX):
                continue
            key = _key(fs, name, local)
            if key not in listing.tapes:
                listing.tapes[key] = Found(key, name, stamp_of(info), fs, local)
    return listing


__all__ = ["Found", "Listing", "is_local", "list_tapes", "open_url", "stamp_of"]
