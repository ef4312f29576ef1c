"""When a replay delivers what. Sans-IO: an exchange and the replay's settings in, a list of steps out.

Every step carries an absolute deadline in seconds after the replayed request reached the transport, so a
late wake-up never pushes later chunks back. Gaps are capped at ``max_gap`` (tape seconds) and divided by
``speed``. The client's timeouts are enforced here in tape time: where the recorded wait for the next event
is longer than the client's timeout for that phase, the plan ends with that phase's timeout error once the
client has waited its timeout (divided by the speed), exactly as the network layer would have raised it.
The waits for the response head, each chunk and the end are reads (``ReadTimeout``); the wait before a
failure that came before any response is the phase the recorded error names: a connect error or anything
naming no phase is the connection (``ConnectTimeout``), ``PoolTimeout`` the pool, ``Write*`` a write,
``Read*`` and ``RemoteProtocolError`` a read.

Any exchange plans steps that end, whatever its times: a single wait longer than ``max_wait`` tape seconds
(after ``max_gap``; one day by default) ends the plan at once with that phase's timeout error, so a client
with no timeout still gets its answer from a tape holding an absurd wait, and a response head a client
could not have received (an ``http_version`` that is not ASCII, a header outside latin-1) is planned as a
``RemoteProtocolError`` instead of it. Shells just sleep until each deadline and act.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import repeat
from typing import Any, Literal

from ..format.records import Response
from ..model import Chunks, Exchange

StepKind = Literal["head", "chunk", "chunks", "error", "end"]
TimeoutPhase = Literal["pool", "connect", "write", "read"]


@dataclass(slots=True)
class Step:
    kind: StepKind
    at: float
    data: bytes = b""
    error_type: str = ""
    message: str = ""
    response: Response | None = None  # the head, on the "head" step
    #: On a "chunks" step: consecutive chunks all due at ``at`` (``speed=math.inf``), delivered one by one.
    run: list[bytes] | None = None


INCOMPLETE_ERROR = "RemoteProtocolError"

#: The default ``max_wait``: the longest single wait, in tape seconds, a replay honours (one day).
DEFAULT_MAX_WAIT = 86_400.0

#: The error a client raises when its timeout for a phase runs out (httpx and httpx2 name them alike).
TIMEOUT_ERRORS: dict[TimeoutPhase, str] = {
    "pool": "PoolTimeout",
    "connect": "ConnectTimeout",
    "write": "WriteTimeout",
    "read": "ReadTimeout",
}


def failure_phase(error_type: str | None) -> TimeoutPhase:
    """The phase whose timeout bounds the wait before a failure that came before any response."""
    name = error_type or ""
    if name.startswith("Pool"):
        return "pool"
    if name.startswith("Write"):
        return "write"
    if name.startswith("Read") or name == "RemoteProtocolError":
        return "read"
    return "connect"  # ConnectError, ConnectTimeout, and anything naming no phase: connecting comes first


def _seconds(ns: int) -> float:
    """Nanoseconds as seconds; ``math.inf`` for a time too large for a float (a hostile in-memory tape)."""
    try:
        return ns / 1e9
    except OverflowError:
        return math.inf


def _duration(seconds: float) -> str:
    return f"{seconds:.3f}s" if math.isfinite(seconds) else "longer than a float can hold"


def head_problem(response: Response) -> str | None:
    """Why a client could not have received this response head, or None when it could.

    A client builds a response from bytes: the status an integer, the HTTP version ASCII, header names and
    values and the reason phrase latin-1 (a tape holds each byte as one code point).
    """
    if _plain_head(response):
        return None
    if not isinstance(response.status_code, int):
        return f"its status code {response.status_code!r} is not an integer"
    version: Any = response.http_version
    if not (isinstance(version, str) and version.isascii()):
        return f"its http_version {version!r} is not ASCII"
    headers: Any = response.headers
    if not isinstance(headers, list | tuple):
        return f"its headers {headers!r} are not a list of pairs"
    for n, pair in enumerate(headers):
        if not (isinstance(pair, list | tuple) and len(pair) == 2):
            return f"its header #{n} {pair!r} is not a (name, value) pair"
        for part, text in zip(("name", "value"), pair, strict=True):
            if not (isinstance(text, str) and _latin1(text)):
                return f"its header #{n} {part} {text!r} is not latin-1"
    reason: Any = response.reason
    if not (isinstance(reason, str) and _latin1(reason)):
        return f"its reason phrase {reason!r} is not latin-1"
    return None


def _plain_head(response: Response) -> bool:
    """The common case, checked in one go: well-typed, and every header and the reason latin-1."""
    headers: Any = response.headers
    try:
        if type(response.status_code) is not int or type(response.http_version) is not str:
            return False
        if not response.http_version.isascii():
            return False
        if not all(map(isinstance, headers, repeat((list, tuple)))) or not set(map(len, headers)) <= {2}:
            return False
        "".join([response.reason, *map("".join, headers)]).encode("latin-1")
    except (TypeError, AttributeError, UnicodeEncodeError):  # the slow path says which
        return False
    return True


def _latin1(text: str) -> bool:
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def _any_wait_ends(
    chunks: Chunks, prev_ns: int, read_timeout: float | None, gap_cap: float, wait_cap: float
) -> bool:
    """Whether the wait before any chunk ends a plan (past the read timeout or ``max_wait``): the longest
    one decides, since both tests grow with the wait."""
    longest = _seconds(max(0, chunks.times[0] - prev_ns, chunks.longest_wait_ns))
    return (read_timeout is not None and longest > read_timeout) or min(longest, gap_cap) > wait_cap


def plan(
    exchange: Exchange,
    *,
    speed: float = 1.0,
    max_gap: float | None = None,
    read_timeout: float | None = None,
    connect_timeout: float | None = None,
    write_timeout: float | None = None,
    pool_timeout: float | None = None,
    max_wait: float | None = DEFAULT_MAX_WAIT,
    source: str | None = None,
) -> list[Step]:
    """The steps that replay ``exchange``: at most one head, chunks, then one error or end.

    An exchange that got no response plans a single error (the recorded one, or the client's timeout for
    its phase when the recorded wait is longer). An exchange that ends ``client_closed`` ends cleanly where
    the client stopped reading; one the tape holds no end for (``incomplete``) raises
    ``RemoteProtocolError`` after its last chunk, as a connection that died there would. ``max_wait``
    (tape seconds, None for no cap) bounds every single wait, see the module's text. ``source`` names the
    tape in the messages of errors the tape itself causes (a wait past ``max_wait``, a head no client could
    have received).
    """
    if not speed > 0:
        raise ValueError(f"speed must be > 0 (math.inf for no waiting), not {speed!r}")
    if max_wait is not None and not max_wait >= 0:
        raise ValueError(f"max_wait must be None or >= 0 seconds, not {max_wait!r}")
    timeouts: dict[TimeoutPhase, float | None] = {
        "pool": pool_timeout,
        "connect": connect_timeout,
        "write": write_timeout,
        "read": read_timeout,
    }
    gap_cap = math.inf if max_gap is None else max_gap
    wait_cap = math.inf if max_wait is None else max_wait
    the_tape = "the tape" if source is None else f"the tape {source}"
    steps: list[Step] = []
    prev_ns = 0
    clock = 0.0  # replay seconds of the previous event

    def timed_out(at: float, phase: TimeoutPhase, message: str) -> None:
        steps.append(Step("error", at, error_type=TIMEOUT_ERRORS[phase], message=f"timed out ({message})"))

    def advance(t_ns: int, kind: str, phase: TimeoutPhase = "read") -> float | None:
        """The deadline of an event recorded at ``t_ns``, or None when the wait for it ends the plan."""
        nonlocal prev_ns, clock
        gap = _seconds(max(0, t_ns - prev_ns))
        timeout = timeouts[phase]
        if timeout is not None and gap > timeout:
            at = clock + (0.0 if math.isinf(speed) else timeout / speed)
            timed_out(
                at,
                phase,
                f"the tape waits {_duration(gap)} for the {kind}; the {phase} timeout is {timeout}s",
            )
            return None
        wait = min(gap, gap_cap)
        if wait > wait_cap:  # a client with no (shorter) timeout: end now rather than sleep the absurd wait
            client = "no" if timeout is None else f"a longer ({timeout}s)"
            timed_out(
                clock,
                phase,
                f"{the_tape} waits {_duration(gap)} for the {kind}, past the replay's max_wait of {max_wait}s; "
                f"the client has {client} {phase} timeout",
            )
            return None
        clock += 0.0 if math.isinf(speed) else wait / speed
        prev_ns = t_ns
        return clock

    end = exchange.end
    response = exchange.response
    if response is None:
        error_type = end.error_type or "ConnectError"
        at = advance(end.t_ns, f"recorded {error_type}", failure_phase(error_type))
        if at is not None:
            steps.append(Step("error", at, error_type=error_type, message=end.message or ""))
        return steps
    at = advance(response.t_ns, "response head")
    if at is None:
        return steps
    problem = head_problem(response)
    if problem is not None:
        steps.append(
            Step(
                "error",
                at,
                error_type="RemoteProtocolError",
                message=f"{the_tape} holds a response head no client could receive: {problem}",
            )
        )
        return steps
    steps.append(Step("head", at, response=response))
    chunks = exchange.chunks
    times = chunks.times
    if (
        times
        and math.isinf(speed)
        and not _any_wait_ends(chunks, prev_ns, timeouts["read"], gap_cap, wait_cap)
    ):
        # An instant replay whose waits all pass: one step for every chunk, not a step each.
        steps.append(Step("chunks", clock, run=list(chunks.datas())))
        prev_ns = times[-1]
    else:
        for t_ns, data in zip(times, chunks.datas(), strict=True):
            at = advance(t_ns, "next chunk")
            if at is None:
                return steps
            steps.append(Step("chunk", at, data=data))
    if end.outcome == "error":
        # The wait before a recorded error counts against the timeout too: a 90 s stall that ended in the
        # recording's own ReadTimeout raises at the replaying client's (shorter) timeout first.
        at = advance(end.t_ns, "next byte")
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
        at = advance(end.t_ns, "next byte (the end of the body)")
        if at is not None:
            steps.append(Step("end", at))
    else:  # client_closed: the recording holds no more of the body; end it where the client stopped
        steps.append(Step("end", clock))
    return steps
