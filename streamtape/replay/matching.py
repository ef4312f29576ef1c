"""Which recorded exchange answers a replayed request. Sans-IO: requests in, exchanges out.

Matching follows VCR.py's ``match_on``: a request matches a recorded one when every criterion agrees.
The default, ``match="request"``, is method, scheme, host, port, path, query and body, the body compared
as JSON (``replay.bodies``: key order and whitespace never matter, so a tape recorded with one SDK release
replays under the next), and serves the first exchange not yet served: an SDK that retries sends the same
request again and so gets the next recorded attempt, the 529 first, then the stream. ``Match`` chooses the
criteria, JSON fields to ignore (``user``, ``metadata``), and headers to compare (opt-in); a list of
criterion names is a ``Match`` too. ``match="sequence"`` serves exchanges in recorded order, checking
method and URL. A callable ``(request, exchange) -> bool`` decides for itself. A value the recorder (or
``streamtape redact``) replaced by a fingerprint matches any live value: query values, a URL's password,
header values, JSON body values.

A ``TapeMismatch`` message never shows a live secret. The live URL is redacted as the tape's recorder was
told to redact (the names in every segment header's ``redaction``, any query parameter whose recorded value
is a fingerprint) plus the default names, with a key of this process's own, so a fingerprint in a message
can be compared only with others in the same process, and guesses cannot be tested against it elsewhere.
Bodies are never shown: a JSON body difference is its JSON path with both values' types, sizes and
fingerprints, any other body difference the byte offset where it starts, both lengths, and fingerprints of
the differing regions, unless the user asks to see them (``show_bodies=True`` on the ``Matcher``, or
``STREAMTAPE_SHOW_BODIES=1`` in the environment).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus, urlsplit

from ..errors import TapeMismatch
from ..model import Exchange, Tape
from ..record.redact import Redactor, is_redacted, process_key
from .bodies import NOT_JSON, BodyDifference, Ignore, first_difference, parse, same_bytes


@dataclass(frozen=True)
class ReplayRequest:
    """What matching looks at in a live request."""

    method: str
    url: str
    body: bytes
    headers: Sequence[tuple[str, str]] = ()


MatchFunc = Callable[[ReplayRequest, Exchange], bool]

#: Every criterion ``Match.on`` may name, in the order a mismatch message lists differences.
CRITERIA = ("method", "scheme", "host", "port", "path", "query", "body", "headers")
#: The default criteria (VCR.py's default plus the body; headers are opt-in).
DEFAULT_CRITERIA = ("method", "scheme", "host", "port", "path", "query", "body")
_URL_CRITERIA = ("method", "scheme", "host", "port", "path", "query")
_URL_PARTS = frozenset(_URL_CRITERIA[1:])
_NO_URL = urlsplit("")
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Match:
    """What makes a live request the same as a recorded one.

    ``on``: the criteria (``CRITERIA``). ``ignore_fields``: JSON body fields left out of the comparison, a
    name at any depth (``"user"``) or a path (``"$.metadata.trace_id"``, ``"$.messages[*].name"``).
    ``headers``: header names whose values must agree (giving any adds ``"headers"`` to ``on``).
    ``sequence``: serve the exchanges in recorded order instead of the first unserved one that matches.
    """

    on: tuple[str, ...] = DEFAULT_CRITERIA
    ignore_fields: tuple[str, ...] = ()
    headers: tuple[str, ...] = ()
    sequence: bool = False
    _ignore: Ignore = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        on = (self.on,) if isinstance(self.on, str) else tuple(self.on)
        unknown = [c for c in on if c not in CRITERIA]
        if unknown:
            raise ValueError(f"unknown match criteria {unknown}; choose from {', '.join(CRITERIA)}")
        headers = (self.headers,) if isinstance(self.headers, str) else tuple(self.headers)
        if headers and "headers" not in on:
            on = (*on, "headers")
        object.__setattr__(self, "on", on)
        object.__setattr__(self, "headers", tuple(h.lower() for h in headers))
        object.__setattr__(self, "ignore_fields", tuple(self.ignore_fields))
        object.__setattr__(self, "_ignore", Ignore.of(self.ignore_fields))

    @classmethod
    def of(cls, match: str | Match | Iterable[str]) -> Match:
        """``"request"``, ``"sequence"``, a ``Match``, or criterion names (``["method", "path"]``)."""
        if isinstance(match, Match):
            return match
        if match == "request":
            return cls()
        if match == "sequence":
            return cls(on=_URL_CRITERIA, sequence=True)
        if isinstance(match, str):
            raise ValueError(
                f"match must be 'request', 'sequence', a Match, criteria or a callable, not {match!r}"
            )
        return cls(on=tuple(match))


def _query(url: str) -> list[tuple[str, str | None]]:
    """Query pairs, with a redacted value standing for any value."""
    pairs: list[tuple[str, str | None]] = []
    for piece in urlsplit(url).query.split("&"):
        if piece:
            name, _, value = piece.partition("=")
            pairs.append((name, None if is_redacted(value) else value))
    return pairs


def _same_query(live: str, recorded: str) -> bool:
    """The same parameters with the same values per name, in any order of names (SDKs reorder them)."""
    qa, qb = sorted(_query(live), key=lambda p: p[0]), sorted(_query(recorded), key=lambda p: p[0])
    return len(qa) == len(qb) and all(
        na == nb and (vb is None or va == vb) for (na, va), (nb, vb) in zip(qa, qb, strict=True)
    )


def _port(url: Any) -> int | None:
    try:
        port: int | None = url.port
    except ValueError:
        return None
    return port if port is not None else _DEFAULT_PORTS.get(url.scheme)


def _same_host(a: Any, b: Any) -> bool:
    """Host name and user; a recorded password must match unless it was redacted."""
    if (a.hostname, a.username) != (b.hostname, b.username):
        return False
    return b.password is None or is_redacted(b.password) or a.password == b.password


def _header_values(headers: Iterable[tuple[str, str]], name: str) -> str | None:
    values = [v for n, v in headers if n.lower() == name]
    return ", ".join(values) if values else None


def _same_header(live: str | None, recorded: str | None) -> bool:
    if live is None or recorded is None:
        return live is recorded
    return first_difference(live, recorded) is None  # a fingerprint in the recorded value matches anything


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


def differences(
    request: ReplayRequest,
    exchange: Exchange,
    match: Match | None = None,
    *,
    show_bodies: bool = False,
    fingerprint: Callable[[bytes], str] | None = None,
    live_body: Any = None,
    recorded_body: Any = None,
    first_only: bool = False,
) -> list[str]:
    """How a request differs from a recorded one under ``match``, in words; empty when they match.

    ``request`` is shown as given (redact its URL first). Body bytes are never shown unless ``show_bodies``:
    a differing JSON value is given by its path, type, size and ``fingerprint`` (default: this process's
    key), a differing non-JSON region by offsets and fingerprints. ``first_only`` stops at the first
    difference and does not put a body difference in words (matching needs only a yes or no).
    """
    match = match or Match()
    rec = exchange.request
    on: Sequence[str] = match.on
    if request.url == rec.url:  # the same string: every criterion read from the URL holds
        on = [criterion for criterion in on if criterion not in _URL_PARTS]
        a = b = _NO_URL
    else:
        a, b = urlsplit(request.url), urlsplit(rec.url)
    out: list[str] = []
    for criterion in on:
        if out and first_only:
            return out
        if criterion == "method" and request.method != rec.method:
            out.append(f"method {request.method} != {rec.method}")
        elif criterion == "scheme" and a.scheme != b.scheme:
            out.append(f"scheme {a.scheme} != {b.scheme}")
        elif criterion == "host" and not _same_host(a, b):
            out.append(f"host {a.hostname} != {b.hostname}" if a.hostname != b.hostname else "user differs")
        elif criterion == "port" and _port(a) != _port(b):
            out.append(f"port {_port(a)} != {_port(b)}")
        elif criterion == "path" and a.path != b.path:
            out.append(f"path {a.path} != {b.path}")
        elif criterion == "query" and not _same_query(request.url, rec.url):
            out.append(f"query {a.query or '(none)'} != {b.query or '(none)'}")
        elif criterion == "headers":
            for name in match.headers:
                live_v, rec_v = _header_values(request.headers, name), _header_values(rec.headers, name)
                if not _same_header(live_v, rec_v):
                    out.append(
                        f"header {name} differs" if live_v and rec_v else f"header {name} only on one side"
                    )
        elif criterion == "body":
            found = _body_difference(
                request, exchange, match, show_bodies, fingerprint, live_body, recorded_body, not first_only
            )
            if found:
                out.append(found)
    return out


def _body_difference(
    request: ReplayRequest,
    exchange: Exchange,
    match: Match,
    show_bodies: bool,
    fingerprint: Callable[[bytes], str] | None,
    live_body: Any,
    recorded_body: Any,
    words: bool,
) -> str | None:
    """How the bodies differ (``"body differs"`` when no ``words`` are needed), or None when they match."""
    rec = exchange.request
    if rec.body_size is None and request.body == rec.body:  # the same bytes: the same JSON, or no JSON
        return None
    live_json = parse(request.body) if live_body is None else live_body
    rec_json = parse(rec.body) if recorded_body is None else recorded_body
    found: BodyDifference | None = None
    if live_json is not NOT_JSON and rec_json is not NOT_JSON and rec.body_size is None:
        found = first_difference(live_json, rec_json, match._ignore)
        if found is None:
            return None
    else:
        recorded = rec.body
        if rec.body_size is not None:  # the tape kept only the start of a huge body
            if len(request.body) == rec.body_size and same_bytes(request.body[: len(recorded)], recorded):
                return None
        elif same_bytes(request.body, recorded):
            return None
    if not words:
        return "body differs"
    fp = fingerprint or Redactor(key=process_key()).fingerprint
    if found is not None:
        return found.describe(show_bodies=show_bodies, fingerprint=fp)
    return describe_body_difference(request.body, rec.body, show_bodies=show_bodies, fingerprint=fp)


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
        match: str | Match | Sequence[str] | MatchFunc = "request",
        *,
        allow_repeats: bool = False,
        show_bodies: bool | None = None,
    ) -> None:
        """``match``: ``"request"`` (the default ``Match()``), ``"sequence"``, a ``Match``, criterion names,
        or a callable. ``show_bodies``: whether a mismatch message may show body bytes; None (the default)
        asks the environment (``STREAMTAPE_SHOW_BODIES=1``) when a message is made."""
        self.rule: Match | MatchFunc = match if callable(match) else Match.of(match)
        #: Whether matching reads the live request's headers (a callable might): else they need not be given.
        self.needs_headers = not isinstance(self.rule, Match) or "headers" in self.rule.on
        self.tape = tape
        self.match = match
        self.allow_repeats = allow_repeats
        self.show_bodies = show_bodies
        self._served: set[int] = set()
        self._lock = threading.Lock()
        self._redactor: Redactor | None = None
        self._recorded_bodies: dict[int, Any] = {}

    def _recorded_body(self, i: int) -> Any:
        if i not in self._recorded_bodies:
            self._recorded_bodies[i] = parse(self.tape.exchanges[i].request.body)
        return self._recorded_bodies[i]

    def take(self, request: ReplayRequest) -> Exchange:
        """The exchange that answers ``request``; raises ``TapeMismatch`` naming the closest candidates."""
        with self._lock:
            exchanges, rule = self.tape.exchanges, self.rule
            order: Sequence[int] = range(len(exchanges))
            if isinstance(rule, Match) and rule.sequence:
                pending = [i for i in order if i not in self._served]
                order = pending[:1] if pending else (range(0) if not self.allow_repeats else order)
            if isinstance(rule, Match):
                body = request.body
                differ = "body" in rule.on and any(exchanges[i].request.body != body for i in order)
                live = parse(body) if differ else None  # parsed once for every candidate, if needed
                fitting = [
                    i
                    for i in order
                    if not differences(
                        request,
                        exchanges[i],
                        rule,
                        live_body=live,
                        recorded_body=self._recorded_body(i) if live is not None else None,
                        first_only=True,
                    )
                ]
            else:
                fitting = [i for i in order if rule(request, exchanges[i])]
            for i in fitting:
                if i not in self._served:
                    self._served.add(i)
                    return exchanges[i]
            if fitting and self.allow_repeats:
                return exchanges[fitting[-1]]
            raise self._mismatch(request, bool(fitting))

    def describe(self) -> str:
        """The rule in words, for messages."""
        rule = self.rule
        if not isinstance(rule, Match):
            return f"match={getattr(rule, '__name__', repr(rule))}"
        words = f"{'in sequence, ' if rule.sequence else ''}on {', '.join(rule.on)}"
        if rule.headers:
            words += f" (headers {', '.join(rule.headers)})"
        if rule.ignore_fields:
            words += f", ignoring {', '.join(rule.ignore_fields)}"
        return words

    def _mismatch(self, request: ReplayRequest, all_served: bool) -> TapeMismatch:
        # The live URL may carry real secrets: fingerprint them before they reach a log (the module docstring).
        if self._redactor is None:
            self._redactor = live_redactor(self.tape)
        redactor = self._redactor
        show = self.show_bodies
        if show is None:
            show = os.environ.get(SHOW_BODIES_ENV, "").strip().lower() in ("1", "true", "yes")
        request = ReplayRequest(
            request.method, redactor.redact_url(request.url), request.body, request.headers
        )
        where = f"{request.method} {request.url}"
        total = len(self.tape.exchanges)
        rule = self.rule
        sequence = isinstance(rule, Match) and rule.sequence
        if all_served or (sequence and len(self._served) == total):
            return TapeMismatch(
                f"no exchange left for {where}: every matching exchange of the {total} recorded was already "
                "served (a retry the recording did not have?); pass allow_repeats=True to serve them again",
                path=self.tape.path,
            )
        shown = rule if isinstance(rule, Match) else Match()
        described = [
            differences(request, e, shown, show_bodies=show, fingerprint=redactor.fingerprint)
            for e in self.tape.exchanges
        ]
        scored = sorted(range(len(described)), key=lambda i: (len(described[i]), i))

        def note(i: int) -> str:
            if described[i]:
                return f"{'(served) ' if i in self._served else ''}{'; '.join(described[i])}"
            if not isinstance(rule, Match):
                return f"refused by {self.describe()}"
            return (
                "matches, but was served already"
                if i in self._served
                else "matches, but is not next in order"
            )

        lines = [f"#{i} {note(i)}" for i in scored[:3]]
        closest = " | ".join(lines) if lines else "the tape has no exchanges"
        return TapeMismatch(
            f"no recorded exchange matches {where} ({self.describe()}); closest: {closest}",
            path=self.tape.path,
        )
