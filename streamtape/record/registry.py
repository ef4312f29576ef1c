"""One writer per target per process, shared by every recorder that records there; closed at exit.

A second recorder on the same tape or directory shares the first one's pipeline (and its file lock), and
the last to close it closes the file. A recorder opened while its target's last writer is still closing
waits for it, so it never finds the file locked by its own process. At process exit every pipeline writes
what is queued (milliseconds); in a child after ``fork`` the parent's pipelines record nothing.
"""

from __future__ import annotations

import atexit
import os
import threading
from collections.abc import Callable

from .pipeline import Pipeline, live


class _Registry:
    """One pipeline per target per process, shared by every recorder that records there."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[str, tuple[Pipeline, int]] = {}
        self._closing: dict[str, threading.Event] = {}  # targets whose last writer is closing the file

    def acquire(self, key: str, make: Callable[[], Pipeline]) -> Pipeline:
        while True:
            with self._lock:
                closing = self._closing.get(key)
                if closing is None:
                    pipeline, users = self._open.get(key, (None, 0))
                    if pipeline is None or pipeline.failure is not None or pipeline._closing:
                        pipeline, users = make(), 0
                    self._open[key] = (pipeline, users + 1)
                    return pipeline
            closing.wait(15.0)  # the file (and its lock) is free once the old writer has closed it

    def release(self, key: str, pipeline: Pipeline) -> None:
        with self._lock:
            current, users = self._open.get(key, (None, 0))
            if current is pipeline and users > 1:
                self._open[key] = (pipeline, users - 1)
                return
            done = None
            if current is pipeline:
                del self._open[key]
                done = self._closing[key] = threading.Event()
        try:
            pipeline.close()
        finally:
            if done is not None:
                with self._lock:
                    del self._closing[key]
                done.set()


registry = _Registry()


@atexit.register
def _close_all() -> None:
    for pipeline in list(live):
        pipeline.close(timeout=5.0)


def _after_fork_in_child() -> None:
    for pipeline in list(live):
        pipeline._forked()
    registry.__init__()  # type: ignore[misc]


if hasattr(os, "register_at_fork"):  # POSIX only
    os.register_at_fork(after_in_child=_after_fork_in_child)
