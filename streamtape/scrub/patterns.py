"""The secret kinds ``scan`` looks for: a table of regular expressions over bytes, and how a secret is shown.

Why hand-written patterns and not a scanner library: the candidates (detect-secrets, the largest) scan text
line by line and report line numbers, not byte offsets, so they cannot say which chunk a secret starts in
nor give the spans a rewrite needs; they pull in dependencies (PyYAML, requests) and global settings; and
their generic detectors (high-entropy strings, keywords) fire on what every OpenAI stream carries (the
random ``obfuscation`` padding, ids). The shapes below are the providers' documented prefixes, each
bounded so that it never starts or ends inside a longer token.

Patterns run on raw bytes, where text may still be JSON-escaped: a token may start right after an escape
(``\\n``), and a PEM block's line breaks may be ``\\n`` escapes. No pattern matches a fingerprint
(``REDACTED:<12 hex>``), a ``Bearer REDACTED:...`` value, an SSE ``id:``, a ``chatcmpl-`` id or padding.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

#: Where a token may start: not inside a longer token, except right after a JSON escape (``\n``, ``\t``)
#: or a percent-escape (``%20``, in a form body).
_START = rb"(?:(?<![A-Za-z0-9_-])|(?<=\\[nrt])|(?<=%[0-9A-Fa-f]{2}))"
_END = rb"(?![A-Za-z0-9_-])"


_DIGIT, _LETTER, _LOWER, _UPPER = (re.compile(c) for c in (rb"[0-9]", rb"[A-Za-z]", rb"[a-z]", rb"[A-Z]"))


def _mixed(token: bytes) -> bool:
    """A real key's random part holds letters and digits; a long hyphenated word does not."""
    return bool(_DIGIT.search(token) and _LETTER.search(token))


def _aws_secret(token: bytes) -> bool:
    """An unnamed 40-character token near a key id: base64 of random bytes has both cases."""
    return bool(_LOWER.search(token) and _UPPER.search(token))


@dataclass(frozen=True)
class Kind:
    """One kind of secret: its name, its pattern (``group`` is the secret), a check that cuts false hits."""

    name: str
    regex: re.Pattern[bytes]
    group: int = 0
    check: Callable[[bytes], bool] | None = None


def _kind(name: str, pattern: bytes, group: int = 0, check: Callable[[bytes], bool] | None = None) -> Kind:
    return Kind(name, re.compile(pattern), group, check)


_PEM_BODY = rb"(?:[A-Za-z0-9+/=]|\\[nrt]|[ \t\r\n])*"
_PEM_LAZY = rb"(?:(?!\n\n|\r\n\r\n)[\s\S]){0,65536}?"  # never across an SSE event's blank line

#: In priority order: where two hits overlap, the earlier kind names the merged hit.
KINDS: tuple[Kind, ...] = (
    _kind(
        "private-key",
        rb"-----BEGIN ([A-Z0-9]+ )*PRIVATE KEY-----(?:"
        + _PEM_LAZY
        + rb"-----END ([A-Z0-9]+ )*PRIVATE KEY-----|"
        + _PEM_BODY
        + rb")",
    ),
    _kind("jwt", _START + rb"eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*" + _END),
    _kind("anthropic-key", _START + rb"sk-ant-[A-Za-z0-9_-]{20,}" + _END),
    _kind("openai-key", _START + rb"sk-(?!ant-)[A-Za-z0-9_-]{20,}" + _END, check=_mixed),
    _kind("github-token", _START + rb"(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})" + _END),
    _kind("google-api-key", _START + rb"AIza[A-Za-z0-9_-]{35}" + _END),
    _kind("aws-access-key-id", _START + rb"(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Za-z0-9])"),
    _kind(
        "aws-secret-access-key",
        rb"(?i:aws[_-]?secret[_-]?access[_-]?key|secret[_-]?access[_-]?key)[\\\"' \t]*[:=][\\\"' \t]*"
        rb"([A-Za-z0-9/+=]{40})(?![A-Za-z0-9/+=])",
        group=1,
    ),
    _kind(
        "bearer-token",
        rb"(?i:bearer)[ \t]+(?!REDACTED:)([A-Za-z0-9._~+/=-]{16,})(?![A-Za-z0-9._~+/=-])",
        group=1,
        check=_mixed,
    ),
)
KIND_NAMES: tuple[str, ...] = tuple(k.name for k in KINDS)

#: A 40-character AWS secret access key standing within this many bytes of an access key id.
_AWS_NEAR = 256
_AWS_TOKEN = re.compile(rb"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")
#: What a user's ``--pattern`` hit is called.
USER_PATTERN = "pattern"


@dataclass(frozen=True, order=True)
class Hit:
    """Bytes ``start:end`` of a text are a secret of ``kind``."""

    start: int
    end: int
    kind: str


def _raw_hits(data: bytes, extra: Sequence[re.Pattern[bytes]], kinds: bool) -> Iterable[tuple[int, Hit]]:
    """Every hit with its kind's priority (lower wins), overlapping ones included."""
    ids: list[Hit] = []
    for rank, kind in enumerate(KINDS if kinds else ()):
        for m in kind.regex.finditer(data):
            start, end = m.span(kind.group)
            if end > start and (kind.check is None or kind.check(data[start:end])):
                hit = Hit(start, end, kind.name)
                if kind.name == "aws-access-key-id":
                    ids.append(hit)
                yield rank, hit
    rank = KIND_NAMES.index("aws-secret-access-key")
    for key_id in ids:  # a secret access key next to its key id, named or not
        lo, hi = max(0, key_id.start - _AWS_NEAR), key_id.end + _AWS_NEAR
        for m in _AWS_TOKEN.finditer(data, lo, min(hi, len(data))):
            if _aws_secret(m.group()):
                yield rank, Hit(m.start(), m.end(), "aws-secret-access-key")
    for pattern in extra:
        for m in pattern.finditer(data):
            if m.end() > m.start():
                yield len(KINDS), Hit(m.start(), m.end(), USER_PATTERN)


def find(data: bytes, extra: Sequence[re.Pattern[bytes]] = (), *, kinds: bool = True) -> list[Hit]:
    """The secrets in ``data`` (of ``KINDS`` unless not ``kinds``, and matches of the ``extra`` patterns),
    by start, never overlapping: overlapping hits merge into one span named by the kind that comes first
    in ``KINDS`` (a JWT sent as a bearer token is a ``jwt``)."""
    if not data:
        return []
    ranked = sorted(_raw_hits(data, extra, kinds), key=lambda rh: (rh[1].start, -rh[1].end, rh[0]))
    merged: list[tuple[int, Hit]] = []
    for rank, hit in ranked:
        if merged and hit.start < merged[-1][1].end:
            top_rank, top = merged[-1]
            best = top.kind if top_rank <= rank else hit.kind
            merged[-1] = (min(top_rank, rank), Hit(top.start, max(top.end, hit.end), best))
        else:
            merged.append((rank, hit))
    return [hit for _, hit in merged]


def classify(secret: bytes, default: str) -> str:
    """The kind of a value known to be secret (a header the recorder redacts): a pattern's, else ``default``."""
    hits = find(secret)
    return hits[0].kind if hits else default


def mask(secret: bytes) -> str:
    """A secret as it may be printed: at most its first and last four characters, and its length.

    Up to 9 bytes nothing of it shows, up to 19 two characters each side, so a short secret never shows
    most of itself.
    """
    n = len(secret)
    show = 4 if n >= 20 else 2 if n >= 10 else 0
    if not show:
        return f"… ({n} bytes)"
    head = secret[:show].decode("latin-1")
    tail = secret[-show:].decode("latin-1")
    printable = "".join(c if c.isprintable() and c.isascii() else "?" for c in head + tail)
    return f"{printable[:show]}…{printable[show:]} ({n} bytes)"


def compile_patterns(patterns: Iterable[str]) -> list[re.Pattern[bytes]]:
    """The user's ``--pattern`` regular expressions, over bytes; ``ValueError`` naming a bad one by number."""
    out = []
    for i, text in enumerate(patterns, 1):
        try:
            out.append(re.compile(text.encode("utf-8", "surrogateescape")))
        except re.error as exc:
            raise ValueError(f"pattern #{i} is not a regular expression: {exc}") from None
    return out
