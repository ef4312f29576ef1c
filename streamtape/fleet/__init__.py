"""The fleet: the tapes many recorders leave behind, moved to object storage and indexed for SQL.

- ``rows``: one tape and its exchanges' diagnoses become rows, one per exchange; the Parquet schema (sans-IO).
- ``manifest``: what an index holds: each tape's size, mtime or ETag, and the part file with its rows; which
  tapes a new run must read (sans-IO).
- ``listing``: finding tapes under local paths and object-storage URLs (fsspec), with their stamps.
- ``reading``: what a worker process does: read a batch of tapes and return their rows.
- ``index``: ``streamtape index``: plan, read in a process pool, write new parts, rewrite the parts that held
  changed tapes, commit the manifest.
- ``upload``: ``streamtape upload``: finished tapes moved from a recorder's directory to object storage.

pyarrow and fsspec (the ``fleet`` extra) are imported only inside the functions that use them, so the core
install stays small; ``require`` turns their absence into one ``FleetError``.
"""

from __future__ import annotations

import importlib


class FleetError(Exception):
    """The index or the upload cannot go on (a missing extra, a bad output, a storage failure): one line."""


def require(verb: str, *modules: str) -> None:
    """Raise ``FleetError`` naming the ``fleet`` extra unless every module in ``modules`` imports."""
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:
            raise FleetError(f"{verb} needs the fleet extra: pip install 'streamtape[fleet]'") from None


__all__ = ["FleetError", "require"]
