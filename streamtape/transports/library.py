"""Which HTTP library an object belongs to, and a clear error when a transport meets the other one.

httpx and httpx2 have the same API but separate classes: an httpx2 transport inside an ``httpx.Client``
(what code on openai 1.x does) would otherwise fail deep in the client with a bare ``AssertionError``,
which an SDK then reports as "Connection error.".
"""

from __future__ import annotations

import logging
from types import ModuleType

logger = logging.getLogger("streamtape")

LIBRARIES = ("httpx", "httpx2")


class WrongLibraryError(TypeError):
    """A streamtape transport for one HTTP library was handed the other library's objects."""


def library_of(obj: object) -> str | None:
    """``"httpx"`` or ``"httpx2"`` when ``obj`` is an instance of one of their classes, else None."""
    owner = type(obj).__module__.partition(".")[0]
    return owner if owner in LIBRARIES else None


def check_library(lib: ModuleType, obj: object, what: str, transport: str) -> None:
    """Raise ``WrongLibraryError`` (and log it, since SDKs hide it) when ``obj`` is the other library's."""
    owner = library_of(obj)
    if owner is None or owner == lib.__name__:
        return
    message = (
        f"streamtape.{lib.__name__}.{transport} works with {lib.__name__} clients, but it was given an "
        f"{owner} {what}: use streamtape.{owner}.{transport} for an {owner} client"
    )
    logger.error("streamtape: %s", message)
    raise WrongLibraryError(message)
