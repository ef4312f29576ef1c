"""The sans-IO core of ``scan`` and ``redact`` (``streamtape.scrub``): the pattern table on the shapes it must
find and the look-alikes it must not, masking, byte edits across chunks, JSON values with their spans, and
the format's richer ``redaction`` map read by old and new readers alike.

Fake secrets are assembled at run time (``"sk-" + ...``) so that no scanner takes this file for a leak.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import msgspec
import pytest
from helpers import VECTORS
from hypothesis import given
from hypothesis import strategies as st
from test_layout import FORBIDDEN, FORBIDDEN_INSIDE, PACKAGE, _module_level_imports

import streamtape
from streamtape.emulator import Scenario, openai_chat, openai_responses
from streamtape.format.records import End, Header, Redaction, Request
from streamtape.model import build_tape
from streamtape.scrub import redact_tape
from streamtape.scrub.edits import Edit, apply, apply_to_pieces, normalized
from streamtape.scrub.jsontext import values
from streamtape.scrub.patterns import KIND_NAMES, find, mask

OPENAI = "sk-" + "proj-" + "Q1w2E3r4" * 8
GOOGLE = "AIza" + "Sy" + "Qw1Er2Ty3" * 3 + "Ui4Op5"
PEM_BODY = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC" + "bM9x" * 16

#: (kind, text holding the secret, the secret)
SHAPES = [
    ("openai-key", f"key {OPENAI} end", OPENAI),
    ("openai-key", "sk-" + "svcacct-" + "Zz9" * 15, "sk-" + "svcacct-" + "Zz9" * 15),
    ("openai-key", "sk-" + "aB3dE5" * 8, "sk-" + "aB3dE5" * 8),
    ("anthropic-key", "x-api-key: " + "sk-" + "ant-api03-" + "Xy7_" * 24, "sk-" + "ant-api03-" + "Xy7_" * 24),
    ("aws-access-key-id", "id AKIA" + "Z7Y6X5W4V3U2T1S0 ok", "AKIA" + "Z7Y6X5W4V3U2T1S0"),
    ("aws-access-key-id", "ASIA" + "Q0W9E8R7T6Y5U4I3", "ASIA" + "Q0W9E8R7T6Y5U4I3"),
    ("aws-secret-access-key", 'aws_secret_access_key = "' + "kT9/" * 10 + '"', "kT9/" * 10),
    ("aws-secret-access-key", "SecretAccessKey: " + "aBcD1234" * 5, "aBcD1234" * 5),
    ("google-api-key", GOOGLE, GOOGLE),
    *[
        ("github-token", f"{p}_{'R2d2C3po' * 5}", f"{p}_{'R2d2C3po' * 5}")
        for p in ("ghp", "gho", "ghu", "ghs", "ghr")
    ],
    ("github-token", "github" + "_pat_" + "11AB_" * 17, "github" + "_pat_" + "11AB_" * 17),
    ("bearer-token", "Authorization: Bearer tok_" + "9fK2" * 6, "tok_" + "9fK2" * 6),
    ("jwt", "eyJ" + "hbGciOiJIUzI1NiJ9.eyJ" + "zdWIiOiI0MiJ9.c2lnbmF0dXJl", None),
    ("private-key", f"-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}\n-----END RSA PRIVATE KEY-----", None),
]


@pytest.mark.parametrize(
    ("kind", "text", "secret"), SHAPES, ids=[f"{kind}-{i}" for i, (kind, *_) in enumerate(SHAPES)]
)
def test_each_shape_is_found_with_its_kind_and_exact_span(kind: str, text: str, secret: str | None) -> None:
    data = text.encode()
    (hit,) = find(data)
    assert hit.kind == kind
    assert data[hit.start : hit.end] == (secret or text).encode()


def test_every_kind_has_a_shape_here() -> None:
    assert {kind for kind, *_ in SHAPES} == set(KIND_NAMES)


@pytest.mark.parametrize("around", ['"{}"', "\\n{}\\n", "data: {}\n\n", "%20{}%20", "a={}&b=1", "({})"])
def test_a_secret_is_found_in_json_escapes_sse_and_urls(around: str) -> None:
    data = around.format(OPENAI).encode()
    assert [(data[h.start : h.end], h.kind) for h in find(data)] == [(OPENAI.encode(), "openai-key")]


def test_a_pem_key_is_found_whole_with_escaped_line_breaks_and_without_its_end() -> None:
    escaped = json.dumps(f"-----BEGIN PRIVATE KEY-----\n{PEM_BODY}\n-----END PRIVATE KEY-----\n").encode()
    (hit,) = find(escaped)
    assert escaped[hit.start : hit.end].endswith(b"-----END PRIVATE KEY-----") and hit.kind == "private-key"
    cut = b'{"k":"-----BEGIN EC PRIVATE KEY-----\\n' + PEM_BODY.encode() + b'\\nMII"}\n\n'
    (hit,) = find(cut)
    assert cut[hit.end :] == b'"}\n\n'  # the base64 and its escapes, not the JSON or the SSE blank line


LOOK_ALIKES = [
    "Bearer REDACTED:3f9a1c2b7d4e",
    "REDACTED:0123456789ab sk-test sk-demo-not-a-real-key",
    'id: chatcmpl-iNUVF7mBGItwEuhn9rvpJn4y4Xli2\ndata: {"id":"chatcmpl-iNUVF7mBGItwEuhn9rvpJn4y4Xli2"}',
    "task-1234567890abcdefghij risk-assessment-2024-final-v2 ask-me-anything-about-it-2",
    "the bearer of bad news, a bearer instrument",
    "AKIA1234 AKIAIOSFODNN7EXAMPLE1234 xAKIAIOSFODNN7EXAMPL",
    "eyJhbGciOiJIUzI1NiJ9 (a JWT header alone)",
    "-----BEGIN PUBLIC KEY-----",
    "ghp_short github_pat_short",
]


@pytest.mark.parametrize("text", LOOK_ALIKES)
def test_look_alikes_are_not_secrets(text: str) -> None:
    assert find(text.encode()) == []


def test_the_emulators_own_streams_hold_nothing_that_looks_like_a_secret() -> None:
    """Ids, system fingerprints and the random ``obfuscation`` padding, over many seeds and both APIs."""
    request: dict[str, Any] = {"model": "gpt-4o", "stream": True, "messages": [], "input": "hi"}
    for seed in range(60):
        scenario = Scenario(events=30, seed=seed, tools=seed % 3, unicode=bool(seed % 2))
        for stream in (openai_chat.stream_events, openai_responses.stream_events):
            body = b"".join(stream(scenario, request))
            assert find(body) == [], (seed, stream)


@given(st.binary(min_size=0, max_size=200))
def test_a_mask_never_shows_more_than_eight_characters_nor_most_of_a_short_secret(secret: bytes) -> None:
    shown = mask(secret).rpartition(" (")[0].replace("…", "")
    assert len(shown) <= min(8, len(secret) * 2 // 5)
    assert mask(secret).endswith(f"({len(secret)} bytes)")


@given(
    st.lists(st.binary(max_size=12), min_size=1, max_size=8),
    st.lists(st.tuples(st.integers(0, 80), st.integers(1, 20), st.binary(max_size=6)), max_size=5),
)
def test_edits_across_pieces_equal_edits_of_the_whole_and_keep_the_piece_count(
    pieces: list[bytes], raw: list[tuple[int, int, bytes]]
) -> None:
    data = b"".join(pieces)
    edits = [Edit(min(s, len(data)), min(s + n, len(data)), r) for s, n, r in raw if s < len(data)]
    done = normalized(edits, lambda a, b: b"<%d:%d>" % (a, b))
    out = apply_to_pieces(pieces, done)
    assert len(out) == len(pieces)
    assert b"".join(out) == apply(data, done)
    starts = [sum(map(len, pieces[:i])) for i in range(len(pieces))]
    for edit in done:  # each replacement sits in the (non-empty) piece where its edit starts
        owner = max(i for i, at in enumerate(starts) if at <= edit.start and pieces[i])
        assert edit.replacement in out[owner]


def _containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    _containers,
    max_leaves=20,
)


@given(json_values, st.sampled_from([{}, {"indent": 1}, {"ensure_ascii": False}, {"separators": (",", ":")}]))
def test_every_json_value_is_found_at_its_path_with_its_exact_bytes(doc: Any, style: dict[str, Any]) -> None:
    data = json.dumps(doc, **style).encode()
    found = values(b" " + data + b"\n", base=-1)
    assert found is not None
    for v in found:
        if v.key:
            continue
        expected: Any = doc
        for part in v.path:
            expected = expected[part]
        assert json.loads(data[v.start : v.end]) == expected
        if isinstance(expected, str):
            assert v.text == expected


NOT_JSON = [b"", b"{", b'{"a":1} x', b"[1,]", b"\xff", b"[" * 600 + b"]" * 600, b"NaN x"]


@pytest.mark.parametrize("data", NOT_JSON)
def test_what_is_not_one_json_document_is_none(data: bytes) -> None:
    assert values(data) is None


# -- the format: the richer redaction map, old and new readers ------------------------------------------


class OldRedaction(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    """``Redaction`` as a 1.0 reader (streamtape 0.1.0) declared it."""

    headers: list[str]
    query: list[str]
    key_id: str
    scheme: str = "hmac-sha256-48"


class OldHeader(msgspec.Struct, tag="header", array_like=True, frozen=True):
    magic: str
    version: tuple[int, int]
    writer: str
    started_unix_ns: int
    meta: dict[str, Any] = {}
    redaction: OldRedaction | None = None


def test_an_old_reader_reads_the_header_of_a_redacted_tape() -> None:
    header = streamtape.open_tape(VECTORS / "redacted.tape").header
    old = msgspec.msgpack.decode(msgspec.msgpack.encode(header), type=OldHeader)
    assert old.redaction is not None and old.redaction.key_id == "000000000000"
    assert "x-goog-api-key" in old.redaction.headers


@pytest.mark.parametrize("name", ["complete", "interleaved", "errored"])
def test_a_tape_without_the_new_keys_reads_with_their_defaults(name: str) -> None:
    redaction = streamtape.open_tape(VECTORS / f"{name}.tape").header.redaction
    assert redaction == Redaction(headers=["authorization"], query=["key"], key_id="000000000000")
    assert redaction.body_fields == redaction.kinds == redaction.patterns == redaction.passes == []
    assert redaction.prompts is False


def test_the_redacted_vector_holds_fingerprints_under_its_published_key() -> None:
    key = b"streamtape-vector-key"
    tape = streamtape.open_tape(VECTORS / "redacted.tape")
    redaction = tape.header.redaction
    assert redaction is not None and redaction.prompts and redaction.body_fields == ["user"]
    assert redaction.key_id == "000000000000"  # the recorder's; the pass has its own
    (the_pass,) = redaction.passes
    assert the_pass.key_id == hmac.new(key, b"streamtape key id", hashlib.sha256).hexdigest()[:12]
    secret = ("sk-" + "proj-" + "T3stK3y" * 8).encode()
    fingerprint = "REDACTED:" + hmac.new(key, secret, hashlib.sha256).hexdigest()[:12]
    (exchange,) = tape.exchanges
    assert fingerprint.encode() in exchange.chunks[1].data  # where the key started, not in the next chunk
    assert b"REDACTED" not in exchange.chunks[2].data.partition(b"(")[0]
    pattern = hmac.new(key, b"ticket-[0-9]+", hashlib.sha256).hexdigest()[:12]
    assert redaction.patterns == [f"REDACTED:{pattern}"]  # the pattern's fingerprint, never its text


def test_a_segment_of_a_newer_minor_version_is_not_redacted() -> None:
    """Its records this version cannot read would be dropped unscanned: refused, as ``compact`` refuses."""
    newer = Header("streamtape", (1, 2), "streamtape 9.0.0", 0)
    tape = build_tape([newer, Request(1, 0, "GET", "http://h/", []), End(1, 1, "complete")])
    with pytest.raises(streamtape.TapeError, match=r"format 1\.2 by streamtape 9\.0\.0"):
        redact_tape(tape, tool="test", key="k")


# -- layout -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted((PACKAGE / "scrub").glob("*.py")), ids=lambda p: p.name)
def test_the_scrub_package_is_sans_io(path: Path) -> None:
    for name in _module_level_imports(path):
        assert name.split(".")[0] not in FORBIDDEN, f"{path.name} imports {name}"
        inside = name.removeprefix("streamtape.")
        assert not inside.startswith(FORBIDDEN_INSIDE), f"{path.name} imports {name}"
