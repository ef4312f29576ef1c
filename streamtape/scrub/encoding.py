"""A content-encoded response body decoded chunk by chunk, each chunk's decoded bytes kept apart. Sans-IO.

Chunks are recorded before content decoding (spec section 2), so a gzip stream's secrets are invisible to
a byte scan. Decoding each chunk as it came keeps the boundaries: decoded piece ``i`` is what the client
could read once chunk ``i`` had arrived, so a finding still names its chunk, and a rewrite that must change
such a body can store the decoded pieces at the chunks' own times.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence

import zstandard

from ..format.records import Headers

#: What ``decoded_pieces`` understands.
DECODABLE = ("gzip", "x-gzip", "deflate", "zstd")


def content_encoding(headers: Headers) -> str | None:
    """The response's ``content-encoding`` in lower case, None for none or ``identity``."""
    for name, value in headers:
        if name.lower() == "content-encoding":
            coding = value.strip().lower()
            return None if coding in ("", "identity") else coding
    return None


def _decoder(coding: str, first: bytes) -> Callable[[bytes], bytes]:
    if coding == "zstd":
        return zstandard.ZstdDecompressor().decompressobj().decompress
    if coding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress
    wbits = zlib.MAX_WBITS if first[:1] and (first[0] & 0x0F) == 8 else -zlib.MAX_WBITS  # zlib or raw
    return zlib.decompressobj(wbits).decompress


def decoded_pieces(pieces: Sequence[bytes], coding: str) -> list[bytes] | None:
    """Each piece's decoded bytes, in order; None for a coding not in ``DECODABLE`` or data that does not
    decode (a body cut mid-stream decodes as far as it goes)."""
    if coding not in DECODABLE:
        return None
    decode = _decoder(coding, next((p for p in pieces if p), b""))
    try:
        return [decode(piece) for piece in pieces]
    except (zlib.error, zstandard.ZstdError):
        return None


def without_encoding(headers: Headers) -> Headers:
    """Response headers for a body stored decoded: no ``content-encoding``, no ``content-length``."""
    return [(n, v) for n, v in headers if n.lower() not in ("content-encoding", "content-length")]
