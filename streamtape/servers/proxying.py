"""``streamtape proxy``: a reverse proxy that records every exchange passing through it.

Any client in any language records by pointing its base URL here. Each request is forwarded to the upstream
with httpx2 through ``streamtape.httpx2.AsyncRecordingTransport``, so the tape is what the recording
transports write (redaction, the flight recorder's options, chunk times taken as bytes arrive), and each
chunk is passed to the client the moment it arrives: no buffering. An upstream that resets resets the
client too (and one that drops the connection drops it), and the tape says so; an upstream that cannot be
reached is a 502 with a JSON error.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx2

from ..record.recorder import Target
from .http11 import HOP_BY_HOP, ClientGone, IncomingRequest, Responder

logger = logging.getLogger("streamtape")

#: Request headers the proxy does not forward: the connection's own, and those httpx2 sets for the upstream.
_NOT_FORWARDED = HOP_BY_HOP | {"host", "content-length"}


class Proxy:
    """The ``proxy`` handler. ``options`` are the recording transport's (``redact``, ``keep``, ``sample``...)."""

    def __init__(
        self, upstream: str, target: Target, *, timeout: float | None = None, **options: Any
    ) -> None:
        from ..httpx2 import AsyncRecordingTransport

        self.upstream = upstream.rstrip("/")
        self.transport = AsyncRecordingTransport(target, **options)
        self._timeout = httpx2.Timeout(timeout, connect=30.0 if timeout is None else timeout).as_dict()

    @property
    def stats(self) -> Any:
        return self.transport.stats

    async def aclose(self) -> None:
        """Close the upstream connections and finish the tape."""
        await self.transport.aclose()

    async def __call__(self, request: IncomingRequest, responder: Responder) -> None:
        headers = [(n, v) for n, v in request.headers if n.lower().decode("latin-1") not in _NOT_FORWARDED]
        upstream = (
            httpx2.Request(  # straight to the transport: a client's cookies, auth and redirects are not ours
                request.method,
                self.upstream + request.target,
                headers=headers,
                content=request.body,
                extensions={"timeout": self._timeout},
            )
        )
        try:
            response = await self.transport.handle_async_request(upstream)
        except httpx2.TransportError as exc:
            logger.warning("streamtape proxy: %s %s: %s", request.method, upstream.url, exc)
            message = f"streamtape proxy: the upstream failed: {type(exc).__name__}: {exc}"
            await responder.json(
                502, json.dumps({"error": {"message": message, "type": "upstream_error"}}).encode()
            )
            return
        try:
            reason = response.extensions.get("reason_phrase", b"")
            await responder.start(response.status_code, list(response.headers.raw), reason)
            async for chunk in response.aiter_raw():
                await responder.write(chunk)
        except ClientGone:
            raise  # the recording notes client_closed when the response is closed below
        except httpx2.ReadError:
            await responder.reset()  # the upstream reset: so does the proxy
            return
        except httpx2.TransportError:
            await responder.drop()
            return
        finally:
            await response.aclose()
        await responder.end()
