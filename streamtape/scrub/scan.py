"""What ``streamtape scan`` finds: secrets left in a tape, each with its place and kind, never its value.

Places, in an exchange's order: the URL (a query value, the userinfo, the path), request headers, the
request body (a JSON path when the body is JSON, else a byte offset), response headers, the response body
(the chunk where the secret starts and its byte offset; the whole body is searched as one byte string,
so a secret split across chunks is found; a gzip, deflate or zstd body is decoded first), and the end's
message; and each segment header's ``meta``.

Two sources of findings: the patterns of ``patterns.KINDS``, anywhere; and any value of a header or query
parameter the recorder redacts (its defaults, and the names in the tape's headers) that is not a
fingerprint, whatever it looks like, since such a tape was recorded with ``redact=False``.

A ``Finding`` holds no secret, only its masked form: what is printed cannot leak it.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus, urlsplit

from ..format.records import Headers
from ..model import Exchange, Tape
from ..record.redact import AUTH_SCHEME, Redactor, is_redacted, process_key
from ..replay.bodies import json_path
from .encoding import content_encoding, decoded_pieces
from .jsontext import Path, Value, values
from .patterns import Hit, classify, find, mask


@dataclass(frozen=True)
class Spot:
    """A secret in one place: bytes ``start:end`` of that place's text (a URL, a header value, a body)."""

    start: int
    end: int
    kind: str
    place: str
    secret: bytes = field(repr=False)
    chunk: int | None = None


@dataclass(frozen=True)
class Finding:
    """A secret ``scan`` found, as it may be shown: its place, kind and masked form (``patterns.mask``).

    ``exchange`` is the exchange's number (as ``info`` numbers it), None for a segment header's ``meta``;
    ``offset`` the byte offset in the body or text, ``chunk`` the response chunk where it starts."""

    exchange: int | None
    segment: int
    place: str
    kind: str
    masked: str
    offset: int | None = None
    chunk: int | None = None

    def where(self) -> str:
        return f"#{self.exchange}" if self.exchange is not None else f"segment {self.segment}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "exchange": self.exchange,
            "segment": self.segment,
            "place": self.place,
            "kind": self.kind,
            "masked": self.masked,
            "offset": self.offset,
            "chunk": self.chunk,
        }


@dataclass
class ScanResult:
    """Every finding of a tape, and notes on what could not be scanned as it should (an unknown encoding)."""

    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# -- names shown in places ------------------------------------------------------------------------------


def shown(name: str) -> str:
    """A name from the tape (a header, a query parameter, a JSON key) as a place may show it: masked when it
    is itself a secret."""
    raw = name.encode("utf-8", "surrogatepass")
    return mask(raw) if find(raw) else name


def shown_path(path: Path) -> str:
    return json_path(tuple(shown(p) if isinstance(p, str) else p for p in path))


# -- the names whose values are secrets -------------------------------------------------------------------


def secret_names(tape: Tape, headers: Iterable[str] = (), query: Iterable[str] = ()) -> Redactor:
    """A redactor for the recorder's default names, every segment's names and ``headers``/``query``."""
    hs, qs = set(headers), set(query)
    for header in tape.segments or [tape.header]:
        if header.redaction is not None:
            hs.update(header.redaction.headers)
            qs.update(header.redaction.query)
    return Redactor(headers=hs, query=qs, key=process_key())


# -- places -------------------------------------------------------------------------------------------


def _spots(hits: Iterable[Hit], data: bytes, place: str) -> list[Spot]:
    return [Spot(h.start, h.end, h.kind, place, data[h.start : h.end]) for h in hits]


def header_spots(side: str, headers: Headers, names: frozenset[str]) -> list[Spot]:
    """A named header's value that is not a fingerprint (its credentials after an auth scheme), and the
    patterns' hits in every other header (``text_spots``)."""
    out: list[Spot] = []
    for name, value in headers:
        place = f"{side} header {shown(name.lower())}"
        raw = value.encode("latin-1")
        if name.lower() not in names:
            out += text_spots(value, place)
            continue
        if not value or is_redacted(value):
            continue
        scheme = AUTH_SCHEME.match(value) if name.lower() not in ("cookie", "set-cookie") else None
        credentials = scheme.group(2).encode("latin-1") if scheme else raw
        bearer = scheme is not None and scheme.group(1).lower() == "bearer"
        kind = classify(credentials, "bearer-token" if bearer else "secret-header")
        out.append(Spot(0, len(raw), kind, place, credentials))
    return out


_HEX2 = re.compile(r"[0-9A-Fa-f]{2}")


def unquoted(raw: str, *, plus: bool) -> tuple[bytes, list[int]]:
    """A URL part percent-decoded (``+`` a space when ``plus``: a query), and for each decoded byte the
    offset in ``raw`` it came from, with ``len(raw)`` after the last: a secret found in the decoded bytes
    is replaced in the URL as it was written. The bytes are those section 5 fingerprints."""
    out = bytearray()
    where: list[int] = []
    i = 0
    while i < len(raw):
        if raw[i] == "%" and _HEX2.fullmatch(raw, i + 1, i + 3):
            out.append(int(raw[i + 1 : i + 3], 16))
            where.append(i)
            i += 3
            continue
        char = raw[i].encode("utf-8", "surrogatepass") if raw[i] != "+" or not plus else b" "
        out += char
        where += [i] * len(char)
        i += 1
    where.append(len(raw))
    return bytes(out), where


@dataclass(frozen=True)
class UrlPart:
    """A part of a URL, ``url[start:end]``, named as a place; ``name`` is a query parameter's name."""

    place: str
    start: int
    end: int
    plus: bool = False
    name: str | None = None


def url_parts(url: str) -> list[UrlPart]:
    """The userinfo, host, path, each query value (and name) and the fragment, where the URL has them."""
    parts = urlsplit(url)
    netloc_at = url.find("//") + 2 if parts.netloc else 0
    host_at = netloc_at + parts.netloc.rfind("@") + 1
    path_at = netloc_at + len(parts.netloc)
    query_at = path_at + len(parts.path) + 1
    fragment_at = query_at + len(parts.query) + 1 if "#" in url[path_at:] else len(url)
    out = [
        UrlPart("url userinfo", netloc_at, max(netloc_at, host_at - 1)),
        UrlPart("url host", host_at, path_at),
    ]
    out.append(UrlPart("url path", path_at, path_at + len(parts.path)))
    at = query_at
    for piece in parts.query.split("&") if url[query_at - 1 : query_at] == "?" else ():
        raw_name, eq, value = piece.partition("=")
        name = unquote_plus(raw_name)
        out.append(UrlPart(f"url query {shown(name)}", at, at + len(raw_name), True))
        start = at + len(raw_name) + len(eq)
        out.append(UrlPart(f"url query {shown(name)}", start, start + len(value), True, name if eq else None))
        at += len(piece) + 1
    out.append(UrlPart("url fragment", min(fragment_at, len(url)), len(url)))
    return [p for p in out if p.end > p.start]


def text_spots(raw: str, place: str, *, plus: bool = False, base: int = 0) -> list[Spot]:
    """The patterns' hits in a URL part or a header value, found in its percent-decoded bytes (so that
    ``Bearer%20...`` is a bearer token); each span is in ``raw`` as written (plus ``base``), each secret is
    the decoded bytes, what a fingerprint is of."""
    data, where = unquoted(raw, plus=plus)
    return [
        Spot(base + where[h.start], base + where[h.end], h.kind, place, data[h.start : h.end])
        for h in find(data)
    ]


def url_pattern_spots(url: str, skip: Callable[[UrlPart], bool] = lambda part: False) -> list[Spot]:
    """The patterns' hits in each part of ``url`` but those ``skip`` names (``text_spots``)."""
    out = []
    for part in url_parts(url):
        if not skip(part):
            out += text_spots(url[part.start : part.end], part.place, plus=part.plus, base=part.start)
    return out


def url_spots(url: str, query_names: frozenset[str]) -> list[Spot]:
    """A URL's password and named query values that are not fingerprints; the patterns' hits elsewhere."""
    parts = urlsplit(url)
    out: list[Spot] = []
    if parts.password and not is_redacted(parts.password):
        secret = unquoted(parts.password, plus=True)[0]
        out.append(Spot(0, 0, classify(secret, "url-password"), "url userinfo password", secret))

    def named(part: UrlPart) -> bool:
        return part.name is not None and part.name.lower() in query_names

    for part in url_parts(url):
        value = url[part.start : part.end]
        if named(part) and not is_redacted(value):
            secret = unquoted(value, plus=True)[0]
            out.append(Spot(part.start, part.end, classify(secret, "secret-query"), part.place, secret))
    skip_userinfo = bool(out and out[0].place == "url userinfo password")
    return out + url_pattern_spots(url, lambda p: named(p) or (skip_userinfo and p.place == "url userinfo"))


def json_string_hits(
    found: Sequence[Value], extra: Sequence[re.Pattern[bytes]] = ()
) -> Iterator[tuple[Value, bytes, list[Hit]]]:
    """Each string (and key) of a JSON document with secrets in its decoded text: the hits are in
    ``text``, the string's UTF-8 bytes (escapes decoded, so ``\\/`` or ``\\u`` cannot hide one)."""
    for value in found:
        if value.text is None:
            continue
        text = value.text.encode("utf-8", "surrogatepass")
        hits = find(text, extra)
        if hits:
            yield value, text, hits


def body_spots(body: bytes) -> list[Spot]:
    """Secrets in a request body: by JSON path when it is JSON, else by byte offset."""
    found = values(body)
    if found is None:
        return [
            Spot(h.start, h.end, h.kind, f"request body at byte {h.start}", body[h.start : h.end])
            for h in find(body)
        ]
    out = []
    for value, text, hits in json_string_hits(found):
        place = f"request body {shown_path(value.path)}{' (a key)' if value.key else ''}"
        out += [Spot(value.start, value.end, h.kind, place, text[h.start : h.end]) for h in hits]
    return out


def stream_spots(chunks: Sequence[bytes], headers: Headers) -> tuple[list[Spot], str | None]:
    """Secrets in a response body searched whole, each placed by the chunk where it starts; and a note
    when the body's content-encoding could not be decoded (then it is searched as stored)."""
    pieces, label, note = chunks, "", None
    coding = content_encoding(headers)
    if coding is not None:
        decoded = decoded_pieces(chunks, coding)
        if decoded is None:
            note = f"response body: content-encoding {coding} not decoded, searched as stored"
        else:
            pieces, label = decoded, f" ({coding}-decoded)"
    starts, at = [], 0
    for piece in pieces:
        starts.append(at)
        at += len(piece)
    body = b"".join(pieces)
    out = []
    for hit in find(body):
        chunk = bisect.bisect_right(starts, hit.start) - 1
        place = f"response body{label} chunk {chunk} at byte {hit.start}"
        out.append(Spot(hit.start, hit.end, hit.kind, place, body[hit.start : hit.end], chunk))
    return out, note


def meta_strings(value: Any, path: Path = (), depth: int = 0) -> Iterator[tuple[Path, bytes]]:
    """Every string and bytes value (and string key) in a header's ``meta``, with its path."""
    if depth > 64:
        return
    if isinstance(value, str):
        yield path, value.encode("utf-8", "surrogatepass")
    elif isinstance(value, bytes):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str):
                yield (*path, key), key.encode("utf-8", "surrogatepass")
            yield from meta_strings(
                item, (*path, key if isinstance(key, str | int) else repr(key)), depth + 1
            )
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from meta_strings(item, (*path, i), depth + 1)


# -- the scan -----------------------------------------------------------------------------------------


def exchange_spots(exchange: Exchange, names: Redactor) -> tuple[list[Spot], list[str]]:
    """Every secret in one exchange, in the order of its places, and notes on what was not decoded."""
    request = exchange.request
    spots = url_spots(request.url, names.query)
    spots += header_spots("request", request.headers, names.headers)
    spots += body_spots(request.body)
    notes = []
    if exchange.response is not None:
        spots += header_spots("response", exchange.response.headers, names.headers)
        found, note = stream_spots([c.data for c in exchange.chunks], exchange.response.headers)
        spots += found
        notes += [note] if note else []
    end = exchange.recorded_end
    if end is not None and end.message:
        raw = end.message.encode("utf-8", "surrogatepass")
        spots += _spots(find(raw), raw, "end message")
    return spots, notes


def scan_tape(tape: Tape, numbers: Iterable[int] | None = None) -> ScanResult:
    """Every secret left in ``tape``, by exchange number (segment headers' ``meta`` first); with
    ``numbers``, only in those exchanges."""
    result = ScanResult()
    names = secret_names(tape)
    chosen = range(len(tape.exchanges)) if numbers is None else numbers
    for segment, header in enumerate(tape.segments or [tape.header] if numbers is None else []):
        for path, raw in meta_strings(header.meta):
            for hit in find(raw):
                place = f"header meta {shown_path(path)}"
                result.findings.append(
                    Finding(None, segment, place, hit.kind, mask(raw[hit.start : hit.end]))
                )
    for n in chosen:
        exchange = tape.exchanges[n]
        spots, notes = exchange_spots(exchange, names)
        result.notes += [f"#{n} {note}" for note in notes]
        for spot in spots:
            offset = spot.start if spot.place.startswith(("request body", "response body")) else None
            result.findings.append(
                Finding(n, exchange.segment, spot.place, spot.kind, mask(spot.secret), offset, spot.chunk)
            )
    return result
