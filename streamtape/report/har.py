"""A tape as a HAR 1.2 document (HTTP Archive), for the browsers' devtools and the tools that read HAR.

Sans-IO: a ``Tape`` in, a JSON-ready dict out (``streamtape export --har`` writes it). HAR has no place
for chunk times, outcomes, recorder gaps or a diagnosis, so those go in underscore-prefixed custom fields,
as HAR 1.2 allows: ``_chunks``, ``_outcome``, ``_gaps``, ``_verdict``, ``_exchange`` (the number ``info``
gives it). Bodies are kept as received (still content-encoded): text when UTF-8, else base64.

Times: ``startedDateTime`` is the segment's wall-clock start plus the request's ``t_ns``; ``wait`` runs from
the request to the response head (to the end, when no head came), ``receive`` from the head to the end,
so ``send + wait + receive == time``, the recorded duration. The tape knows nothing of DNS, connecting or
queueing: those are -1 (not applicable), and ``send`` is 0.
"""

from __future__ import annotations

from contextlib import suppress
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from .._version import __version__
from ..analysis.diagnose import diagnose
from ..format.jsonform import bytes_to_json
from ..format.records import Header, Headers
from ..model import Exchange, Tape
from .summary import Numbered

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _ms(ns: int) -> float:
    """Nanoseconds as HAR's milliseconds, to the microsecond."""
    return round(ns / 1e6, 3)


def _started(header: Header, t_ns: int) -> tuple[str, str | None]:
    """The request's wall-clock time in ISO 8601, and a comment when the header's time is not a date."""
    try:
        when = _EPOCH + timedelta(microseconds=(header.started_unix_ns + t_ns) // 1000)
    except (OverflowError, ValueError, TypeError):  # a hostile header: HAR still needs a date
        return _EPOCH.isoformat(timespec="milliseconds"), "the tape's start time is not a date"
    return when.isoformat(timespec="milliseconds"), None


def _header(headers: Headers, name: str) -> str:
    return next((v for n, v in headers if n.lower() == name), "")


def _pairs(headers: Headers) -> list[dict[str, str]]:
    return [{"name": n, "value": v} for n, v in headers]


def _body(data: bytes) -> dict[str, str]:
    """HAR's ``text``, with ``encoding: "base64"`` when the bytes are not UTF-8 (the JSON form decides)."""
    form = bytes_to_json(data)
    if "text" in form:
        return {"text": form["text"]}
    return {"text": form["base64"], "encoding": "base64"}


def _request_cookies(headers: Headers) -> list[dict[str, str]]:
    cookies = []
    for name, value in headers:
        if name.lower() == "cookie":
            for piece in value.split(";"):
                key, eq, val = piece.strip().partition("=")
                if key and eq:
                    cookies.append({"name": key, "value": val})
    return cookies


def _set_cookie(value: str) -> dict[str, Any] | None:
    """One ``Set-Cookie`` header as a HAR cookie: name, value and the attributes HAR names."""
    first, *attributes = value.split(";")
    name, eq, val = first.strip().partition("=")
    if not (name and eq):
        return None
    cookie: dict[str, Any] = {"name": name, "value": val}
    for attribute in attributes:
        key, _, arg = attribute.strip().partition("=")
        key = key.lower()
        if key in ("path", "domain"):
            cookie[key] = arg
        elif key == "expires":
            with suppress(TypeError, ValueError, IndexError):  # not an HTTP date: left out (HAR wants ISO)
                cookie["expires"] = parsedate_to_datetime(arg).isoformat()
        elif key == "httponly":
            cookie["httpOnly"] = True
        elif key == "secure":
            cookie["secure"] = True
    return cookie


def _response_cookies(headers: Headers) -> list[dict[str, Any]]:
    found = (_set_cookie(v) for n, v in headers if n.lower() == "set-cookie")
    return [c for c in found if c is not None]


def _request(exchange: Exchange) -> dict[str, Any]:
    request = exchange.request
    query = parse_qsl(urlsplit(request.url).query, keep_blank_values=True)
    size = len(request.body) if request.body_size is None else request.body_size
    doc: dict[str, Any] = {
        "method": request.method,
        "url": request.url,
        "httpVersion": exchange.response.http_version if exchange.response else "",  # the tape has no other
        "cookies": _request_cookies(request.headers),
        "headers": _pairs(request.headers),
        "queryString": [{"name": n, "value": v} for n, v in query],
        "headersSize": -1,
        "bodySize": size,
    }
    if request.body or size:
        post = {"mimeType": _header(request.headers, "content-type"), **_body(request.body)}
        if size > len(request.body):
            post["comment"] = f"the tape holds the first {len(request.body)} of {size} bytes"
        doc["postData"] = post
    return doc


def _response(exchange: Exchange) -> dict[str, Any]:
    response, end = exchange.response, exchange.end
    body = exchange.body
    if response is None:  # refused, or failed before any head: as browsers write a failed request
        doc: dict[str, Any] = {
            "status": 0,
            "statusText": "",
            "httpVersion": "",
            "cookies": [],
            "headers": [],
            "content": {"size": 0, "mimeType": ""},
            "redirectURL": "",
            "headersSize": -1,
            "bodySize": -1,
        }
    else:
        content: dict[str, Any] = {
            "size": len(body),
            "mimeType": _header(response.headers, "content-type"),
            **_body(body),
        }
        coding = _header(response.headers, "content-encoding")
        if coding and coding.lower() != "identity":
            content["comment"] = f"as received: still {coding}-encoded"
        doc = {
            "status": response.status_code,
            "statusText": response.reason,
            "httpVersion": response.http_version,
            "cookies": _response_cookies(response.headers),
            "headers": _pairs(response.headers),
            "content": content,
            "redirectURL": _header(response.headers, "location"),
            "headersSize": -1,
            "bodySize": len(body),
        }
    if end.outcome == "error":
        doc["_error"] = f"{end.error_type}: {end.message}"
    return doc


def _timings(exchange: Exchange) -> dict[str, float]:
    end_ns = exchange.end.t_ns
    head_ns = exchange.response.t_ns if exchange.response is not None else end_ns
    wait, receive = _ms(head_ns), _ms(end_ns - head_ns)
    return {"blocked": -1, "dns": -1, "connect": -1, "send": 0, "wait": wait, "receive": receive, "ssl": -1}


def har_entry(n: int, exchange: Exchange, header: Header) -> dict[str, Any]:
    """Exchange number ``n`` as a HAR entry; ``header`` is its segment's (where its times start)."""
    started, problem = _started(header, exchange.request.t_ns)
    end = exchange.end
    timings = _timings(exchange)
    entry: dict[str, Any] = {
        "startedDateTime": started,
        "time": round(timings["send"] + timings["wait"] + timings["receive"], 3),
        "request": _request(exchange),
        "response": _response(exchange),
        "cache": {},
        "timings": timings,
        "_exchange": n,
        "_chunks": [
            {"t_ms": _ms(c.t_ns), "size": len(c.data), **bytes_to_json(c.data)} for c in exchange.chunks
        ],
        "_outcome": {"outcome": end.outcome, "error_type": end.error_type, "message": end.message},
        "_verdict": diagnose(exchange).verdict,
    }
    comments = [problem] if problem else []
    if exchange.gaps:
        entry["_gaps"] = [
            {"t_ms": _ms(g.t_ns), "records": g.records, "bytes": g.bytes, "reason": g.reason}
            for g in exchange.gaps
        ]
        comments.append("DAMAGED: records of this exchange are missing from the tape (see _gaps)")
    if comments:
        entry["comment"] = "; ".join(comments)
    return entry


def har_document(tape: Tape, exchanges: Numbered | None = None) -> dict[str, Any]:
    """The tape (or the numbered exchanges given, as ``info`` numbers them) as a HAR 1.2 document."""
    chosen = list(enumerate(tape.exchanges)) if exchanges is None else exchanges
    segments = tape.segments or [tape.header]
    log: dict[str, Any] = {
        "version": "1.2",
        "creator": {"name": "streamtape", "version": __version__},
        "entries": [har_entry(n, e, segments[e.segment]) for n, e in chosen],
    }
    if tape.incomplete:
        log["comment"] = f"INCOMPLETE tape: {tape.problem}"
    return {"log": log}
