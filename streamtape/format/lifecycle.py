"""The exchange lifecycle as one table: which record may come next. Sans-IO.

An exchange is a request, then at most one response head, then chunks (only after the head), then exactly
one end, last. A connect error ends an exchange that never got a head. A gap (records the recorder
lost) may come anywhere between the request and the end. The table below is the only place
this is written down: the reader checks tapes against it, the recorder asks it whether an event can still
happen (a second end is ignored there, not recorded), and every other producer of exchanges uses it too.
The events are the record tags.
"""

from __future__ import annotations

from enum import Enum
from typing import Literal

Event = Literal["request", "response", "chunk", "gap", "end"]


class Phase(Enum):
    """Where an exchange is in its life."""

    NEW = "new"  # nothing yet
    SENT = "sent"  # the request is out; no response head yet
    STREAMING = "streaming"  # the head arrived; body chunks may follow
    ENDED = "ended"  # the end was recorded; nothing may follow


#: (phase, event) -> the phase after it. A pair missing from the table is a protocol violation.
TRANSITIONS: dict[tuple[Phase, Event], Phase] = {
    (Phase.NEW, "request"): Phase.SENT,
    (Phase.SENT, "response"): Phase.STREAMING,
    (Phase.SENT, "end"): Phase.ENDED,
    (Phase.STREAMING, "chunk"): Phase.STREAMING,
    (Phase.SENT, "gap"): Phase.SENT,  # records were lost (format 1.1): the exchange goes on, damaged
    (Phase.STREAMING, "gap"): Phase.STREAMING,
    (Phase.STREAMING, "end"): Phase.ENDED,
}

_WHY: dict[tuple[Phase, Event], str] = {
    (Phase.NEW, "response"): "has a response head before its request",
    (Phase.NEW, "chunk"): "has a chunk before its request",
    (Phase.NEW, "end"): "has an end before its request",
    (Phase.NEW, "gap"): "has a gap before its request",
    (Phase.SENT, "request"): "has two requests",
    (Phase.SENT, "chunk"): "has a chunk before its response",
    (Phase.STREAMING, "request"): "has two requests",
    (Phase.STREAMING, "response"): "has a second response head",
}


class LifecycleError(ValueError):
    """An event that cannot happen in the exchange's phase; ``str()`` completes "the exchange ..."."""


def advance(phase: Phase, event: Event) -> Phase:
    """The phase after ``event``; raises ``LifecycleError`` when the table does not allow it."""
    try:
        return TRANSITIONS[phase, event]
    except KeyError:
        why = "continues after its end" if phase is Phase.ENDED else _WHY[phase, event]
        raise LifecycleError(why) from None
