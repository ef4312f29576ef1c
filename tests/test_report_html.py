"""``streamtape report``: the HTML page, checked in a real headless browser (Debian's chromium, driven by
playwright), for the samples, tapes derived with ``streamtape.faults``, and a tape full of markup.

playwright is a required test dependency (the test extras install it). Chromium is optional on a developer's
machine, where these tests then skip saying so, and required under ``.ci/run``, which installs it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from click.testing import CliRunner
from helpers import optional_dependency_missing

from streamtape import Chunk, End, Exchange, Tape, diagnose, faults, open_tape
from streamtape.cli import main
from streamtape.cli.report import report
from streamtape.format.records import Applied, Gap

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: The bound on a page for these tapes (each is 20-40 KB today; the style and script are about 7 KB).
MAX_BYTES = 300_000
PAYLOAD = '<script>alert(1)</script>"><img src=x onerror="alert(2)"></textarea><svg onload=alert(3)>&amp;'
#: Per exchange, what the page must show: the verdict, the text, the chunk marks, the tool calls.
FACTS_JS = """() => Array.from(document.querySelectorAll("section.exchange"), s => ({
  n: Number(s.dataset.exchange), verdict: s.querySelector(".verdict").textContent,
  text: s.querySelector(".text").textContent, marks: s.querySelectorAll(".chunk-mark").length,
  tools: Array.from(s.querySelectorAll(".tool-call"),
    t => [t.querySelector(".tool-name").textContent, t.dataset.validJson === "true"])}))"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(
            "the playwright package is required for the report tests: python -m pip install playwright "
            "(never `playwright install`: the tests drive Debian's chromium)"
        )
    if not os.access(CHROMIUM, os.X_OK):
        optional_dependency_missing(f"Chromium ({CHROMIUM}, Debian's `chromium` package)")
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        launched.close()


class Loaded:
    """A page opened from a file, with every console error, page error, request and dialog it caused."""

    def __init__(self, browser: Any, path: Path) -> None:
        self.problems: list[str] = []
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        self.page = page = browser.new_page()
        page.on("console", lambda m: m.type == "error" and self.problems.append(f"console: {m.text}"))
        page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        page.on("request", lambda r: self.requests.append(r.url))
        page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        page.goto(path.as_uri())
        self.url = path.as_uri()

    def use(self) -> None:
        """Move over each timeline and click it, so the page's script runs its handlers."""
        for svg in self.page.locator("svg.timeline").all():
            svg.scroll_into_view_if_needed()
            box = svg.bounding_box()
            self.page.mouse.move(box["x"] + box["width"] * 0.4, box["y"] + box["height"] * 0.6)
            self.page.mouse.click(box["x"] + box["width"] * 0.4, box["y"] + box["height"] * 0.6)

    def assert_clean(self) -> None:
        assert self.problems == [], self.problems
        assert self.dialogs == [], self.dialogs
        assert self.requests == [self.url], f"requests other than the page itself: {self.requests}"


def write_report(tape: Path, out: Path, *args: str) -> str:
    result = CliRunner().invoke(report, [str(tape), "-o", str(out), *args])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"{out}: {out.stat().st_size} bytes, ")
    return out.read_text(encoding="utf-8")


def facts(tape: Tape) -> list[dict[str, Any]]:
    """What the page must show for each exchange, as ``streamtape.diagnose`` says it."""
    out = []
    for n, e in enumerate(tape.exchanges):
        d = diagnose(e)
        tools = [[call["name"], call["valid_json"]] for call in d.tool_calls]
        out.append({"n": n, "verdict": d.verdict, "text": d.text, "marks": len(e.chunks), "tools": tools})
    return out


def derived(tmp_path: Path, name: str) -> Path:
    """Tapes made with ``streamtape.faults``: a stall then a re-chunking, and a cut tool call."""
    path = tmp_path / f"{name}.tape"
    if name == "stalled-rechunked":
        tape = open_tape(SAMPLES / "openai-complete.tape")
        faults.rechunk(faults.stall(tape, at_chunk=5, seconds=90), size=700).save(path)
    else:
        tape = open_tape(SAMPLES / "openai-tool-calls.tape")
        faults.truncate(tape, after_chunk=12, error=None).save(path)
    return path


CASES = [
    "openai-complete",
    "openai-tool-calls",
    "openai-reset",
    "openai-split-emoji",
    "anthropic-overloaded-retry",
    "stalled-rechunked",
    "cut-tool-calls",
]


@pytest.mark.parametrize("name", CASES)
def test_the_page_shows_what_diagnose_says(browser: Any, tmp_path: Path, name: str) -> None:
    source = SAMPLES / f"{name}.tape" if (SAMPLES / f"{name}.tape").exists() else derived(tmp_path, name)
    html = write_report(source, tmp_path / f"{name}.html")
    assert len(html.encode("utf-8")) < MAX_BYTES
    tape = open_tape(source)
    loaded = Loaded(browser, tmp_path / f"{name}.html")
    assert loaded.page.evaluate(FACTS_JS) == facts(tape)
    loaded.use()
    loaded.assert_clean()
    if tape.exchanges[0].chunks:
        assert loaded.page.locator(".tl-info").first.text_content().startswith("chunk #")


def test_the_marks_say_where_events_and_characters_are_split(browser: Any, tmp_path: Path) -> None:
    write_report(SAMPLES / "openai-split-emoji.tape", tmp_path / "emoji.html")
    page = Loaded(browser, tmp_path / "emoji.html").page
    split = page.locator(".wire b.u8").all()
    assert [b.text_content() for b in split] == ["F0", "9F 9A 80"]
    assert all("U+1F680" in (b.get_attribute("title") or "") for b in split)
    assert page.locator(".wire b.sp").count() == 2 * 11  # 11 events in two reads each: "goes on", its end
    write_report(derived(tmp_path, "stalled-rechunked"), tmp_path / "stall.html")
    loaded = Loaded(browser, tmp_path / "stall.html")
    assert loaded.page.locator(".wire b.eb").count() > 0  # 700-byte reads hold several events
    assert "≈ 90.0" in loaded.page.locator("svg.timeline").text_content()  # the stall, drawn short
    assert "stall(" in loaded.page.locator("header").text_content()  # the provenance
    loaded.assert_clean()


def hostile_tape(path: Path) -> Tape:
    """A tape whose every string a page shows holds markup: meta, provenance, URL, headers, bodies, the text."""
    sample = open_tape(SAMPLES / "openai-complete.tape")
    e = sample.exchanges[0]
    deltas = [
        {"content": PAYLOAD + "\r\n"},
        {"tool_calls": [{"index": 0, "id": PAYLOAD, "function": {"name": PAYLOAD, "arguments": PAYLOAD}}]},
    ]
    events = [{"choices": [{"index": 0, "delta": delta, "finish_reason": None}]} for delta in deltas]
    events.append({"choices": [{"index": 0, "delta": {}, "finish_reason": PAYLOAD}]})
    body = b"".join(b"data: " + json.dumps(ev).encode() + b"\n\n" for ev in events) + b"data: [DONE]\n\n"
    chunks = [
        Chunk(e.id, (k + 1) * 1_000_000, body[k * 50 : k * 50 + 50]) for k in range(len(body) // 50 + 1)
    ]
    replace = msgspec.structs.replace
    exchange = Exchange(
        0,
        e.id,
        replace(
            e.request,
            url=f"{e.request.url}?q={PAYLOAD}",
            headers=[("x-evil", PAYLOAD)],
            body=PAYLOAD.encode(),
        ),
        replace(e.response, headers=[*e.response.headers, (PAYLOAD, PAYLOAD)], reason=PAYLOAD),
        chunks,
        End(e.id, chunks[-1].t_ns + 1, "error", PAYLOAD, PAYLOAD),
        (Gap(e.id, 1_500_000, 1, 10, PAYLOAD),),
    )
    header = replace(
        sample.header, meta={PAYLOAD: [PAYLOAD]}, provenance=[Applied(PAYLOAD, None, {PAYLOAD: 1})]
    )
    Tape(header, [exchange]).save(path)
    return open_tape(path)


def test_markup_from_the_tape_is_text_with_or_without_the_policy(browser: Any, tmp_path: Path) -> None:
    tape = hostile_tape(tmp_path / "hostile.tape")
    html = write_report(tmp_path / "hostile.tape", tmp_path / "hostile.html")
    policy = html[html.index("<meta http-equiv") : html.index(">", html.index("<meta http-equiv")) + 1]
    (tmp_path / "bare.html").write_text(html.replace(policy, ""), encoding="utf-8")
    assert facts(tape) == [
        {"n": 0, "verdict": "error", "text": PAYLOAD + "\r\n", "marks": 17, "tools": [[PAYLOAD, False]]}
    ]
    for name in ("hostile.html", "bare.html"):  # escaping alone must hold, without the CSP behind it
        loaded = Loaded(browser, tmp_path / name)
        page = loaded.page
        assert page.evaluate(FACTS_JS) == facts(tape)
        assert page.evaluate("document.scripts.length") == 1  # the page's own
        assert page.evaluate("document.querySelectorAll('img, textarea, [onerror], [onload]').length") == 0
        assert page.locator(".finish").text_content() == PAYLOAD
        for where in ("header", "section.exchange h2", "div.heads", "svg.timeline", ".tool-name", ".alerts"):
            assert PAYLOAD in page.locator(where).first.text_content()
        loaded.use()
        loaded.assert_clean()


def test_default_output_and_one_exchange(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(report, [str(SAMPLES / "anthropic-overloaded-retry.tape"), "-x", "1"])
    assert result.exit_code == 0, result.output
    page = (tmp_path / "anthropic-overloaded-retry.html").read_text(encoding="utf-8")
    assert result.output == f"anthropic-overloaded-retry.html: {len(page.encode())} bytes, 1 exchange\n"
    assert 'data-exchange="1"' in page and 'data-exchange="0"' not in page
    stdout = CliRunner().invoke(report, [str(SAMPLES / "openai-reset.tape"), "-o", "-"])
    assert stdout.exit_code == 0 and stdout.output.startswith("<!DOCTYPE html>")


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    group = main  # the streamtape command, with its one-line errors
    (tmp_path / "not.tape").write_bytes(b"hello")
    for args in ([str(tmp_path / "not.tape")], [str(SAMPLES / "openai-reset.tape"), "-x", "7"]):
        result = CliRunner().invoke(group, ["report", *args])
        assert result.exit_code == 2
        assert result.output.startswith("streamtape: error: ") and result.output.count("\n") == 1
    tape = tmp_path / "same.html"
    tape.write_bytes((SAMPLES / "openai-reset.tape").read_bytes())
    result = CliRunner().invoke(group, ["report", str(tape), "-o", str(tape)])
    assert result.exit_code == 2 and "overwrite the tape" in result.output
    assert tape.read_bytes() == (SAMPLES / "openai-reset.tape").read_bytes()
