"""What several test files share: the request they send, a client driver for the four shells, tape readers.

The driver makes real requests with ``client.stream`` and notes what the client saw (head, raw pieces with
their boundaries and arrival times, the exception); recording tests give it a recording transport, replay
tests a replay transport, so both compare the same view.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn

import anthropic
import openai
import zstandard
from shells import Shell

import streamtape
from streamtape.emulator import Emulator, Scenario, openai_chat

ROOT = Path(__file__).resolve().parents[1]
VECTORS = ROOT / "spec" / "vectors"

#: How long a test waits for another process before it calls it a hang (a guard, never a measurement).
HANG_GUARD_S = 20.0

CHAT_PATH = "/v1/chat/completions"
MESSAGES: list[Any] = [{"role": "user", "content": "hi"}]
CHAT: dict[str, Any] = {"model": "gpt-test", "messages": MESSAGES, "stream": True}
CHAT_BODY = json.dumps(CHAT).encode()
OTHER_BODY = json.dumps({**CHAT, "messages": [{"role": "user", "content": "bye"}]}).encode()


def body_for(name: str) -> bytes:
    """A chat request whose body names it, so its exchange can be found on any tape."""
    return json.dumps({**CHAT, "messages": [{"role": "user", "content": name}]}).encode()


def events(**knobs: Any) -> list[bytes]:
    """The SSE events the emulator sends for ``CHAT`` under these knobs."""
    return openai_chat.stream_events(Scenario(**knobs), CHAT)


def unused_port() -> int:
    """A loopback port nothing listens on (a request to it is refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def oai(emulator: Emulator, **knobs: Any) -> openai.OpenAI:
    """The OpenAI SDK straight at the emulator (its own httpx2 client: nothing recorded), no retries."""
    return openai.OpenAI(base_url=emulator.url(**knobs) + "/v1", api_key="sk-test", max_retries=0, timeout=5)


def claude(emulator: Emulator, max_retries: int = 0, **knobs: Any) -> anthropic.Anthropic:
    """The Anthropic SDK straight at the emulator (its own httpx2 client: nothing recorded)."""
    return anthropic.Anthropic(
        base_url=emulator.url(**knobs), api_key="sk-test", max_retries=max_retries, timeout=5
    )


# -- reading tapes ------------------------------------------------------------------------------------


def only_exchange(path: Path) -> streamtape.Exchange:
    tape = streamtape.open_tape(path)
    assert len(tape.exchanges) == 1, tape.exchanges
    return tape.exchanges[0]


def decompressed(path: Path) -> bytes:
    """The whole tape decompressed, every frame, independently of streamtape's own reader."""
    with open(path, "rb") as f:
        return zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True).read()


def comparable(exchange: streamtape.Exchange, *, end_message: bool = True) -> tuple[Any, ...]:
    """An exchange as plain values that compare with ``==``: request, response head, chunks, end.

    Request and chunk times are left out (a copy is recorded later, at its own pace). ``end_message=False``
    leaves out the end's message too, for an error a replay raises in its own words (a read timeout).
    """
    response = exchange.response
    head = (
        None
        if response is None
        else (response.status_code, response.headers, response.http_version, response.reason)
    )
    end = exchange.end
    return (
        exchange.request.method,
        exchange.request.url,
        exchange.request.body,
        head,
        [c.data for c in exchange.chunks],
        (end.outcome, end.error_type, end.message) if end_message else (end.outcome, end.error_type),
    )


# -- what a client sees -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One request: POST ``body`` to ``url`` with ``client.stream`` and read the body.

    ``read``: "raw" (``iter_raw``: the transport's pieces), "bytes" (content-decoded) or "text".
    ``stop``: after the first piece, "close" the response while its iterator is alive, or "break".
    ``pause``: seconds the client sleeps after the first piece (a slow reader).
    ``headers``: sent besides ``content-type: application/json``.
    """

    url: str
    body: bytes = CHAT_BODY
    read: str = "raw"
    stop: str | None = None
    pause: float = 0.0
    headers: dict[str, Any] | None = None


@dataclass
class Seen:
    """What the client saw: the response head, each piece and when it came, the exception it caught."""

    head: tuple[int, list[tuple[bytes, bytes]], str, str] | None = None
    pieces: list[Any] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)  # seconds after the request was sent
    error: BaseException | None = None
    elapsed: float = 0.0
    response: Any = None  # the library's response object, None when the request itself failed

    @property
    def body(self) -> bytes:
        return b"".join(self.pieces)


def _head(response: Any) -> tuple[int, list[tuple[bytes, bytes]], str, str]:
    return (response.status_code, list(response.headers.raw), response.http_version, response.reason_phrase)


def _iterator(response: Any, read: str, is_async: bool) -> Any:
    name = {"raw": "iter_raw", "bytes": "iter_bytes", "text": "iter_text"}[read]
    return getattr(response, ("a" + name) if is_async else name)()


def fetch_all(shell: Shell, transport: Any, *calls: Call, timeout: Any = None) -> list[Seen]:
    """Make ``calls`` one after the other on one client whose transport is ``transport``."""
    lib = shell.lib
    timeout = timeout if timeout is not None else lib.Timeout(5.0)
    caught = (lib.HTTPError, streamtape.TapeError)
    out: list[Seen] = []

    def kwargs(call: Call) -> dict[str, Any]:
        return {"content": call.body, "headers": {"content-type": "application/json", **(call.headers or {})}}

    if shell.is_async:

        async def one(client: Any, call: Call) -> Seen:
            seen = Seen()
            t0 = time.perf_counter()
            try:
                async with client.stream("POST", call.url, **kwargs(call)) as response:
                    seen.head, seen.response = _head(response), response
                    pieces = _iterator(response, call.read, True)
                    async for piece in pieces:
                        seen.pieces.append(piece)
                        seen.arrivals.append(time.perf_counter() - t0)
                        if call.pause and len(seen.pieces) == 1:
                            await asyncio.sleep(call.pause)
                        if call.stop == "close":
                            await response.aclose()
                            await pieces.aclose()
                            break
                        if call.stop == "break":
                            break
            except caught as exc:
                seen.error = exc
            seen.elapsed = time.perf_counter() - t0
            return seen

        async def run() -> None:
            async with lib.AsyncClient(transport=transport, timeout=timeout) as client:
                for call in calls:
                    out.append(await one(client, call))

        asyncio.run(run())
        return out

    with lib.Client(transport=transport, timeout=timeout) as client:
        for call in calls:
            seen = Seen()
            t0 = time.perf_counter()
            try:
                with client.stream("POST", call.url, **kwargs(call)) as response:
                    seen.head, seen.response = _head(response), response
                    pieces = _iterator(response, call.read, False)
                    for piece in pieces:
                        seen.pieces.append(piece)
                        seen.arrivals.append(time.perf_counter() - t0)
                        if call.pause and len(seen.pieces) == 1:
                            time.sleep(call.pause)
                        if call.stop == "close":
                            response.close()
                            pieces.close()
                            break
                        if call.stop == "break":
                            break
            except caught as exc:
                seen.error = exc
            seen.elapsed = time.perf_counter() - t0
            out.append(seen)
    return out


def fetch(shell: Shell, transport: Any, url: str, *, timeout: Any = None, **call: Any) -> Seen:
    return fetch_all(shell, transport, Call(url, **call), timeout=timeout)[0]


def stream(shell: Shell, url: str, *, tape: Path | None = None, redact: Any = True, **call: Any) -> Seen:
    """One request recorded into ``tape`` (with no tape, through the library's own transport only)."""
    transport = shell.recording(tape, redact=redact) if tape is not None else None
    return fetch(shell, transport, url, **call)


def read_timeout(shell: Shell, seconds: float | None) -> Any:
    return shell.lib.Timeout(5.0) if seconds is None else shell.lib.Timeout(5.0, read=seconds)


def assert_library_error(shell: Shell, exc: BaseException | None, name: str) -> None:
    """``exc`` is the client's own library's ``name`` exception (httpx's for httpx, httpx2's for httpx2)."""
    assert exc is not None, f"expected {shell.lib.__name__}.{name}, the client saw no error"
    assert type(exc) is getattr(shell.lib, name), repr(exc)
    assert type(exc).__module__.partition(".")[0] == shell.lib.__name__


def load_samples_script() -> ModuleType:
    """``samples/regenerate.py`` as a module: its ``SAMPLES`` table and ``run`` (each sample's SDK call)."""
    spec = importlib.util.spec_from_file_location("samples_regenerate", ROOT / "samples" / "regenerate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


#: Set by ``.ci/run``: the optional test dependencies (Node and npm, Chromium) must be there.
REQUIRE_OPTIONAL_ENV = "STREAMTAPE_REQUIRE_OPTIONAL"


def optional_dependency_missing(what: str) -> NoReturn:
    """Skip, saying why, when an optional test dependency (README, "Run the tests") is not installed; fail
    instead under ``.ci/run``, which installs them all."""
    import pytest

    if os.environ.get(REQUIRE_OPTIONAL_ENV):
        pytest.fail(
            f"{what} is missing, and {REQUIRE_OPTIONAL_ENV} says the optional test dependencies are required"
        )
    pytest.skip(f"{what} is not installed: optional for the test suite (see README, Run the tests)")
