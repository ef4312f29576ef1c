"""streamtape's transports for ``httpx``: wrap a client's transport to record, or replace it to replay.

>>> import httpx, streamtape.httpx
>>> client = httpx.Client(transport=streamtape.httpx.RecordingTransport("run.tape"))
>>> client = httpx.Client(transport=streamtape.httpx.ReplayTransport("run.tape", speed=math.inf))

The classes are built on ``httpx``'s own base classes; their behaviour lives in ``streamtape._shells``.
"""

from __future__ import annotations

import httpx as _lib

from ._shells import transports_for

__all__ = ["AsyncRecordingTransport", "AsyncReplayTransport", "RecordingTransport", "ReplayTransport"]

RecordingTransport, AsyncRecordingTransport, ReplayTransport, AsyncReplayTransport = transports_for(
    _lib, __name__
)
