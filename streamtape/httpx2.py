"""streamtape's transports for ``httpx2``: wrap a client's transport to record, or replace it to replay.

>>> import httpx2, streamtape.httpx2
>>> client = httpx2.Client(transport=streamtape.httpx2.RecordingTransport("run.tape"))
>>> client = httpx2.Client(transport=streamtape.httpx2.ReplayTransport("run.tape", speed=math.inf))

The classes are built on ``httpx2``'s own base classes; their behaviour lives in ``streamtape._shells``.
"""

from __future__ import annotations

import httpx2 as _lib

from ._shells import transports_for

__all__ = ["AsyncRecordingTransport", "AsyncReplayTransport", "RecordingTransport", "ReplayTransport"]

RecordingTransport, AsyncRecordingTransport, ReplayTransport, AsyncReplayTransport = transports_for(
    _lib, __name__
)
