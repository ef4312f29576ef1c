"""Which recorded exchange answers a replayed request. Sans-IO: requests in, exchanges out.

``match="request"`` serves the first exchange not yet served with the same method, URL (values that were
redacted at record time are ignored, since the replaying client sends real ones) and body. An SDK that
retries sends the same request again and so gets the next recorded attempt: the 529 first, then the stream.
``match="sequence"`` serves exchanges in recorded order, checking method and URL. A callable
``(request, exchange) -> bool`` decides for itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..errors import TapeMismatch
from ..model import Exchange, Tape
from ..record.redact import Redactor, is_redacted, process_key


@dataclass(frozen=True)
class ReplayRequest:
    """What matching looks at in a live request."""

    method: str
    url: str
    body: bytes


MatchFunc = Callable[[ReplayRequest, Exchange], bool]


def _query(url: str) -> list[tuple[str, str | None]]:
    """Query pairs, with a redacted value standing for any value."""
    pairs: list[tuple[str, str | None]] = []
    for piece in urlsplit(url).query.split("&"):
        if piece:
            name, _, value = piece.partition("=")
            pairs.append((name, None if is_redacted(value) else value))
    return pairs


def _same_url(live: str, recorded: str) -> bool:
    a, b = urlsplit(live), urlsplit(recorded)
    if (a.scheme, a.hostname, a.port, a.username, a.path) != (
        b.scheme,
        b.hostname,
        b.port,
        b.username,
        b.path,
    ):
        return False
    if b.password is not None and not is_redacted(b.password) and a.password != b.password:
        return False
    qa, qb = _query(live), _query(recorded)
    return len(qa) == len(qb) and all(
        na == nb and (vb is None or va == vb) for (na, va), (nb, vb) in zip(qa, qb, strict=True)
    )


def differences(request: ReplayRequest, exchange: Exchange, *, body: bool = True) -> list[str]:
    """How a request differs from a recorded one, in words for an error message; empty when they match."""
    rec = exchange.request
    out = []
    if request.method != rec.method:
        out.append(f"method {request.method} != {rec.method}")
    if not _same_url(request.url, rec.url):
        out.append(f"url {request.url} != {rec.url}")
    if body and request.body != rec.body:
        at = next((i for i, (x, y) in enumerate(zip(request.body, rec.body, strict=False)) if x != y), None)
        at = min(len(request.body), len(rec.body)) if at is None else at
        snippet = request.body[max(0, at - 10) : at + 20]
        out.append(
            f"body differs at byte {at} ({snippet!r}...; {len(request.body)} vs {len(rec.body)} bytes)"
        )
    return out


class Matcher:
    """Serves each request one exchange of the tape, and says precisely why when it cannot."""

    def __init__(
        self, tape: Tape, match: str | MatchFunc = "request", *, allow_repeats: bool = False
    ) -> None:
        if not (callable(match) or match in ("request", "sequence")):
            raise ValueError(f"match must be 'request', 'sequence' or a callable, not {match!r}")
        self.tape = tape
        self.match = match
        self.allow_repeats = allow_repeats
        self._served: set[int] = set()
        self._lock = threading.Lock()

    def _fits(self, request: ReplayRequest, exchange: Exchange) -> bool:
        if callable(self.match):
            return bool(self.match(request, exchange))
        return not differences(request, exchange, body=self.match == "request")

    def take(self, request: ReplayRequest) -> Exchange:
        """The exchange that answers ``request``; raises ``TapeMismatch`` naming the closest candidates."""
        with self._lock:
            exchanges = self.tape.exchanges
            order: Sequence[int] = range(len(exchanges))
            if self.match == "sequence":
                pending = [i for i in order if i not in self._served]
                order = pending[:1] if pending else (range(0) if not self.allow_repeats else order)
            fitting = [i for i in order if self._fits(request, exchanges[i])]
            for i in fitting:
                if i not in self._served:
                    self._served.add(i)
                    return exchanges[i]
            if fitting and self.allow_repeats:
                return exchanges[fitting[-1]]
            raise self._mismatch(request, bool(fitting))

    def _mismatch(self, request: ReplayRequest, all_served: bool) -> TapeMismatch:
        # The live URL may carry a real key: fingerprint it before it reaches a log. The key is this process's
        # own (an error message must not create a key file in the user's home).
        redactor = Redactor(key=process_key())
        request = ReplayRequest(request.method, redactor.redact_url(request.url), request.body)
        where = f"{request.method} {request.url}"
        total = len(self.tape.exchanges)
        if all_served or (self.match == "sequence" and len(self._served) == total):
            return TapeMismatch(
                f"no exchange left for {where}: every matching exchange of the {total} recorded was already "
                "served (a retry the recording did not have?); pass allow_repeats=True to serve them again",
                path=self.tape.path,
            )
        scored = sorted(
            ((len(differences(request, e)), i, e) for i, e in enumerate(self.tape.exchanges)),
            key=lambda t: (t[0], t[1]),
        )
        lines = [
            f"#{i} {'(served) ' if i in self._served else ''}{'; '.join(differences(request, e))}"
            for _, i, e in scored[:3]
        ]
        closest = " | ".join(lines) if lines else "the tape has no exchanges"
        return TapeMismatch(
            f"no recorded exchange matches {where} (match={self.match!r}); closest: {closest}",
            path=self.tape.path,
        )
