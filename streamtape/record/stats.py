"""What a recording transport did, in numbers: ``transport.stats``.

Exchanges: ``seen`` reached the transport; ``sampled_out`` were skipped by ``sample`` or an opt-out;
``recorded`` were written whole; ``discarded`` were held and let go by ``keep="failed"`` (or a
``before_record`` hook that returned None). Records: ``dropped`` were lost, to back-pressure (the writer's
queue was full) or to a failure, and the tape marks their exchanges with a gap. ``bytes`` counts response
body bytes written. ``errors`` counts failures by cause (``ENOSPC``, ``EACCES``, ``hook``, ...).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace


@dataclass(eq=False)  # identity: the writer keeps a weak set of them
class RecorderStats:
    seen: int = 0
    sampled_out: int = 0
    recorded: int = 0
    discarded: int = 0
    dropped: int = 0
    bytes: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: int) -> None:
        """Add to counters from any thread."""
        with self._lock:
            for name, n in counts.items():
                setattr(self, name, getattr(self, name) + n)

    def error(self, cause: str) -> None:
        with self._lock:
            self.errors[cause] = self.errors.get(cause, 0) + 1

    def snapshot(self) -> RecorderStats:
        with self._lock:
            return replace(self, errors=dict(self.errors), _lock=threading.Lock())
