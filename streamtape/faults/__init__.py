"""Fault injection: turn one good recording into every bad stream a client must survive.

Pure functions ``Tape -> Tape`` (``transforms``), composable, each recording itself in the derived tape's
header, and ``matrix``, the named variants of one tape for a parametrised test. ``streamtape fault`` is the
same on the command line.

>>> from streamtape import faults
>>> broken = faults.truncate(tape, after_chunk=12, error=None)      # the stream that ends without finish_reason
>>> broken = faults.stall(faults.rechunk(tape, size=1), at_chunk=40, seconds=90)
"""

from .matrix import Variant, event_spans, matrix
from .transforms import (
    TRANSPORT_ERRORS,
    delay_head,
    drop,
    duplicate,
    fail_connect,
    garbage,
    rechunk,
    stall,
    status,
    throttle,
    truncate,
)

__all__ = [
    "TRANSPORT_ERRORS",
    "Variant",
    "delay_head",
    "drop",
    "duplicate",
    "event_spans",
    "fail_connect",
    "garbage",
    "matrix",
    "rechunk",
    "stall",
    "status",
    "throttle",
    "truncate",
]
