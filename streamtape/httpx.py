"""streamtape's transports for ``httpx``: wrap a client's transport to record, or replace it to replay.

>>> import httpx, streamtape.httpx
>>> client = httpx.Client(transport=streamtape.httpx.RecordingTransport("run.tape"))
"""

from __future__ import annotations

import httpx as _lib

from ._shells import (
    AsyncRecordingStreamMixin,
    AsyncRecordingTransportMixin,
    RecordingStreamMixin,
    RecordingTransportMixin,
)

__all__ = ["AsyncRecordingTransport", "RecordingTransport"]


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
