"""streamtape's transports for ``httpx2``: wrap a client's transport to record, or replace it to replay.

>>> import httpx2, streamtape.httpx2
>>> client = httpx2.Client(transport=streamtape.httpx2.RecordingTransport("run.tape"))
>>> client = httpx2.Client(transport=streamtape.httpx2.ReplayTransport("run.tape", speed=math.inf))

Each class is declared on ``httpx2``'s own base classes (its clients check ``isinstance`` against them);
the behaviour, shared with the other library's module, lives in ``streamtape.transports``.
"""

from __future__ import annotations

from types import ModuleType
from typing import ClassVar

import httpx2 as _lib

from .transports import recording, replay

__all__ = ["AsyncRecordingTransport", "AsyncReplayTransport", "RecordingTransport", "ReplayTransport"]


class _RecordingStream(recording.RecordingStream, _lib.SyncByteStream):
    pass


class _AsyncRecordingStream(recording.AsyncRecordingStream, _lib.AsyncByteStream):
    pass


class _ReplayStream(replay.ReplayStream, _lib.SyncByteStream):
    pass


class _AsyncReplayStream(replay.AsyncReplayStream, _lib.AsyncByteStream):
    pass


class RecordingTransport(recording.RecordingShell, _lib.BaseTransport):
    """Records every exchange of a sync ``httpx2.Client`` into a tape; the client sees no difference."""

    _lib: ClassVar[ModuleType] = _lib
    _stream: ClassVar = _RecordingStream


class AsyncRecordingTransport(recording.AsyncRecordingShell, _lib.AsyncBaseTransport):
    """Records every exchange of an ``httpx2.AsyncClient`` into a tape; the client sees no difference."""

    _lib: ClassVar[ModuleType] = _lib
    _stream: ClassVar = _AsyncRecordingStream


class ReplayTransport(replay.ReplayShell, _lib.BaseTransport):
    """Answers a sync ``httpx2.Client`` from a tape: same bytes, same boundaries, same errors, same pace."""

    _lib: ClassVar[ModuleType] = _lib
    _stream: ClassVar = _ReplayStream


class AsyncReplayTransport(replay.AsyncReplayShell, _lib.AsyncBaseTransport):
    """Answers an ``httpx2.AsyncClient`` from a tape, waiting on the event loop."""

    _lib: ClassVar[ModuleType] = _lib
    _stream: ClassVar = _AsyncReplayStream
