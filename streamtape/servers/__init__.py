"""HTTP servers for clients that are not Python: ``serve`` answers from a tape, ``proxy`` records what passes.

``http11`` is the connection layer (h11 on anyio); ``replaying`` and ``proxying`` are the two handlers.
"""

from .http11 import RunningServer, run_in_thread, serve_forever
from .proxying import Proxy
from .replaying import TapeServer

__all__ = ["Proxy", "RunningServer", "TapeServer", "run_in_thread", "serve_forever"]
