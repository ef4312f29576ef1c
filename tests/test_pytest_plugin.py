"""The pytest plugin, run by pytester: each mode, sync and async tests, SDK clients made inside the test, a
missing tape, a mismatch the SDK swallows, where tapes go. The inner tests talk to the session's emulator
through the real SDKs; ``emulator.requests`` tells whether anything reached the network."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import streamtape
from streamtape.emulator import Emulator, Scenario, expected_text

pytest_plugins = ["pytester"]

ANSWER = expected_text(Scenario(events=5))

CHAT = """
import httpx, httpx2, openai, anthropic, pytest

BASE = "{base}"


def chat(prompt="Say hello"):
    client = openai.OpenAI(base_url=BASE + "/v1", api_key="sk-test-plugin")
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{{"role": "user", "content": prompt}}], stream=True
    )
    return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
"""


def _project(pytester: pytest.Pytester, emulator: Emulator, body: str, name: str = "test_chat") -> None:
    source = CHAT.format(base=emulator.url(events=5)) + textwrap.dedent(body)
    pytester.makepyfile(**{name: source})


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    options = ("-p", "no:cacheprovider", "-o", "asyncio_default_fixture_loop_scope=function")
    return pytester.runpytest_subprocess(*options, *args)  # in-process runs would re-import httpx2 and co.


SYNC_TEST = f"""
@pytest.mark.tape
def test_hello():
    assert chat() == {ANSWER!r}
"""


def test_once_records_a_missing_tape_then_replays_it_without_the_network(
    pytester: pytest.Pytester, emulator: Emulator
) -> None:
    _project(pytester, emulator, SYNC_TEST)
    _run(pytester).assert_outcomes(passed=1)
    assert len(emulator.requests) == 1
    path = pytester.path / "tapes" / "test_chat" / "test_hello.tape"
    tape = streamtape.open_tape(path)
    assert tape.header.meta["pytest"] == "test_chat.py::test_hello"
    assert [streamtape.diagnose(e).verdict for e in tape.exchanges] == ["complete"]
    _run(pytester).assert_outcomes(passed=1)
    assert len(emulator.requests) == 1  # replayed: nothing reached the emulator


def test_none_with_no_tape_fails_and_reaches_no_network(
    pytester: pytest.Pytester, emulator: Emulator
) -> None:
    _project(pytester, emulator, SYNC_TEST)
    result = _run(pytester, "--tape-mode=none")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*test_hello.tape: no tape to replay (mode 'none' replays only*"])
    assert emulator.requests == []


def test_all_records_anew_and_new_appends_only_what_the_tape_lacks(
    pytester: pytest.Pytester, emulator: Emulator
) -> None:
    _project(pytester, emulator, SYNC_TEST)
    _run(pytester).assert_outcomes(passed=1)
    path = pytester.path / "tapes" / "test_chat" / "test_hello.tape"
    first = streamtape.open_tape(path).header.started_unix_ns
    _run(pytester, "--tape-mode=all").assert_outcomes(passed=1)
    assert len(emulator.requests) == 2
    again = streamtape.open_tape(path)
    assert again.header.started_unix_ns > first and len(again.segments) == 1 and len(again.exchanges) == 1

    _project(
        pytester,
        emulator,
        SYNC_TEST
        + "\n\n"
        + SYNC_TEST.replace("test_hello", "test_other")
        .replace("chat()", 'chat("Say it again")')
        .replace("tape\n", 'tape("test_hello")\n'),
    )
    _run(pytester, "--tape-mode=new").assert_outcomes(passed=2)
    assert [r.body.count(b"Say it again") for r in emulator.requests[2:]] == [1]  # only the unknown one
    grown = streamtape.open_tape(path)
    assert len(grown.exchanges) == 2 and len(grown.segments) == 2
    _run(pytester, "--tape-mode=none").assert_outcomes(passed=2)
    assert len(emulator.requests) == 3


def test_a_mismatch_the_client_swallows_or_wraps_fails_the_test_with_the_mismatch_message(
    pytester: pytest.Pytester, emulator: Emulator
) -> None:
    claude = textwrap.dedent("""
        def claude(prompt):
            client = anthropic.Anthropic(base_url=BASE, api_key="sk-ant-test", max_retries=0)
            return client.messages.create(
                model="claude", max_tokens=50, messages=[{"role": "user", "content": prompt}]
            ).content[0].text

        @pytest.mark.tape("claude")
        def test_claude():
            claude("Say hello")
        """)
    _project(pytester, emulator, SYNC_TEST + claude)
    _run(pytester).assert_outcomes(passed=2)
    _project(
        pytester,
        emulator,
        claude
        + textwrap.dedent("""
        @pytest.mark.tape("claude")
        def test_handles_connection_errors():
            try:
                claude("Another prompt")
            except anthropic.APIConnectionError:
                pass  # the SDK wraps the mismatch as a connection error, which an app with a fallback handles

        @pytest.mark.tape("claude")
        def test_lets_the_sdk_error_out():
            claude("Another prompt")

        @pytest.mark.tape("test_hello")
        def test_openai_lets_the_mismatch_out():
            try:
                chat("Another prompt")
            except Exception:
                pass
        """),
    )
    result = _run(pytester, "--tape-mode=once", "-k", "not test_claude")
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines(
        [
            "*streamtape: *claude.tape: no recorded exchange matches POST *"
            "body differs at $.messages[[]0[]].content*the client did not raise it*",
            "*streamtape: *claude.tape: no recorded exchange matches*"
            "the test then failed with APIConnectionError: Connection error.",
            "*streamtape: *test_hello.tape: no recorded exchange matches*the client did not raise it*",
        ],
        consecutive=False,
    )
    messages = [line for line in result.stdout.lines if "no recorded exchange" in line]
    assert messages and not any("Another prompt" in line for line in messages)  # bodies are not shown
    assert len(emulator.requests) == 2  # the two recordings; nothing since


def test_async_tests_with_pytest_asyncio_and_anyio_and_every_client_kind(
    pytester: pytest.Pytester, emulator: Emulator
) -> None:
    _project(
        pytester,
        emulator,
        f"""
        ANSWER = {ANSWER!r}

        @pytest.mark.tape
        @pytest.mark.asyncio
        async def test_async_openai():
            client = openai.AsyncOpenAI(base_url=BASE + "/v1", api_key="sk-test")
            stream = await client.chat.completions.create(
                model="m", messages=[{{"role": "user", "content": "hi"}}], stream=True
            )
            assert "".join([c.choices[0].delta.content or "" async for c in stream if c.choices]) == ANSWER

        @pytest.mark.tape
        @pytest.mark.anyio
        async def test_anyio_anthropic_and_httpx(tape):
            client = anthropic.AsyncAnthropic(base_url=BASE, api_key="sk-ant-test")
            async with client.messages.stream(
                model="claude", max_tokens=50, messages=[{{"role": "user", "content": "hi"}}]
            ) as stream:
                assert await stream.get_final_text() == ANSWER
            async with httpx.AsyncClient() as raw:  # httpx, the library of openai 1.x
                assert (await raw.post(BASE + "/v1/chat/completions", json={{"stream": True}})).status_code == 200
            assert len(tape.matched) == (2 if tape.replaying else 0)

        @pytest.fixture
        def anyio_backend():
            return "asyncio"
        """,
    )
    _run(pytester).assert_outcomes(passed=2)
    assert len(emulator.requests) == 3
    _run(pytester, "--tape-mode=none").assert_outcomes(passed=2)
    assert len(emulator.requests) == 3


def test_mode_precedence_tape_names_and_directories(
    pytester: pytest.Pytester, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    _project(
        pytester,
        emulator,
        f"""
        @pytest.mark.tape("shared")
        def test_named():
            assert chat() == {ANSWER!r}

        @pytest.mark.parametrize("n", [1, "a/b"])
        @pytest.mark.tape
        def test_param(n, tape):
            assert chat() == {ANSWER!r}
            assert tape.path.name in ("test_param-1.tape", "test_param-a-b.tape")
        """,
    )
    pytester.makeini("[pytest]\ntape_mode = none\n")
    _run(pytester).assert_outcomes(failed=3)  # the ini says replay only, and there are no tapes
    monkeypatch.setenv("STREAMTAPE_TAPE_MODE", "once")  # the environment wins over the ini
    _run(pytester, "--tape-dir=cassettes").assert_outcomes(passed=3)
    tapes = sorted(p.relative_to(pytester.path).as_posix() for p in pytester.path.rglob("*.tape"))
    assert tapes == [
        "cassettes/test_chat/shared.tape",
        "cassettes/test_chat/test_param-1.tape",
        "cassettes/test_chat/test_param-a-b.tape",
    ]
    result = _run(pytester, "--tape-dir=cassettes", "--tape-mode=all")  # the command line wins over both
    result.assert_outcomes(passed=3)
    assert len(emulator.requests) == 6
    monkeypatch.setenv("STREAMTAPE_TAPE_MODE", "sometimes")
    result = _run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*$STREAMTAPE_TAPE_MODE must be one of once, none, all, new, not 'sometimes'*"]
    )


def test_the_fixture_without_the_marker_and_tape_options_from_a_conftest(
    pytester: pytest.Pytester, emulator: Emulator
) -> None:
    pytester.makeconftest(
        """
        import pytest
        from streamtape import Match

        @pytest.fixture
        def tape_options():
            return {"match": Match(ignore_fields=("user",))}
        """
    )
    body = """
        def test_user_field(tape):
            client = openai.OpenAI(base_url=BASE + "/v1", api_key="sk-test")
            client.chat.completions.create(model="m", messages=[], user="{user}")
            assert tape.path == Path(__file__).parent / "tapes" / "test_chat" / "test_user_field.tape"
            assert [e.request.method for _, e in tape.matched] == {matched}
        """
    body = "from pathlib import Path\n" + textwrap.dedent(body)
    _project(pytester, emulator, body.format(user="alice", matched=[]))
    _run(pytester).assert_outcomes(passed=1)
    _project(pytester, emulator, body.format(user="bob", matched=["POST"]))
    _run(pytester, "--tape-mode=none").assert_outcomes(passed=1)  # "user" is ignored by the conftest's match
    assert len(emulator.requests) == 1


def test_the_marker_rejects_two_names(pytester: pytest.Pytester, emulator: Emulator) -> None:
    _project(pytester, emulator, '@pytest.mark.tape("a", "b")\ndef test_x():\n    pass\n')
    result = _run(pytester)
    assert result.ret != 0
    assert "takes one tape name" in result.stdout.str() + result.stderr.str()


def test_replays_are_at_infinite_speed_by_default_and_the_marker_can_slow_them(
    pytester: pytest.Pytester, emulator: Emulator
) -> None:
    _project(
        pytester,
        emulator,
        """
        import math

        @pytest.mark.tape("t")
        def test_default(tape):
            chat()
            speeds = [getattr(t, "speed", "recording") for t in tape.transports]
            assert speeds == ([math.inf] if tape.replaying else ["recording"])

        @pytest.mark.tape("t", speed=4.0)
        def test_slower(tape):
            chat()
            assert [t.speed for t in tape.transports] == [4.0]
        """,
    )
    _run(pytester, "-k", "default").assert_outcomes(passed=1)  # records the tape
    _run(pytester, "--tape-mode=none").assert_outcomes(passed=2)  # both replay it
    assert len(emulator.requests) == 1


def test_a_missing_tape_path_is_under_the_test_files_directory(pytester: pytest.Pytester) -> None:
    sub = pytester.mkpydir("pkg")
    (sub / "test_deep.py").write_text(
        "import pytest\n\ndef test_where(tape):\n    print('PATH', tape.path)\n"
    )
    result = _run(pytester, "-s")
    result.assert_outcomes(passed=1)
    expected = Path(sub) / "tapes" / "test_deep" / "test_where.tape"
    result.stdout.fnmatch_lines([f"*PATH {expected}*"])
    assert not expected.exists()  # a test that sends nothing writes no tape
