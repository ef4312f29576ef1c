"""Matching rules, sans-IO: JSON-aware bodies, ignored fields, fingerprints as wildcards, criteria, headers."""

from __future__ import annotations

import pytest

import streamtape
from streamtape.format.records import Header, Request
from streamtape.model import build_tape
from streamtape.replay.bodies import Ignore, first_difference, json_path, parse
from streamtape.replay.matching import Match, Matcher, ReplayRequest

URL = "https://api.test/v1/chat/completions"
FP = "REDACTED:0123456789ab"


def _tape(*requests: Request) -> streamtape.Tape:
    header = Header("streamtape", (1, 1), "test", 0, {}, None)
    return build_tape([header, *requests])


def _request(
    body: bytes, url: str = URL, headers: list[tuple[str, str]] | None = None, x: int = 1
) -> Request:
    return Request(x, 0, "POST", url, headers or [], body)


def _takes(recorded: Request, live: ReplayRequest, match: object = "request") -> bool:
    try:
        Matcher(_tape(recorded), match).take(live)  # type: ignore[arg-type]
    except streamtape.TapeMismatch:
        return False
    return True


@pytest.mark.parametrize(
    ("recorded", "live", "same"),
    [
        (b'{"a": 1, "b": [1, 2]}', b'{"b":[1,2],"a":1}', True),  # key order and whitespace
        (b'{"a": 1}', b'{"a": 1.0}', True),  # one number
        (b'{"a": true}', b'{"a": 1}', False),  # true is not 1
        (b'{"a": null}', b'{"a": false}', False),
        (b'{"a": [1, 2]}', b'{"a": [2, 1]}', False),  # arrays keep their order
        (b'{"a": [1, 2]}', b'{"a": [1, 2, 3]}', False),
        (b'{"a": {"b": 1}}', b'{"a": {"b": 1, "c": 2}}', False),  # an extra live field
        (b"not json", b"not json", True),
        (b"not json", b"not json!", False),
        (b"", b"", True),
    ],
)
def test_bodies_compare_as_json_when_both_are_json(recorded: bytes, live: bytes, same: bool) -> None:
    assert _takes(_request(recorded), ReplayRequest("POST", URL, live)) is same


def test_a_difference_is_reported_at_its_json_path() -> None:
    found = first_difference(
        parse(b'{"m": [{"c": "x"}, {"c": "y"}]}'), parse(b'{"m": [{"c": "x"}, {"c": "z"}]}')
    )
    assert found is not None and json_path(found.path) == "$.m[1].c"
    assert json_path(("a b", 0, "ok")) == '$["a b"][0].ok'
    missing = first_difference(parse(b'{"a": 1}'), parse(b'{"a": 1, "stream": true}'))
    assert missing is not None and json_path(missing.path) == "$.stream"


def test_ignored_fields_by_name_at_any_depth_and_by_path() -> None:
    recorded = b'{"user": "a", "metadata": {"trace": "1", "team": "x"}, "messages": [{"name": "n1", "content": "hi"}]}'
    live = b'{"user": "b", "metadata": {"trace": "2", "team": "x"}, "messages": [{"name": "n2", "content": "hi"}]}'
    rec = _request(recorded)
    req = ReplayRequest("POST", URL, live)
    assert not _takes(rec, req)
    assert not _takes(rec, req, Match(ignore_fields=("user", "$.metadata.trace")))  # the names still differ
    assert _takes(rec, req, Match(ignore_fields=("user", "$.metadata.trace", "$.messages[*].name")))
    assert _takes(rec, req, Match(ignore_fields=("user", "trace", "name")))
    assert not _takes(rec, req, Match(ignore_fields=("user", "trace", "$.messages[1].name")))
    with pytest.raises(ValueError, match="not a JSON path"):
        Match(ignore_fields=("$.a..b",))
    assert Ignore.of(['$["x-y"][0]']).skips(("x-y", 0)) and not Ignore.of(['$["x-y"][0]']).skips(("x-y", 1))


def test_a_fingerprint_in_the_recorded_body_matches_any_live_value_in_its_place() -> None:
    recorded = f'{{"messages": [{{"role": "user", "content": "{FP}"}}], "note": "key {FP} end"}}'.encode()
    rec = _request(recorded)
    live = b'{"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}], "note": "key sk-1 end"}'
    assert _takes(rec, ReplayRequest("POST", URL, live))
    assert not _takes(rec, ReplayRequest("POST", URL, live.replace(b" end", b" END")))
    assert not _takes(rec, ReplayRequest("POST", URL, live.replace(b'"user"', b'"system"')))
    assert _takes(
        _request(f"token={FP}&x=1".encode()), ReplayRequest("POST", URL, b"token=abc&x=1")
    )  # bytes too


def test_criteria_choose_what_must_agree() -> None:
    rec = _request(b'{"a": 1}')
    other = ReplayRequest("POST", "https://other.test:8443/v1/chat/completions?x=1", b'{"a": 2}')
    assert not _takes(rec, other)
    assert _takes(rec, other, ["method", "path"])
    assert not _takes(rec, other, ["method", "path", "port"])
    with pytest.raises(ValueError, match="unknown match criteria"):
        Match(on=("method", "url"))


def test_default_ports_and_query_order_do_not_matter_but_query_values_do() -> None:
    rec = _request(b"", url="https://api.test/v1?b=2&a=1&a=3")
    assert _takes(rec, ReplayRequest("POST", "https://api.test:443/v1?a=1&b=2&a=3", b""))
    assert not _takes(
        rec, ReplayRequest("POST", "https://api.test/v1?a=3&b=2&a=1", b"")
    )  # a's values reordered
    assert not _takes(rec, ReplayRequest("POST", "http://api.test/v1?b=2&a=1&a=3", b""))  # scheme


def test_headers_are_compared_only_when_named_and_a_fingerprint_matches_any_value() -> None:
    rec = _request(b"", headers=[("OpenAI-Beta", "assistants=v2"), ("Authorization", f"Bearer {FP}")])
    live = ReplayRequest(
        "POST", URL, b"", [("openai-beta", "assistants=v1"), ("authorization", "Bearer sk-live")]
    )
    assert _takes(rec, live)
    assert not _takes(rec, live, Match(headers=("openai-beta",)))
    assert _takes(rec, live, Match(headers=("authorization",)))
    with pytest.raises(streamtape.TapeMismatch, match="header openai-beta differs") as caught:
        Matcher(_tape(rec), Match(headers=("OpenAI-Beta",))).take(live)
    assert "assistants" not in str(caught.value)  # header values are never shown


def test_a_body_the_tape_kept_only_the_start_of_matches_by_that_start_and_its_length() -> None:
    rec = Request(1, 0, "POST", URL, [], b"0123456789", body_size=25)
    assert _takes(rec, ReplayRequest("POST", URL, b"0123456789" + b"x" * 15))
    assert not _takes(rec, ReplayRequest("POST", URL, b"0123456789" + b"x" * 16))
    assert not _takes(rec, ReplayRequest("POST", URL, b"0123456780" + b"x" * 15))


def test_the_mismatch_message_names_the_rule() -> None:
    with pytest.raises(streamtape.TapeMismatch) as caught:
        Matcher(_tape(_request(b"{}")), Match(ignore_fields=("user",))).take(ReplayRequest("GET", URL, b"{}"))
    message = str(caught.value)
    assert "(on method, scheme, host, port, path, query, body, ignoring user)" in message
    assert "method GET != POST" in message
