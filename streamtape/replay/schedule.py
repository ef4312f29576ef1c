"""When a replay delivers what. Sans-IO: an exchange and the replay's settings in, a list of steps out.

Every step carries an absolute deadline in seconds after the replayed request reached the transport, so a
late wake-up never pushes later chunks back. Gaps are capped at ``max_gap`` (tape seconds) and divided by
``speed``. The client's read timeout is enforced here in tape time: where the recorded wait for the next
event (the response head, a chunk, the end) is longer than the client's read timeout, the plan ends with a
``ReadTimeout`` once the client has waited its timeout (divided by the speed), exactly as the network layer
would have raised it. Shells just sleep until each deadline and act.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from ..format.records import Response
from ..model import Exchange

StepKind = Literal["head", "chunk", "error", "end"]


@dataclass(slots=True)
class Step:
    kind: StepKind
    at: float
    data: bytes = b""
    error_type: str = ""
    message: str = ""
    response: Response | None = None  # the head, on the "head" step


INCOMPLETE_ERROR = "RemoteProtocolError"


def plan(
    exchange: Exchange,
    *,
    speed: float = 1.0,
    max_gap: float | None = None,
    read_timeout: float | None = None,
) -> list[Step]:
    """The steps that replay ``exchange``: at most one head, chunks, then one error or end.

    An exchange that got no response plans a single error. An exchange that ends ``client_closed`` ends
    cleanly where the client stopped reading; one the tape holds no end for (``incomplete``) raises
    ``RemoteProtocolError`` after its last chunk, as a connection that died there would.
    """
    if not speed > 0:
        raise ValueError(f"speed must be > 0 (math.inf for no waiting), not {speed!r}")
    cap = math.inf if max_gap is None else max_gap * 1e9
    steps: list[Step] = []
    prev_ns = 0
    clock = 0.0  # replay seconds of the previous event

    def advance(t_ns: int, kind: str, *, timeout: bool = True) -> float | None:
        """The deadline of an event recorded at ``t_ns``, or None when the client times out before it."""
        nonlocal prev_ns, clock
        gap_ns = max(0, t_ns - prev_ns)
        if timeout and read_timeout is not None and gap_ns > read_timeout * 1e9:
            at = clock + (0.0 if math.isinf(speed) else read_timeout / speed)
            steps.append(
                Step(
                    "error",
                    at,
                    error_type="ReadTimeout",
                    message=f"timed out (the tape waits {gap_ns / 1e9:.3f}s for the next {kind}; the read timeout is {read_timeout}s)",
                )
            )
            return None
        clock += 0.0 if math.isinf(speed) else min(gap_ns, cap) / 1e9 / speed
        prev_ns = t_ns
        return clock

    end = exchange.end
    response = exchange.response
    if response is None:
        at = advance(end.t_ns, "response", timeout=False)  # connect errors come before any read
        steps.append(
            Step("error", at or 0.0, error_type=end.error_type or "ConnectError", message=end.message or "")
        )
        return steps
    at = advance(response.t_ns, "response head")
    if at is None:
        return steps
    steps.append(Step("head", at, response=response))
    for chunk in exchange.chunks:
        at = advance(chunk.t_ns, "chunk")
        if at is None:
            return steps
        steps.append(Step("chunk", at, data=chunk.data))
    if end.outcome == "error":
        # The wait before a recorded error counts against the timeout too: a 90 s stall that ended in the
        # recording's own ReadTimeout raises at the replaying client's (shorter) timeout first.
        at = advance(end.t_ns, "byte")
        if at is not None:
            steps.append(
                Step("error", at, error_type=end.error_type or "ReadError", message=end.message or "")
            )
    elif end.outcome == "incomplete":
        steps.append(
            Step(
                "error",
                clock,
                error_type=INCOMPLETE_ERROR,
                message="the tape ends here: its recording was cut short",
            )
        )
    elif end.outcome == "complete":
        at = advance(end.t_ns, "byte (the end of the body)")
        if at is not None:
            steps.append(Step("end", at))
    else:  # client_closed: the recording holds no more of the body; end it where the client stopped
        steps.append(Step("end", clock))
    return steps
