"""streamtape's pytest plugin (a ``pytest11`` entry point: active once streamtape is installed).

``@pytest.mark.tape`` routes every httpx and httpx2 client the test uses through a tape
(``transports.routing``): replayed if the tape exists, recorded otherwise, at infinite speed. The tape is
``tapes/<module>/<test name>.tape`` beside the test file. The ``tape`` fixture is the ``TapeSession``:
the tape, the transports, what was matched. The workflow follows VCR.py / pytest-recording:

- ``--tape-mode once|none|all|new`` (or ``$STREAMTAPE_TAPE_MODE``, or the ``tape_mode`` ini option, in that
  order of precedence; ``once`` by default): see ``transports.routing`` for what each does;
- ``--tape-dir`` (or the ``tape_dir`` ini option): where tapes go, relative to each test file (``tapes``);
- ``@pytest.mark.tape("name", match=..., speed=..., mode=...)``: a tape name (a bare name goes in the
  module's directory, a path is relative to the test file), and the session's options; a ``tape_options``
  fixture (override it in a ``conftest.py``) gives defaults for a directory of tests.

A request the tape cannot answer fails the test with the mismatch message even when the client library
swallowed the exception (the Anthropic SDK and openai 1.x report it as ``APIConnectionError: Connection
error.``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from .transports.routing import MODES, Mode, TapeSession

#: The environment variable CI sets to choose the mode (``none`` to forbid recording).
MODE_ENV = "STREAMTAPE_TAPE_MODE"
_SESSION = pytest.StashKey[TapeSession]()
_UNSAFE = re.compile(r"[^A-Za-z0-9_.=-]+")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("streamtape", "streamtape: replay and record LLM streams")
    group.addoption(
        "--tape-mode",
        choices=MODES,
        default=None,
        help="once: replay a tape if it exists, else record it (default); none: replay only; "
        f"all: record anew; new: replay what is known, record the rest. Also ${MODE_ENV}.",
    )
    group.addoption("--tape-dir", default=None, help="where tapes are, relative to each test file (tapes)")
    parser.addini("tape_mode", "the default --tape-mode", default="")
    parser.addini("tape_dir", "the default --tape-dir", default="tapes")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "tape(name=None, *, mode=None, match='request', speed=inf, allow_repeats=False, redact=True): "
        "route every httpx and httpx2 client of the test through a tape (streamtape)",
    )
    mode(config)  # a bad value in the environment or the ini file fails at start, once


def mode(config: pytest.Config) -> Mode:
    """The mode: the command line, then the environment, then the ini file, then ``once``."""
    for value, where in (
        (config.getoption("tape_mode"), "--tape-mode"),
        (os.environ.get(MODE_ENV, ""), f"${MODE_ENV}"),
        (config.getini("tape_mode"), "the tape_mode ini option"),
    ):
        if value:
            if value not in MODES:
                raise pytest.UsageError(f"{where} must be one of {', '.join(MODES)}, not {value!r}")
            return cast(Mode, value)
    return "once"


def tape_path(node: pytest.Item, name: str | None) -> Path:
    """``<test dir>/<tape dir>/<module>/<test name>.tape``; a name with a directory is relative to the test."""
    config = node.config
    here = node.path.parent
    if name is not None and (os.sep in name or "/" in name):
        path = here / name
    else:
        base = here / (config.getoption("tape_dir") or config.getini("tape_dir"))
        module = node.path.stem
        stem = name or _UNSAFE.sub("-", node.name.replace("[", "-").replace("]", "")).strip("-")
        path = base / module / stem
    return path if path.suffix == ".tape" else path.with_name(path.name + ".tape")


@pytest.fixture
def tape_options() -> dict[str, Any]:
    """Defaults for ``@pytest.mark.tape`` (``match``, ``speed``, ``redact``, ...); override in a conftest."""
    return {}


@pytest.fixture
def tape(request: pytest.FixtureRequest, tape_options: dict[str, Any]) -> Iterator[TapeSession]:
    """The test's ``TapeSession``: ``.path``, ``.tape``, ``.matched``, ``.transports``, ``.problems``."""
    node = request.node
    assert isinstance(node, pytest.Item)
    marker = node.get_closest_marker("tape")
    args, kwargs = (marker.args, dict(marker.kwargs)) if marker is not None else ((), {})
    if len(args) > 1:
        raise pytest.UsageError(f"{node.nodeid}: @pytest.mark.tape takes one tape name, not {args!r}")
    options = {**tape_options, **kwargs}
    chosen: Mode = options.pop("mode", None) or mode(request.config)
    name = args[0] if args else options.pop("name", None)
    meta = {"pytest": node.nodeid, **options.pop("meta", {})}
    session = TapeSession(tape_path(node, name), mode=chosen, meta=meta, **options)
    node.stash[_SESSION] = session
    with session:
        yield session


@pytest.fixture(autouse=True)
def _streamtape_marker(request: pytest.FixtureRequest) -> None:
    """A test marked ``tape`` gets the session without asking for the fixture."""
    if request.node.get_closest_marker("tape") is not None:
        request.getfixturevalue("tape")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """Fail a test whose requests the tape could not answer, whatever the client did with the error."""
    try:
        yield
    except BaseException as exc:
        session = item.stash.get(_SESSION, None)
        if session is not None and session.problems and exc not in session.problems:
            # The client turned the mismatch into something else (an SDK's connection error): say so.
            raise pytest.fail.Exception(_report(session, f"the test then failed with {_name(exc)}")) from exc
        raise
    session = item.stash.get(_SESSION, None)
    if session is not None and session.problems:
        pytest.fail(_report(session, "the client did not raise it; the test passed without the tape"), False)


def _report(session: TapeSession, then: str) -> str:
    first = session.problems[0]
    more = f" (and {len(session.problems) - 1} more)" if len(session.problems) > 1 else ""
    return f"streamtape: {first}{more}; {then}"


def _name(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
