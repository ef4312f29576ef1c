"""The faults as pure functions on real recordings (the samples): what each changes, what it keeps, that it
never changes its input, that the derived tape says what was applied, and a clear error when a fault cannot
apply. Clients reading the variants are in ``test_faults_clients.py``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import ROOT

import streamtape
from streamtape import faults
from streamtape.cli import main
from streamtape.errors import FaultError
from streamtape.format.records import Applied

pytest_plugins = ["pytester"]

SAMPLES = ROOT / "samples"
CHAT = SAMPLES / "openai-complete.tape"
CLAUDE = SAMPLES / "anthropic-tool-use.tape"
RETRY = SAMPLES / "anthropic-overloaded-retry.tape"


@pytest.fixture
def chat() -> streamtape.Tape:
    return streamtape.open_tape(CHAT)


def _records(tape: streamtape.Tape) -> list[object]:
    return list(tape.records())


ALL_FAULTS = [
    ("truncate", {"after_chunk": 3}),
    ("truncate", {"after_bytes": 100, "error": None}),
    ("stall", {"at_chunk": 2, "seconds": 5}),
    ("rechunk", {"size": 7}),
    ("rechunk", {"sizes": [1, 2, 3]}),
    ("rechunk", {"seed": 4}),
    ("drop", {"chunk": 1}),
    ("duplicate", {"chunk": 1}),
    ("delay_head", {"seconds": 1.5}),
    ("throttle", {"bytes_per_second": 1000}),
    ("garbage", {"after_chunk": 2, "size": 10}),
    ("status", {"code": 429, "headers": {"retry-after": "2"}}),
    ("fail_connect", {}),
]


@pytest.mark.parametrize(
    ("name", "params"), ALL_FAULTS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(ALL_FAULTS)]
)
def test_every_fault_leaves_its_input_alone_and_records_itself(
    chat: streamtape.Tape, name: str, params: dict[str, object], tmp_path: Path
) -> None:
    before = _records(chat)
    derived = getattr(faults, name)(chat, **params)
    assert _records(chat) == before and chat.header.provenance is None
    assert derived.exchanges[0] != chat.exchanges[0]
    (applied,) = derived.header.provenance or []
    assert applied.fault == name and applied.exchange is None
    derived.save(tmp_path / "d.tape")
    reopened = streamtape.open_tape(tmp_path / "d.tape")
    assert reopened.header.provenance == derived.header.provenance
    assert [list(e.records()) for e in reopened.exchanges] == [list(e.records()) for e in derived.exchanges]


def test_truncate_keeps_the_first_chunks_and_ends_with_the_error_or_cleanly(chat: streamtape.Tape) -> None:
    e = chat.exchanges[0]
    cut = faults.truncate(chat, after_chunk=4).exchanges[0]
    assert list(cut.chunks) == list(e.chunks[:4])
    assert cut.end.outcome == "error" and cut.end.error_type == "RemoteProtocolError"
    assert cut.end.t_ns == e.chunks[4].t_ns  # when the next bytes were due, the connection died instead
    clean = faults.truncate(chat, after_chunk=4, error=None).exchanges[0]
    assert clean.end.outcome == "complete" and clean.end.t_ns == e.chunks[3].t_ns
    assert streamtape.diagnose(clean).verdict == "truncated"  # the proxy that closed politely
    assert streamtape.diagnose(cut).verdict == "error"
    by_bytes = faults.truncate(chat, after_bytes=101, error="ReadError").exchanges[0]
    assert by_bytes.body == e.body[:101] and by_bytes.end.error_type == "ReadError"


def test_stall_delay_head_drop_and_duplicate_move_or_change_exactly_what_they_say(
    chat: streamtape.Tape,
) -> None:
    e = chat.exchanges[0]
    stalled = faults.stall(chat, at_chunk=3, seconds=2.5).exchanges[0]
    assert [c.t_ns for c in stalled.chunks[:3]] == [c.t_ns for c in e.chunks[:3]]
    assert [c.t_ns - d.t_ns for c, d in zip(stalled.chunks[3:], e.chunks[3:], strict=True)] == [
        2_500_000_000
    ] * (len(e.chunks) - 3)
    assert stalled.end.t_ns == e.end.t_ns + 2_500_000_000 and stalled.body == e.body
    late = faults.delay_head(chat, seconds=1).exchanges[0]
    assert late.response is not None and e.response is not None
    assert late.response.t_ns == e.response.t_ns + 10**9 and late.chunks[0].t_ns == e.chunks[0].t_ns + 10**9
    dropped = faults.drop(chat, chunk=2).exchanges[0]
    assert list(dropped.chunks) == [*e.chunks[:2], *e.chunks[3:]]
    doubled = faults.duplicate(chat, chunk=2).exchanges[0]
    assert list(doubled.chunks) == [*e.chunks[:3], e.chunks[2], *e.chunks[3:]]


def test_throttle_delays_chunks_to_the_bandwidth_and_garbage_sends_random_bytes(
    chat: streamtape.Tape,
) -> None:
    e = chat.exchanges[0]
    assert e.response is not None
    slow = faults.throttle(chat, bytes_per_second=1000).exchanges[0]
    sent = 0
    for c, original in zip(slow.chunks, e.chunks, strict=True):
        sent += len(c.data)
        assert c.data == original.data
        assert c.t_ns == max(original.t_ns, e.response.t_ns + round(sent / 1000 * 1e9))
    assert slow.chunks[-1].t_ns - e.response.t_ns >= len(e.body) / 1000 * 1e9 - 1
    noisy = faults.garbage(chat, after_chunk=3, size=20, seed=7).exchanges[0]
    assert list(noisy.chunks[:3]) == list(e.chunks[:3]) and len(noisy.chunks) == 4
    assert len(noisy.chunks[3].data) == 20 and noisy.chunks[3].data not in e.body
    assert noisy.end.error_type == "RemoteProtocolError"
    assert (
        faults.garbage(chat, after_chunk=3, size=20, seed=7).exchanges
        == faults.garbage(chat, after_chunk=3, size=20, seed=7).exchanges
    )
    assert streamtape.diagnose(noisy).verdict == "error"


def test_rechunk_cuts_the_same_bytes_again_each_piece_timed_by_its_last_byte(chat: streamtape.Tape) -> None:
    e = chat.exchanges[0]
    ends, at = [], 0
    for c in e.chunks:
        at += len(c.data)
        ends.append((at, c.t_ns))

    def arrival(offset: int) -> int:  # when the byte just before ``offset`` arrived
        return next(t for end, t in ends if end >= offset)

    for variant in (
        faults.rechunk(chat, size=5),
        faults.rechunk(chat, seed=1),
        faults.rechunk(chat, sizes=[3, 9]),
    ):
        x = variant.exchanges[0]
        assert x.body == e.body and x.end == e.end
        offset = 0
        for c in x.chunks:
            offset += len(c.data)
            assert c.t_ns == arrival(offset)
    assert {len(c.data) for c in faults.rechunk(chat, size=5).exchanges[0].chunks[:-1]} == {5}
    assert [len(c.data) for c in faults.rechunk(chat, sizes=[3, 9]).exchanges[0].chunks] == [
        3,
        9,
        len(e.body) - 12,
    ]
    assert faults.rechunk(chat, seed=1).exchanges == faults.rechunk(chat, seed=1).exchanges
    assert faults.rechunk(chat, seed=1).exchanges != faults.rechunk(chat, seed=2).exchanges


def test_status_answers_with_the_providers_error_body_and_fail_connect_with_no_response() -> None:
    for path, shape in ((CHAT, "error"), (CLAUDE, "type")):
        tape = streamtape.open_tape(path)
        busy = faults.status(tape, code=529, headers=[("retry-after", "1")]).exchanges[0]
        assert busy.response is not None and busy.response.status_code == 529
        assert ("retry-after", "1") in busy.response.headers
        doc = json.loads(busy.body)
        assert shape in doc and busy.end.outcome == "complete"
    refused = faults.fail_connect(streamtape.open_tape(CHAT), error="ConnectTimeout").exchanges[0]
    assert refused.response is None and not refused.chunks
    assert (refused.end.outcome, refused.end.error_type) == ("error", "ConnectTimeout")


def test_faults_compose_in_order_and_apply_to_one_exchange_when_asked() -> None:
    tape = streamtape.open_tape(RETRY)
    derived = faults.rechunk(faults.drop(tape, chunk=0, exchange=1), size=1, exchange=1)
    assert derived.header.provenance == [
        Applied("drop", 1, {"chunk": 0}),
        Applied("rechunk", 1, {"size": 1}),
    ]
    assert derived.exchanges[0] == tape.exchanges[0]
    assert derived.exchanges[1].body == tape.exchanges[1].body[len(tape.exchanges[1].chunks[0].data) :]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda t: faults.drop(t, chunk=10_000), "fault drop: cannot apply to exchange #0: it has"),
        (lambda t: faults.stall(t, at_chunk=-1, seconds=1), "fault stall: a chunk index is a number >= 0"),
        (
            lambda t: faults.stall(t, at_chunk=1, seconds=-1),
            "fault stall: seconds must be between 0 and 86400",
        ),
        (lambda t: faults.rechunk(t, size=0), "fault rechunk: size must be >= 1"),
        (
            lambda t: faults.rechunk(t, size=1, seed=2),
            "fault rechunk: give exactly one of size, sizes and seed",
        ),
        (lambda t: faults.rechunk(t, sizes=[10**7]), "more than its body's"),
        (lambda t: faults.truncate(t), "give exactly one of after_chunk and after_bytes"),
        (
            lambda t: faults.truncate(t, after_chunk=2, error="Oops"),
            "error must be one of RemoteProtocolError",
        ),
        (lambda t: faults.truncate(t, after_bytes=10**7), "none after byte 10000000"),
        (
            lambda t: faults.duplicate(t, chunk=1, exchange=5),
            "fault duplicate: no exchange #5: the tape has 1",
        ),
        (lambda t: faults.status(t, code=99), "fault status: code must be an HTTP status"),
        (
            lambda t: faults.rechunk(faults.fail_connect(t), size=1),
            "fault rechunk: cannot apply to exchange #0: it has no body",
        ),
    ],
)
def test_a_fault_that_cannot_apply_names_itself_and_the_tape(
    chat: streamtape.Tape, call, message: str
) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(FaultError) as caught:
        call(chat)
    assert str(caught.value).startswith(f"{CHAT}: ")
    assert message in str(caught.value)


def test_matrix_names_each_variant_for_pytest_and_covers_every_event(chat: streamtape.Tape) -> None:
    variants = faults.matrix(CHAT)
    names = [v.name for v in variants]
    assert len(set(names)) == len(names)
    events = faults.event_spans(chat.exchanges[0].body)
    assert len(events) >= 5
    assert sum(n.startswith("cut-inside-event-") for n in names) == len(events)
    assert sum(n.startswith("reset-inside-event-") for n in names) == len(events)
    assert sum(n.startswith("cut-after-event-") for n in names) == len(events) - 1  # not after the last
    assert {"rechunk-1-byte", "rechunk-seed-0", "stall-before-first-token", "stall-mid-stream"} <= set(names)
    resets = [v for v in variants if v.name.startswith("reset-")]
    assert all(v.tape.exchanges[0].end.error_type == "ReadError" for v in resets)
    first = streamtape.diagnose(chat.exchanges[0]).first_token_ms
    stall = next(v for v in variants if v.name == "stall-before-first-token").tape.exchanges[0]
    moved = [i for i, (a, b) in enumerate(zip(stall.chunks, chat.exchanges[0].chunks, strict=True)) if a != b]
    assert first is not None and chat.exchanges[0].chunks[moved[0]].t_ns / 1e6 >= first
    assert moved[0] == 0 or chat.exchanges[0].chunks[moved[0] - 1].t_ns / 1e6 < first


def test_matrix_ids_read_naturally_in_a_parametrized_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        f"""
        import pytest
        from streamtape import faults

        @pytest.mark.parametrize("variant", faults.matrix({str(CHAT)!r}))
        def test_v(variant):
            assert variant.tape.header.provenance
        """
    )
    result = pytester.runpytest_subprocess(
        "--collect-only", "-q", "-p", "no:cacheprovider", "-o", "asyncio_default_fixture_loop_scope=function"
    )
    result.stdout.fnmatch_lines(["*test_v[[]rechunk-1-byte[]]*", "*test_v[[]reset-inside-event-0[]]*"])


def test_event_spans_follow_every_line_ending() -> None:
    assert faults.event_spans(b"data: a\n\ndata: b\r\n\r\n: c\r\rdata: tail") == [(0, 9), (9, 20), (20, 25)]
    assert faults.event_spans(b"") == [] and faults.event_spans(b'{"no": "events"}') == []


def test_the_fault_verb_applies_flags_in_order_and_info_shows_the_provenance(tmp_path: Path) -> None:
    out = tmp_path / "out.tape"
    result = CliRunner().invoke(
        main, ["fault", str(CHAT), str(out), "--rechunk", "1", "--truncate-bytes", "300", "--error", "none"]
    )
    assert result.exit_code == 0, result.output
    tape = streamtape.open_tape(out)
    assert [a.fault for a in tape.header.provenance or []] == ["rechunk", "truncate"]
    assert len(tape.exchanges[0].chunks) == 300 and tape.exchanges[0].end.outcome == "complete"
    shown = CliRunner().invoke(main, ["info", str(out)]).output
    assert (
        "derived   rechunk(size=1) on every exchange, then truncate(after_bytes=300, error=null) on every exchange"
        in shown
    )
    more = CliRunner().invoke(
        main, ["fault", str(CHAT), str(out), "--throttle", "500", "--garbage-after", "2"]
    )
    assert more.exit_code == 0, more.output
    assert [a.fault for a in streamtape.open_tape(out).header.provenance or []] == ["throttle", "garbage"]
    repeated = CliRunner().invoke(
        main, ["fault", str(CHAT), str(out), "--drop", "1", "--rechunk", "7", "--drop=3"]
    )
    assert repeated.exit_code == 0, repeated.output  # a repeated flag keeps its place in the order
    provenance = streamtape.open_tape(out).header.provenance or []
    assert [(a.fault, a.params) for a in provenance] == [
        ("drop", {"chunk": 1}),
        ("rechunk", {"size": 7}),
        ("drop", {"chunk": 3}),
    ]
    other = CliRunner().invoke(
        main, ["fault", str(CHAT), str(out), "--truncate-bytes", "300", "--rechunk", "1"]
    )
    assert [a.fault for a in streamtape.open_tape(out).header.provenance or []] == ["truncate", "rechunk"], (
        other.output
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--drop", "500"], "fault drop: cannot apply to exchange #0"),
        (["--stall-at", "2"], "--stall-at needs --stall-s"),
        ([], "give at least one fault"),
        (["--status", "529", "--header", "nocolon"], "--header takes 'NAME: VALUE'"),
        (["--truncate-after", "2", "--error", "Nope"], "error must be one of"),
    ],
)
def test_the_fault_verb_fails_on_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, ["fault", str(CHAT), str(tmp_path / "o.tape"), *args])
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "o.tape").exists()
