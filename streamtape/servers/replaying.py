"""``streamtape serve``: answer HTTP requests from a tape, paced and ended as the tape says.

Any client in any language (curl, the Node SDKs) replays a tape by pointing its base URL here. A request is
matched as replay matches it, except that scheme, host and port are this server's own: method, path, query
and body (as JSON) decide. The answer is the recorded head, each chunk as its own HTTP chunk at its recorded
time divided by ``speed`` (``replay.schedule``), then the recorded ending, on the wire:

- a complete body ends; a client that closed early is answered to where it stopped reading;
- a reset (``ReadError``, or a refused connection) is a TCP reset after the same bytes;
- a connection that died otherwise (``RemoteProtocolError``, an exchange the tape holds no end for) closes
  mid-body: the client sees an incomplete chunked read;
- a timeout (the recorded client gave up on a stall) is silence until the client gives up too.

A request the tape cannot answer gets a 404 whose JSON body, in OpenAI's error shape so that SDKs print it,
holds the mismatch message.
"""

from __future__ import annotations

import json
import logging
import time

import anyio

from ..errors import TapeMismatch
from ..model import Tape
from ..replay.matching import Match, Matcher, ReplayRequest
from ..replay.schedule import DEFAULT_MAX_WAIT, Step, plan
from .http11 import IncomingRequest, Responder

logger = logging.getLogger("streamtape")

#: What decides which exchange answers: the server's scheme, host and port stand in for the recorded ones.
SERVE_MATCH = Match(on=("method", "path", "query", "body"))
_RESETS = ("ReadError", "ConnectError", "NetworkError", "CloseError")
_SILENCES = ("ReadTimeout", "ConnectTimeout", "PoolTimeout", "WriteTimeout", "TimeoutException")


class TapeServer:
    """The ``serve`` handler: each request gets the tape's matching exchange, at the tape's pace."""

    def __init__(
        self,
        tape: Tape,
        *,
        speed: float = 1.0,
        max_gap: float | None = None,
        max_wait: float | None = DEFAULT_MAX_WAIT,
        allow_repeats: bool = True,
    ) -> None:
        """``allow_repeats``: answer with an exchange again once every match was served (a server is asked the
        same question many times; the replay transports default the other way, one test at a time)."""
        self.tape = tape
        self.speed, self.max_gap, self.max_wait = speed, max_gap, max_wait
        self.matcher = Matcher(tape, SERVE_MATCH, allow_repeats=allow_repeats)

    async def __call__(self, request: IncomingRequest, responder: Responder) -> None:
        start = time.perf_counter()
        headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in request.headers]
        live = ReplayRequest(
            request.method, "http://streamtape.serve" + request.target, request.body, headers
        )
        try:
            exchange = self.matcher.take(live)
        except TapeMismatch as exc:
            logger.warning("streamtape serve: %s", exc)
            document = {"error": {"message": str(exc), "type": "streamtape_mismatch", "code": None}}
            await responder.json(404, json.dumps(document).encode())
            return
        steps = plan(
            exchange, speed=self.speed, max_gap=self.max_gap, max_wait=self.max_wait, source=self.tape.path
        )
        for step in steps:
            delay = start + step.at - time.perf_counter()
            if delay > 0:
                await anyio.sleep(delay)
            if step.kind == "head":
                assert step.response is not None
                head = step.response
                encoded = [(n.encode("latin-1"), v.encode("latin-1")) for n, v in head.headers]
                await responder.start(head.status_code, encoded, head.reason.encode("latin-1"))
            elif step.kind == "chunk":
                await responder.write(step.data)
            elif step.kind == "chunks":
                for data in step.run or []:
                    await responder.write(data)
            elif step.kind == "end":
                await responder.end()
            else:
                await _fail(step, responder)
                return


async def _fail(step: Step, responder: Responder) -> None:
    """End the connection as the recorded error ended it."""
    if step.error_type in _SILENCES:
        await responder.wait_closed()
    elif step.error_type in _RESETS:
        await responder.reset()
    else:
        await responder.drop()
