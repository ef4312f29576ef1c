"""``streamtape scan`` and ``streamtape redact`` on real recordings: tapes recorded with ``redact=False`` from
the SSE emulator through the recording transports and real httpx/httpx2 clients, secrets of every kind in
query strings, headers, request bodies and the streamed answer (the emulator's ``text`` knob, sent in its
scenario header so that URLs stay replayable).

``scan`` finds each with its place and kind and exits 1, never printing a secret; ``redact`` writes a copy
that ``scan`` finds clean, that opens and replays (``match="sequence"``, and the default matching) giving the
same stream but for fingerprints, with as many chunks at the same times, and whose header says what was done.
Fake secrets are assembled at run time so that no scanner takes this file for a leak.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anthropic
import httpx2
import openai
import pytest
from click.testing import CliRunner
from helpers import CHAT_PATH, VECTORS, Call, fetch, fetch_all
from shells import SHELL_LIST, Shell
from test_cli import run

import streamtape
import streamtape.httpx2
from streamtape.cli import main
from streamtape.emulator import Emulator, Scenario, openai_chat
from streamtape.emulator.server import SCENARIO_HEADER
from streamtape.emulator.wire import cut_points
from streamtape.record.redact import Redactor

pytestmark = pytest.mark.timeout(60)

PEM = "-----BEGIN PRIVATE KEY----- MIIEvQIBADANBgkqhkiG9w0B" + "Qk3x" * 12 + " -----END PRIVATE KEY-----"
#: kind -> (the secret, the text that carries it: some kinds are secrets only in context)
SECRETS: dict[str, tuple[str, str]] = {
    "openai-key": (s := "sk-" + "proj-" + "Ab1Cd2Ef3" * 8, s),
    "anthropic-key": (s := "sk-" + "ant-api03-" + "Gh4_Ij5-" * 12, s),
    "aws-access-key-id": (s := "AKIA" + "Q7W3E9R1T5Y2U8I4", s),
    "aws-secret-access-key": (
        s := "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCY" + "3XAMPLEKEY",
        f"aws_secret_access_key={s}",
    ),
    "google-api-key": (s := "AIza" + "SyD" + "4kL9mN2pQ7" * 3 + "rS", s),
    "github-token": (s := "gh" + "p_" + "Zx8Cv7Bn6M" * 4, s),
    "bearer-token": (s := "tok_" + "8hJ3kL6" * 4, f"Bearer {s}"),
    "jwt": (s := "eyJ" + "hbGciOiJIUzI1NiJ9.eyJ" + "zdWIiOiI0MiJ9.Ta7Vb8Wc9Xd0", s),
    "private-key": (PEM, PEM),
}


def record(tmp: Path, emulator: Emulator, shell: Shell, calls: list[Call], name: str = "raw.tape") -> Path:
    path = tmp / name
    seen = fetch_all(shell, shell.recording(path, redact=False), *calls)
    assert all(s.error is None for s in seen), [s.error for s in seen]
    return path


def secret_call(emulator: Emulator, text: str, **knobs: Any) -> Call:
    """A chat request carrying ``text`` in a query value, a header and its body; the answer streams it."""
    body = {"model": "gpt-test", "stream": True, "messages": [{"role": "user", "content": f"mine: {text}"}]}
    scenario = Scenario(events=1, text=f"yours: {text} ok", **knobs).encode()
    url = f"{emulator.url()}{CHAT_PATH}?q={quote(text)}&n=1"
    return Call(url, json.dumps(body).encode(), headers={"x-debug": text, SCENARIO_HEADER: scenario})


def cli(*args: str | Path) -> Any:
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def replay(tape: Path, calls: list[Call], match: str = "sequence") -> list[Any]:
    shell = SHELL_LIST[2]  # httpx2, sync
    seen = fetch_all(shell, streamtape.httpx2.ReplayTransport(tape, speed=math.inf, match=match), *calls)
    assert all(s.error is None for s in seen), [s.error for s in seen]
    return seen


def assert_redacted_copy(raw: Path, out: Path, secrets: list[str], calls: list[Call]) -> streamtape.Tape:
    """``out`` is ``raw`` with every secret fingerprinted: scan clean, same chunks and times, replays."""
    clean = cli("scan", out)
    assert clean.exit_code == 0, clean.output
    assert clean.output.strip().endswith(f"no secrets found in {len(calls)} exchanges")
    before, after = streamtape.open_tape(raw), streamtape.open_tape(out)
    fingerprint = Redactor().fingerprint  # the recorder's key logic: $STREAMTAPE_REDACT_KEY (conftest)
    for old, new in zip(before.exchanges, after.exchanges, strict=True):
        assert [c.t_ns for c in new.chunks] == [c.t_ns for c in old.chunks]
        expected = old.body
        for secret in secrets:
            expected = expected.replace(secret.encode(), fingerprint(secret.encode()).encode())
        assert new.body == expected
        for data in (
            new.body,
            new.request.body,
            new.request.url.encode(),
            repr(new.request.headers).encode(),
        ):
            assert not any(secret.encode() in data for secret in secrets)
    for match in ("sequence", "request"):
        seen = replay(out, calls, match)
        assert [s.body for s in seen] == [e.body for e in after.exchanges]
    redaction = after.header.redaction
    assert redaction is not None and redaction.kinds and redaction.passes
    assert redaction.passes[-1].key_id == redaction.key_id == Redactor().key_id  # recorded unredacted
    assert after.header.version == (1, 1)
    return after


def test_scan_finds_every_kind_in_every_place_and_never_prints_it(emulator: Emulator, tmp_path: Path) -> None:
    calls = [secret_call(emulator, text) for _, text in SECRETS.values()]
    raw = record(tmp_path, emulator, SHELL_LIST[0], calls[:5])  # httpx, sync
    record(tmp_path, emulator, SHELL_LIST[3], calls[5:], "more.tape")  # httpx2, async
    result = cli("scan", raw, tmp_path / "more.tape")
    assert result.exit_code == 1
    for secret, _ in SECRETS.values():
        assert secret not in result.output and secret[4:-4] not in result.output
    lines = result.output.splitlines()
    for n, kind in enumerate(SECRETS):
        tape, x = (raw, n) if n < 5 else (tmp_path / "more.tape", n - 5)
        for place in ("url query q", "request header x-debug", r"request body \$\.messages\[0\]\.content"):
            assert any(
                re.fullmatch(rf"{tape}: #{x} {place}: {kind} .+ \(\d+ bytes\)", line) for line in lines
            ), (
                kind,
                place,
            )
        body = rf"{tape}: #{x} response body chunk \d+ at byte \d+: {kind} "
        assert any(re.match(body, line) for line in lines), kind
    assert re.fullmatch(rf"{tmp_path / 'more.tape'}: \d+ secrets in 4 of 4 exchanges", lines[-1])

    doc = json.loads(cli("scan", "--json", "-x", "1", raw).output)
    places = {(f["place"], f["kind"], f["chunk"] is not None) for f in doc["findings"]}
    assert ("request header x-debug", "anthropic-key", False) in places
    assert {f["exchange"] for f in doc["findings"]} == {1}
    assert SECRETS["anthropic-key"][0] not in json.dumps(doc)


@pytest.mark.parametrize("shell", [SHELL_LIST[1], SHELL_LIST[2]], ids=lambda s: s.id)
def test_redact_leaves_a_tape_scan_finds_clean_that_replays_the_same_stream(
    shell: Shell, emulator: Emulator, tmp_path: Path
) -> None:
    calls = [secret_call(emulator, text) for _, text in SECRETS.values()]
    raw = record(tmp_path, emulator, shell, calls)
    out = tmp_path / "shared.tape"
    result = cli("redact", raw, out)
    assert result.exit_code == 0, result.output
    assert re.fullmatch(rf"{out}: replaced .+ in 9 of 9 exchanges \(key [0-9a-f]{{12}}\)\n", result.output)
    assert not any(secret in result.output for secret, _ in SECRETS.values())
    assert_redacted_copy(raw, out, [s for s, _ in SECRETS.values()], calls)


def test_a_secret_split_across_two_chunks_goes_in_the_first_and_leaves_the_second(
    emulator: Emulator, tmp_path: Path
) -> None:
    secret = SECRETS["openai-key"][0]
    request = {"model": "gpt-test", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    pad = next(  # where the emulator's cut in two falls inside the secret
        p
        for p in range(200)
        if (event := openai_chat.stream_events(Scenario(events=1, text=secret + " " + "x" * p), request)[1])
        and (at := event.index(secret.encode())) + 20 < cut_points(event, 2, False)[0] < at + len(secret) - 20
    )
    scenario = Scenario(events=1, split=2, text=secret + " " + "x" * pad).encode()
    call = Call(emulator.url() + CHAT_PATH, json.dumps(request).encode(), headers={SCENARIO_HEADER: scenario})
    raw = record(tmp_path, emulator, SHELL_LIST[2], [call])
    chunks = streamtape.open_tape(raw).exchanges[0].chunks
    first = next(i for i, c in enumerate(chunks) if secret.encode()[:10] in c.data)
    assert secret.encode() not in chunks[first].data and secret.encode()[-6:] in chunks[first + 1].data
    scan = cli("scan", raw)
    assert scan.exit_code == 1 and f"#0 response body chunk {first} at byte " in scan.output

    out = tmp_path / "out.tape"
    assert cli("redact", raw, out).exit_code == 0
    new = streamtape.open_tape(out).exchanges[0].chunks
    fingerprint = Redactor().fingerprint(secret.encode()).encode()
    head, _, in_first = chunks[first].data.partition(secret.encode()[:10])
    assert new[first].data == head + fingerprint  # the fingerprint where the secret started
    assert new[first + 1].data == chunks[first + 1].data[len(secret) - 10 - len(in_first) :]  # the rest gone
    after = assert_redacted_copy(raw, out, [secret], [call])
    events = [line for line in after.exchanges[0].body.split(b"\n\n") if line.startswith(b"data: {")]
    assert all(json.loads(e[6:]) for e in events)  # the SSE framing and each event's JSON still hold


def test_a_gzip_stream_is_scanned_decoded_and_stored_decoded_when_redacted(
    emulator: Emulator, tmp_path: Path
) -> None:
    secret = SECRETS["github-token"][0]
    call = secret_call(emulator, secret, gzip=True)
    raw = record(tmp_path, emulator, SHELL_LIST[0], [call])
    assert secret.encode() not in streamtape.open_tape(raw).exchanges[0].body  # compressed on the tape
    assert "response body (gzip-decoded) chunk " in cli("scan", raw).output
    out = tmp_path / "out.tape"
    assert cli("redact", raw, out).exit_code == 0
    assert cli("scan", out).exit_code == 0
    exchange = streamtape.open_tape(out).exchanges[0]
    assert exchange.response is not None and "content-encoding" not in dict(exchange.response.headers)
    (seen,) = replay(out, [call])
    assert Redactor().fingerprint(secret.encode()).encode() in seen.body


def test_prompts_are_replaced_in_chat_responses_and_messages_requests(
    emulator: Emulator, tmp_path: Path
) -> None:
    """Each provider's own SDK sends its request shape; the user's content goes, the assistant's stays."""
    path = tmp_path / "raw.tape"
    client = httpx2.Client(transport=streamtape.httpx2.RecordingTransport(path, redact=False))
    base = emulator.url(events=2)
    oai = openai.OpenAI(base_url=base + "/v1", api_key="sk-test", http_client=client, max_retries=0)
    oai.chat.completions.create(
        model="gpt-test",
        messages=[
            {"role": "developer", "content": "Be terse."},
            {"role": "user", "content": "What is my secret plan?"},
            {"role": "assistant", "content": "Which plan?"},
        ],
    )
    oai.responses.create(model="gpt-test", instructions="Answer in French.", input="Plan B, obviously.")
    claude = anthropic.Anthropic(base_url=base, api_key="sk-test", http_client=client, max_retries=0)
    claude.messages.create(
        model="claude-test",
        max_tokens=10,
        system="You are a pirate.",
        messages=[{"role": "user", "content": [{"type": "text", "text": "Where is the treasure?"}]}],
    )
    client.close()
    out = tmp_path / "out.tape"
    assert cli("redact", "--prompts", path, out).exit_code == 0
    tape = streamtape.open_tape(out)
    bodies = [json.loads(e.request.body) for e in tape.exchanges]
    text = json.dumps(bodies)
    for prompt in ("Be terse", "secret plan", "French", "Plan B", "pirate", "treasure"):
        assert prompt not in text
    assert bodies[0]["messages"][2] == {"role": "assistant", "content": "Which plan?"}
    assert re.fullmatch(r"REDACTED:[0-9a-f]{12}", bodies[0]["messages"][1]["content"])
    assert re.fullmatch(r"REDACTED:[0-9a-f]{12}", bodies[2]["messages"][0]["content"])  # the whole list
    assert tape.header.redaction is not None and tape.header.redaction.prompts
    assert [e.body for e in tape.exchanges] == [e.body for e in streamtape.open_tape(path).exchanges]


def test_field_replaces_json_fields_in_request_bodies_and_in_each_events_payload(
    emulator: Emulator, tmp_path: Path
) -> None:
    body = {
        "model": "m",
        "stream": True,
        "user": "alice@example.com",
        "metadata": {"team": "x"},
        "messages": [],
    }
    call = Call(emulator.url(events=3) + CHAT_PATH, json.dumps(body).encode())
    raw = record(tmp_path, emulator, SHELL_LIST[2], [call])
    out = tmp_path / "out.tape"
    result = cli("redact", "--field", "user", "--field", "$.metadata", "--field", "id", raw, out)
    assert result.exit_code == 0, result.output
    exchange = streamtape.open_tape(out).exchanges[0]
    request = json.loads(exchange.request.body)
    assert request["user"] == Redactor().fingerprint(b"alice@example.com") and request["model"] == "m"
    assert re.fullmatch(r"REDACTED:[0-9a-f]{12}", request["metadata"])
    payloads = [json.loads(line[6:]) for line in exchange.body.split(b"\n\n") if line.startswith(b"data: {")]
    assert len(payloads) >= 5 and len({p["id"] for p in payloads}) == 1
    assert re.fullmatch(r"REDACTED:[0-9a-f]{12}", payloads[0]["id"]) and "choices" in payloads[0]
    redaction = streamtape.open_tape(out).header.redaction
    assert redaction is not None and redaction.body_fields == ["$.metadata", "id", "user"]
    (seen,) = replay(out, [call])
    assert seen.body == exchange.body


def test_pattern_is_kept_out_of_the_header_and_redacting_in_place_is_atomic(
    emulator: Emulator, tmp_path: Path
) -> None:
    call = secret_call(emulator, "ticket ACME-4711 opened")
    raw = record(tmp_path, emulator, SHELL_LIST[0], [call])
    assert cli("redact", "--pattern", "ACME-[0-9]+", raw, raw).exit_code == 0
    tape = streamtape.open_tape(raw)
    assert b"ACME-4711" not in tape.exchanges[0].body + tape.exchanges[0].request.body
    assert tape.header.redaction is not None and tape.header.redaction.patterns == [
        Redactor().fingerprint(b"ACME-[0-9]+")
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw.tape"]  # no temporary file left


@pytest.mark.parametrize("name", ["gap", "cut", "missing-frame", "never-ended"])
def test_a_damaged_tape_is_redacted_with_its_damage_kept(name: str, tmp_path: Path) -> None:
    out = tmp_path / "out.tape"
    result = cli("redact", VECTORS / f"{name}.tape", out)
    assert result.exit_code == 0, result.output
    before, after = streamtape.open_tape(VECTORS / f"{name}.tape"), streamtape.open_tape(out)
    assert [(e.gaps, e.recorded_end, list(e.chunks)) for e in after.exchanges] == [
        (e.gaps, e.recorded_end, list(e.chunks)) for e in before.exchanges
    ]
    assert after.incomplete == any(e.recorded_end is None for e in before.exchanges)
    assert [e.damaged for e in after.exchanges] == [e.damaged for e in before.exchanges]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["scan", VECTORS / "no-such.tape"], "no-such.tape: no such file"),
        (["scan", VECTORS / "not-a-tape.tape"], "not a tape"),
        (["redact", VECTORS / "no-such.tape", "{tmp}/out.tape"], "no-such.tape: no such file"),
        (["redact", VECTORS / "not-a-tape.tape", "{tmp}/out.tape"], "not a tape"),
        (["redact", VECTORS / "complete.tape", "{tmp}/missing/out.tape"], "no such directory"),
        (["redact", VECTORS / "future-version.tape", "{tmp}/out.tape"], "written in tape format 2.0"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[Any], message: str, tmp_path: Path) -> None:
    result = run(*[str(a).format(tmp=tmp_path) for a in args])
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("streamtape: error: ") and message in line and result.stdout == ""
    assert list(tmp_path.iterdir()) == []


def test_a_bad_pattern_is_a_usage_error(tmp_path: Path) -> None:
    result = run("redact", "--pattern", "(", str(VECTORS / "complete.tape"), str(tmp_path / "o.tape"))
    assert result.returncode == 2 and "pattern #1 is not a regular expression" in result.stderr


def test_no_false_positives_on_the_emulators_streams_recorded_with_default_redaction(
    emulator: Emulator, tmp_path: Path
) -> None:
    """Real SDK traffic (keys redacted by the recorder), ids, obfuscation padding, tools, thinking, gzip."""
    path = tmp_path / "default.tape"
    client = httpx2.Client(transport=streamtape.httpx2.RecordingTransport(path))
    for knobs in ({}, {"tools": 2, "unicode": True}, {"gzip": True, "split": 3}, {"usage": True}):
        oai = openai.OpenAI(base_url=emulator.url(**knobs) + "/v1", api_key="sk-test", http_client=client)
        for chunk in oai.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hi"}], stream=True
        ):
            assert chunk.id.startswith("chatcmpl-")
        for _event in oai.responses.create(model="gpt-4o", input="hi", stream=True):
            pass
        claude = anthropic.Anthropic(
            base_url=emulator.url(thinking=True, **knobs), api_key="sk-ant-test", http_client=client
        )
        claude.messages.create(model="claude", max_tokens=9, messages=[{"role": "user", "content": "hi"}])
    client.close()
    result = cli("scan", path)
    assert result.exit_code == 0, result.output
    assert result.output == f"{path}: no secrets found in 12 exchanges\n"
    fetched = fetch(
        SHELL_LIST[2], streamtape.httpx2.RecordingTransport(tmp_path / "r.tape"), emulator.url() + CHAT_PATH
    )
    assert fetched.error is None and cli("scan", tmp_path / "r.tape").exit_code == 0
