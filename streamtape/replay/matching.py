"""Which recorded exchange answers a replayed request. Sans-IO: requests in, exchanges out.

``match="request"`` serves the first exchange not yet served with the same method, URL (values that were
redacted at record time are ignored, since the replaying client sends real ones) and body. An SDK that
retries sends the same request again and so gets the next recorded attempt: the 529 first, then the stream.
``match="sequence"`` serves exchanges in recorded order, checking method and URL. A callable
``(request, exchange) -> bool`` decides for itself.

A ``TapeMismatch`` message never shows a live secret. The live URL is redacted as the tape's recorder was
told to redact (the names in every segment header's ``redaction``, any query parameter whose recorded value
is a fingerprint) plus the default names, with a key of this process's own, so a fingerprint in a message
can be compared only with others in the same process, and guesses cannot be tested against it elsewhere.
Bodies are never shown: a differing body is described by the byte offset where it starts to differ, both
lengths, and fingerprints of the differing regions, unless the user asks to see them (``show_bodies=True``
on the ``Matcher``, or ``STREAMTAPE_SHOW_BODIES=1`` in the environment).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import unquote_plus, urlsplit

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


#: The environment variable that lets mismatch messages show body bytes (``1``, ``true``, ``yes``).
SHOW_BODIES_ENV = "STREAMTAPE_SHOW_BODIES"
_SNIPPET = 30  # bytes of each body a message shows around a difference, when asked to


def _common_prefix(a: bytes, b: bytes) -> int:
    """How many leading bytes ``a`` and ``b`` share (by bisection over slice comparisons: C speed)."""
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[lo:mid] == b[lo:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _common_suffix(a: bytes, b: bytes, limit: int) -> int:
    """How many trailing bytes ``a`` and ``b`` share, at most ``limit``."""
    lo, hi = 0, limit
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[len(a) - mid : len(a) - lo] == b[len(b) - mid : len(b) - lo]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def describe_body_difference(
    live: bytes, recorded: bytes, *, show_bodies: bool = False, fingerprint: Callable[[bytes], str]
) -> str:
    """Where two different bodies differ, in words: the first differing byte, both lengths, and the differing
    regions (after the common prefix, before the common suffix) as ``fingerprint``s, or as bytes when
    ``show_bodies``."""
    at = _common_prefix(live, recorded)
    tail = _common_suffix(live, recorded, min(len(live), len(recorded)) - at)
    lengths = f"{len(live)} vs {len(recorded)} bytes"
    if show_bodies:
        return (
            f"body differs at byte {at} ({lengths}; live {live[max(0, at - 10) : at + _SNIPPET]!r}..., "
            f"recorded {recorded[max(0, at - 10) : at + _SNIPPET]!r}...)"
        )

    def region(body: bytes) -> str:
        end = len(body) - tail
        return f"[{at}:{end}] {fingerprint(body[at:end])}" if end > at else f"[{at}:{end}] (none)"

    return (
        f"body differs at byte {at} ({lengths}; differing bytes: live {region(live)}, recorded "
        f"{region(recorded)}; {SHOW_BODIES_ENV}=1 shows them)"
    )


def _matches(request: ReplayRequest, exchange: Exchange, *, body: bool) -> bool:
    rec = exchange.request
    return (
        request.method == rec.method
        and _same_url(request.url, rec.url)
        and (not body or request.body == rec.body)
    )


def differences(
    request: ReplayRequest,
    exchange: Exchange,
    *,
    body: bool = True,
    show_bodies: bool = False,
    fingerprint: Callable[[bytes], str] | None = None,
) -> list[str]:
    """How a request differs from a recorded one, in words for an error message; empty when they match.

    ``request`` is shown as given (redact its URL first). Body bytes are never shown unless ``show_bodies``:
    a differing region is given as ``fingerprint`` (default: this process's key) of its bytes.
    """
    rec = exchange.request
    out = []
    if request.method != rec.method:
        out.append(f"method {request.method} != {rec.method}")
    if not _same_url(request.url, rec.url):
        out.append(f"url {request.url} != {rec.url}")
    if body and request.body != rec.body:
        out.append(
            describe_body_difference(
                request.body,
                rec.body,
                show_bodies=show_bodies,
                fingerprint=fingerprint or Redactor(key=process_key()).fingerprint,
            )
        )
    return out


def live_redactor(tape: Tape) -> Redactor:
    """The redactor for a live request replayed against ``tape``: the default names, the names each segment's
    recorder redacted, and every query parameter whose recorded value is a fingerprint; this process's key.
    (The key is this process's own: an error message must not create a key file in the user's home.)"""
    headers: set[str] = set()
    query: set[str] = set()
    for header in tape.segments or [tape.header]:
        if header.redaction is not None:
            headers.update(header.redaction.headers)
            query.update(header.redaction.query)
    for exchange in tape.exchanges:
        query.update(unquote_plus(name) for name, value in _query(exchange.request.url) if value is None)
    return Redactor(headers=headers, query=query, key=process_key())


class Matcher:
    """Serves each request one exchange of the tape, and says precisely why when it cannot."""

    def __init__(
        self,
        tape: Tape,
        match: str | MatchFunc = "request",
        *,
        allow_repeats: bool = False,
        show_bodies: bool | None = None,
    ) -> None:
        """``show_bodies``: whether a mismatch message may show body bytes; None (the default) asks the
        environment (``STREAMTAPE_SHOW_BODIES=1``) when a message is made."""
        if not (callable(match) or match in ("request", "sequence")):
            raise ValueError(f"match must be 'request', 'sequence' or a callable, not {match!r}")
        self.tape = tape
        self.match = match
        self.allow_repeats = allow_repeats
        self.show_bodies = show_bodies
        self._served: set[int] = set()
        self._lock = threading.Lock()
        self._redactor: Redactor | None = None

    def _fits(self, request: ReplayRequest, exchange: Exchange) -> bool:
        if callable(self.match):
            return bool(self.match(request, exchange))
        return _matches(request, exchange, body=self.match == "request")

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
        # The live URL may carry real secrets: fingerprint them before they reach a log (the module docstring).
        if self._redactor is None:
            self._redactor = live_redactor(self.tape)
        redactor = self._redactor
        show = self.show_bodies
        if show is None:
            show = os.environ.get(SHOW_BODIES_ENV, "").strip().lower() in ("1", "true", "yes")
        request = ReplayRequest(request.method, redactor.redact_url(request.url), request.body)
        where = f"{request.method} {request.url}"
        total = len(self.tape.exchanges)
        if all_served or (self.match == "sequence" and len(self._served) == total):
            return TapeMismatch(
                f"no exchange left for {where}: every matching exchange of the {total} recorded was already "
                "served (a retry the recording did not have?); pass allow_repeats=True to serve them again",
                path=self.tape.path,
            )
        described = [
            differences(request, e, show_bodies=show, fingerprint=redactor.fingerprint)
            for e in self.tape.exchanges
        ]
        scored = sorted(range(len(described)), key=lambda i: (len(described[i]), i))
        lines = [
            f"#{i} {'(served) ' if i in self._served else ''}{'; '.join(described[i])}" for i in scored[:3]
        ]
        closest = " | ".join(lines) if lines else "the tape has no exchanges"
        return TapeMismatch(
            f"no recorded exchange matches {where} (match={self.match!r}); closest: {closest}",
            path=self.tape.path,
        )
