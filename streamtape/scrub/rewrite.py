"""What ``streamtape redact`` writes: a copy of a tape with every secret ``scan`` finds, and whatever else
the user names, replaced by fingerprints. Sans-IO: a ``Tape`` in, a ``Tape`` out.

- Header and query values the recorder redacts (its defaults, the tape's names, ``headers``/``query``) go
  through the recorder's own ``Redactor`` (a value that already is a fingerprint is kept), so a tape
  recorded with ``redact=False`` and then redacted holds what the recorder would have written.
- A secret found by a pattern becomes ``REDACTED:<12 hex>`` in its place, the rest of the text kept. In a
  JSON request body that happens inside the decoded string, which is then written back as a JSON string,
  so the body stays valid JSON (and keeps every other byte).
- ``fields`` (names at any depth, or ``$.``-paths, as ``replay.bodies.Ignore`` reads them) and, with
  ``prompts``, the prompts of chat, Responses and Messages requests, are replaced whole by the JSON string
  ``"REDACTED:<12 hex>"``: in request bodies, and in a response's JSON, the body or each ``data:`` payload.
- The response body is edited as one byte string and cut back into the same chunks at the same times
  (``edits``): a fingerprint goes where its secret starts. A replacement holds no line break, so the SSE
  framing stays as it was. A gzip (deflate, zstd) body that needs an edit is stored decoded, each chunk's
  decoded bytes at its own time, without its ``content-encoding``.
- Everything else is kept as it was, damage included: gaps, exchanges without an end, segments.

The fingerprint is the recorder's (``Redactor.fingerprint``, spec section 5), under the key the recorder
would use (``$STREAMTAPE_REDACT_KEY`` or the user's key file), so equal secrets get equal fingerprints.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from ..errors import TapeError
from ..format.records import FORMAT_MAJOR, FORMAT_MINOR, Chunk, Headers, Redaction, RedactionPass
from ..model import Exchange, Tape
from ..record.redact import Redactor
from ..replay.bodies import FINGERPRINT, Ignore
from .edits import Edit, apply, apply_to_pieces, normalized
from .encoding import content_encoding, decoded_pieces, without_encoding
from .jsontext import Value, encode_string, values
from .patterns import KIND_NAMES, compile_patterns, find
from .scan import Spot, json_string_hits, secret_names, text_spots, url_pattern_spots

#: Roles whose message content is a prompt (OpenAI chat: user, system, developer; Anthropic: user).
PROMPT_ROLES = ("user", "system", "developer")
#: Top-level request fields that are prompts: Anthropic ``system``, Responses ``input`` and ``instructions``.
PROMPT_FIELDS = ("system", "input", "instructions")
_LINE = re.compile(rb"[^\r\n]+")


@dataclass(frozen=True)
class RedactOptions:
    """What to redact besides what ``scan`` finds."""

    headers: tuple[str, ...] = ()
    query: tuple[str, ...] = ()
    fields: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()
    prompts: bool = False


@dataclass
class RedactResult:
    """The redacted tape, and what was replaced: counts by kind (``header``, ``query``, ``field``,
    ``prompt``, ``pattern`` and the secret kinds), and how many exchanges changed."""

    tape: Tape
    replaced: Counter[str] = field(default_factory=Counter)
    exchanges: int = 0


class _Keeping(Redactor):
    """The recorder's redactor, except that a value that already is a fingerprint stays as it is."""

    def fingerprint(self, secret: str | bytes) -> str:
        text = secret.decode("latin-1") if isinstance(secret, bytes) else secret
        return text if FINGERPRINT.fullmatch(text) else super().fingerprint(secret)


class _Pass:
    """One exchange at a time, with the options compiled, counting what it replaces."""

    def __init__(self, redactor: _Keeping, options: RedactOptions) -> None:
        self.redactor = redactor
        self.extra = compile_patterns(options.patterns)
        self.ignore = Ignore.of(options.fields)
        self.prompts = options.prompts
        self.replaced: Counter[str] = Counter()

    def fp(self, secret: bytes) -> bytes:
        return self.redactor.fingerprint(secret).encode("ascii")

    def hit_edits(self, data: bytes, *, kinds: bool = True, extra: bool = True) -> list[Edit]:
        hits = find(data, self.extra if extra else (), kinds=kinds)
        self.replaced.update(h.kind for h in hits)
        return [Edit(h.start, h.end, self.fp(data[h.start : h.end])) for h in hits]

    def text(self, value: str, encoding: str = "utf-8", *, kinds: bool = True) -> str:
        raw = value.encode(encoding, "surrogatepass")
        return apply(raw, self.hit_edits(raw, kinds=kinds)).decode(encoding, "surrogatepass")

    # -- request ----------------------------------------------------------------------------------------

    def spots(self, text: str, spots: Sequence[Spot]) -> str:
        """``text`` with each spot (in order, none overlapping) replaced by its secret's fingerprint."""
        out, at = [], 0
        for spot in spots:
            self.replaced[spot.kind] += 1
            out += [text[at : spot.start], self.redactor.fingerprint(spot.secret)]
            at = spot.end
        return "".join([*out, text[at:]])

    def headers(self, headers: Headers) -> Headers:
        named = self.redactor.redact_headers(headers)
        self.replaced["header"] += sum(a != b for a, b in zip(headers, named, strict=True))
        found = [(n, self.spots(v, text_spots(v, ""))) for n, v in named]
        return [(n, self.text(v, "latin-1", kinds=False)) for n, v in found]

    def url(self, url: str) -> str:
        named = self.redactor.redact_url(url)
        self.replaced["query"] += named != url
        return self.text(self.spots(named, url_pattern_spots(named)), kinds=False)

    def whole(self, data: bytes, value: Value, base: int, kind: str) -> Edit:
        """A JSON value replaced by the fingerprint of its text (a string) or of its JSON (anything else)."""
        self.replaced[kind] += 1
        secret = value.text.encode("utf-8", "surrogatepass") if value.text is not None else None
        raw = data[value.start - base : value.end - base]
        return Edit(value.start, value.end, b'"' + self.fp(secret if secret is not None else raw) + b'"')

    def json_edits(self, data: bytes, found: Sequence[Value], base: int, *, request: bool) -> list[Edit]:
        edits = [self.whole(data, v, base, "field") for v in found if not v.key and self.ignore.skips(v.path)]
        if request and self.prompts:
            edits += [self.whole(data, v, base, "prompt") for v in _prompts(found)]
        return edits

    def body(self, body: bytes) -> bytes:
        found = values(body)
        if found is None:
            return apply(body, normalized(self.hit_edits(body), self.merge(body)))
        edits = self.json_edits(body, found, 0, request=True)
        for value, text, hits in json_string_hits(found, self.extra):
            self.replaced.update(h.kind for h in hits)
            new = apply(text, [Edit(h.start, h.end, self.fp(text[h.start : h.end])) for h in hits])
            edits.append(Edit(value.start, value.end, encode_string(new.decode("utf-8", "surrogatepass"))))
        return apply(body, normalized(edits, self.merge(body)))

    def merge(self, data: bytes) -> Callable[[int, int], bytes]:
        return lambda start, end: self.fp(data[start:end])

    # -- response ---------------------------------------------------------------------------------------

    def stream(self, exchange: Exchange) -> tuple[Headers | None, list[bytes] | None]:
        """New response headers and chunk data, or None for each that stays as it was."""
        assert exchange.response is not None
        headers = exchange.response.headers
        pieces = [c.data for c in exchange.chunks]
        coding = content_encoding(headers)
        decoded = decoded_pieces(pieces, coding) if coding is not None else None
        work = decoded if decoded is not None else pieces
        body = b"".join(work)
        edits = self.hit_edits(body, extra=False)
        for line in _LINE.finditer(body) if self.extra else ():  # user patterns never cross a line break
            edits += [
                dataclasses.replace(e, start=e.start + line.start(), end=e.end + line.start())
                for e in self.hit_edits(line.group(), kinds=False)
            ]
        if self.ignore:
            for base, found in _payloads(body):
                edits += self.json_edits(body[base:], found, base, request=False)
        if not edits:
            return None, None
        new = apply_to_pieces(work, normalized(edits, self.merge(body)))
        return (without_encoding(headers) if decoded is not None else None), new

    def exchange(self, exchange: Exchange) -> Exchange:
        request = exchange.request
        request = msgspec.structs.replace(
            request,
            url=self.url(request.url),
            headers=self.headers(request.headers),
            body=self.body(request.body),
        )
        response, chunks = exchange.response, exchange.chunks
        if response is not None:
            headers, data = self.stream(exchange)
            response = msgspec.structs.replace(response, headers=self.headers(headers or response.headers))
            if data is not None:
                chunks = type(chunks)(Chunk(c.x, c.t_ns, d) for c, d in zip(chunks, data, strict=True))
        end = exchange.recorded_end
        if end is not None and end.message:
            end = msgspec.structs.replace(end, message=self.text(end.message))
        return dataclasses.replace(
            exchange, request=request, response=response, chunks=chunks, recorded_end=end
        )

    def meta(self, value: Any, depth: int = 0) -> Any:
        """A header's ``meta`` with secrets replaced in its strings (keys too) and bytes."""
        if depth > 64:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, bytes):
            return apply(value, self.hit_edits(value))
        if isinstance(value, dict):
            return {self.meta(k, depth + 1): self.meta(v, depth + 1) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.meta(v, depth + 1) for v in value)
        return value


def _prompts(found: Sequence[Value]) -> Iterable[Value]:
    """The prompt values of a request body: top-level ``system``/``input``/``instructions``, and the
    ``content`` of each message whose role is a prompt role."""

    def message(v: Value, part: str) -> bool:
        return len(v.path) == 3 and v.path[0] == "messages" and v.path[2] == part and not v.key

    roles = {v.path[1]: v.text for v in found if message(v, "role")}
    for v in found:
        if (len(v.path) == 1 and not v.key and v.path[0] in PROMPT_FIELDS) or (
            message(v, "content") and roles.get(v.path[1]) in PROMPT_ROLES
        ):
            yield v


def _payloads(body: bytes) -> Iterable[tuple[int, list[Value]]]:
    """The JSON in a response body: the body itself, or each ``data:`` line's payload (SSE)."""
    whole = values(body)
    if whole is not None:
        yield 0, whole
        return
    for line in _LINE.finditer(body):
        if not line.group().startswith(b"data:"):
            continue
        start = line.start() + 5 + (body[line.start() + 5 : line.start() + 6] == b" ")
        if body[start : start + 1] in (b"{", b"["):
            found = values(body[start : line.end()], base=start)
            if found is not None:
                yield start, found


def _described(old: Redaction | None, redactor: Redactor, options: RedactOptions, tool: str) -> Redaction:
    """A segment's redaction after this pass: the union of what was redacted before and now."""
    before = old if old is not None else Redaction(headers=[], query=[], key_id=redactor.key_id)
    patterns = [*before.patterns]
    patterns += [p for p in (redactor.fingerprint(t.encode()) for t in options.patterns) if p not in patterns]
    return msgspec.structs.replace(
        before,
        headers=sorted({*before.headers, *redactor.headers}),
        query=sorted({*before.query, *redactor.query}),
        body_fields=sorted({*before.body_fields, *options.fields}),
        kinds=sorted({*before.kinds, *KIND_NAMES}),
        patterns=patterns,
        prompts=before.prompts or options.prompts,
        passes=[*before.passes, RedactionPass(tool=tool, key_id=redactor.key_id)],
    )


def redact_tape(
    tape: Tape, options: RedactOptions = RedactOptions(), *, tool: str, key: bytes | str | None = None
) -> RedactResult:
    """``tape`` with its secrets replaced (the module docstring); ``key`` as ``Redactor`` takes it.

    Raises ``ValueError`` for a bad pattern or field path, ``TapeError`` for a segment of a newer minor
    version (its records this version cannot read would be dropped, unscanned)."""
    segments = tape.segments or [tape.header]
    newer = [h for h in segments if tuple(h.version) > (FORMAT_MAJOR, FORMAT_MINOR)]
    if newer:
        h = newer[0]
        raise TapeError(
            f"not redacting: a segment was written in format {h.version[0]}.{h.version[1]} by {h.writer}, "
            "whose records this version would drop unscanned",
            path=tape.path,
        )
    names = secret_names(tape, options.headers, options.query)
    redactor = _Keeping(headers=names.headers, query=names.query, key=key)
    work = _Pass(redactor, options)
    exchanges = [work.exchange(e) for e in tape.exchanges]
    headers = [
        msgspec.structs.replace(
            h,
            version=h.version if tuple(h.version) >= (1, 1) else (1, 1),
            meta=work.meta(h.meta),
            redaction=_described(h.redaction, redactor, options, tool),
        )
        for h in segments
    ]
    changed = sum(a != b for a, b in zip(tape.exchanges, exchanges, strict=True))
    out = Tape(headers[0], exchanges, tape.incomplete, tape.problem, None, headers, list(tape.damage))
    work.replaced = +work.replaced
    return RedactResult(out, work.replaced, changed)
