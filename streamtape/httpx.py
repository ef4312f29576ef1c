"""streamtape's transports for ``httpx``: wrap a client's transport to record, or replace it to replay.

>>> import httpx, streamtape.httpx
>>> client = httpx.Client(transport=streamtape.httpx.RecordingTransport("run.tape"))
"""

from __future__ import annotations

import httpx as _lib

from ._shells import (
    AsyncRecordingStreamMixin,
    AsyncRecordingTransportMixin,
    AsyncReplayStreamMixin,
    AsyncReplayTransportMixin,
    RecordingStreamMixin,
    RecordingTransportMixin,
    ReplayStreamMixin,
    ReplayTransportMixin,
)

__all__ = ["AsyncRecordingTransport", "AsyncReplayTransport", "RecordingTransport", "ReplayTransport"]


class _RecordingStream(RecordingStreamMixin, _lib.SyncByteStream):
    pass


class _AsyncRecordingStream(AsyncRecordingStreamMixin, _lib.AsyncByteStream):
    pass


class RecordingTransport(RecordingTransportMixin, _lib.BaseTransport):
    """Records every exchange of a sync ``httpx.Client`` into a tape; the client sees no difference."""

    _default_transport = _lib.HTTPTransport
    _stream = _RecordingStream


class AsyncRecordingTransport(AsyncRecordingTransportMixin, _lib.AsyncBaseTransport):
    """Records every exchange of an ``httpx.AsyncClient`` into a tape; the client sees no difference."""

    _default_transport = _lib.AsyncHTTPTransport
    _stream = _AsyncRecordingStream


class _ReplayStream(ReplayStreamMixin, _lib.SyncByteStream):
    pass


class _AsyncReplayStream(AsyncReplayStreamMixin, _lib.AsyncByteStream):
    pass


class ReplayTransport(ReplayTransportMixin, _lib.BaseTransport):
    """Answers a sync ``httpx.Client`` from a tape: same bytes, same boundaries, same errors, same pace."""

    _lib = _lib
    _stream = _ReplayStream


class AsyncReplayTransport(AsyncReplayTransportMixin, _lib.AsyncBaseTransport):
    """Answers an ``httpx.AsyncClient`` from a tape, waiting on the event loop."""

    _lib = _lib
    _stream = _AsyncReplayStream
