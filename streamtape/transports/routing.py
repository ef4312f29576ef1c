"""Route every httpx and httpx2 client through one tape, without changing the code that makes them.

``use_tape(path, mode=...)`` patches the network transports of both libraries (``HTTPTransport`` and
``AsyncHTTPTransport``) for the duration of a block, so every client that talks to the network through
them, the OpenAI and Anthropic SDKs' clients included, is answered from the tape or recorded into it.
The modes are VCR.py's record modes:

- ``once``: replay the tape if it exists, otherwise record it (the default);
- ``none``: replay only; a request the tape cannot answer, or a missing tape, is an error;
- ``all``: record everything anew (the old tape is replaced once the first request is recorded);
- ``new``: replay what the tape knows, record what it does not and append it to the tape.

A replayed request reaches no network. Every error a replay raised is kept in ``TapeSession.problems``,
because SDKs wrap them (openai reports ``TapeMismatch`` as ``APIConnectionError: Connection error.``) and
an application that handles connection errors would then pass a test on a request the tape never held;
the pytest plugin (``streamtape.pytest_plugin``) fails such a test with the mismatch message.
"""

from __future__ import annotations

import importlib
import logging
import math
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any, Literal

from ..errors import TapeError, TapeMismatch, TapeMissingError
from ..model import Exchange, StrPath, Tape
from ..record.redact import RedactOption
from ..record.stats import RecorderStats
from ..replay.matching import Match, Matcher, MatchFunc, ReplayRequest
from ..storage.reader import open_tape

logger = logging.getLogger("streamtape")

Mode = Literal["once", "none", "all", "new"]
MODES: tuple[Mode, ...] = ("once", "none", "all", "new")
#: The libraries routed, imported when a session starts (``import streamtape`` stays light).
LIBRARIES = ("httpx", "httpx2")


def _adapter(lib: ModuleType) -> ModuleType:
    """``streamtape.httpx`` or ``streamtape.httpx2``, the public transports for ``lib``."""
    return importlib.import_module(f"streamtape.{lib.__name__}")


class _SessionMatcher(Matcher):
    """The session's one matcher, shared by its replay transports, noting what it served."""

    def __init__(self, session: TapeSession, tape: Tape, match: Any, **options: Any) -> None:
        super().__init__(tape, match, **options)
        self.session = session

    def take(self, request: ReplayRequest) -> Exchange:
        exchange = super().take(request)
        self.session.matched.append((request, exchange))
        return exchange


class TapeSession:
    """One tape, and every client's traffic routed through it while the session is active."""

    def __init__(
        self,
        path: StrPath | Tape,
        *,
        mode: Mode = "once",
        match: str | Match | Sequence[str] | MatchFunc = "request",
        speed: float = math.inf,
        allow_repeats: bool = False,
        show_bodies: bool | None = None,
        redact: RedactOption = True,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        """``speed``: replay pace (``math.inf``: no waiting); ``match`` as the replay transports take it;
        ``redact`` and ``meta`` as the recording transports take them."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        if isinstance(path, Tape) and mode != "none":
            raise ValueError(f"a Tape object can only be replayed: mode='none', not {mode!r}")
        self.path = Path(path.path or "<a tape in memory>") if isinstance(path, Tape) else Path(path)
        self.mode: Mode = mode
        exists = isinstance(path, Tape) or self.path.exists()
        #: The tape replayed from (None when recording only, or when there is none yet).
        self.tape: Tape | None = (
            path if isinstance(path, Tape) else open_tape(self.path) if exists and mode != "all" else None
        )
        self.replaying = mode in ("none", "new") or (mode == "once" and exists)
        self.recording = mode in ("all", "new") or (mode == "once" and not exists)
        #: Each replayed request and the exchange that answered it, in order.
        self.matched: list[tuple[ReplayRequest, Exchange]] = []
        #: Errors a replay raised (mismatches, a missing tape), whether or not the client showed them.
        self.problems: list[TapeError] = []
        self._replay_options: dict[str, Any] = {"speed": speed}
        self._record_options: dict[str, Any] = {"redact": redact, "meta": dict(meta or {})}
        self._matcher = (
            _SessionMatcher(self, self.tape, match, allow_repeats=allow_repeats, show_bodies=show_bodies)
            if self.tape is not None
            else None
        )
        self._replayers: dict[tuple[str, bool], Any] = {}
        self._recorders: dict[tuple[str, bool], Any] = {}
        self._lock = threading.Lock()
        self._patches: list[tuple[type, str, Any]] = []

    # -- what a test may look at ----------------------------------------------------------------------
    @property
    def transports(self) -> list[Any]:
        """The replay and recording transports this session has used so far."""
        return [*self._replayers.values(), *self._recorders.values()]

    @property
    def stats(self) -> RecorderStats:
        """What was recorded (summed over the session's recording transports)."""
        total = RecorderStats()
        for shell in self._recorders.values():
            part = shell.stats
            total.add(
                seen=part.seen,
                sampled_out=part.sampled_out,
                recorded=part.recorded,
                discarded=part.discarded,
                dropped=part.dropped,
                bytes=part.bytes,
            )
            for cause, n in part.errors.items():
                total.errors[cause] = total.errors.get(cause, 0) + n
        return total

    # -- lifecycle ------------------------------------------------------------------------------------
    def __enter__(self) -> TapeSession:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Route every httpx and httpx2 network transport through this session."""
        if self._patches:
            return
        for name in LIBRARIES:
            lib = importlib.import_module(name)
            self._patch_sync(lib)
            self._patch_async(lib)

    def stop(self) -> None:
        """Restore the transports, and finish writing what was recorded (the tape is then complete)."""
        while self._patches:
            owner, name, original = self._patches.pop()
            setattr(owner, name, original)
        for shell in self._recorders.values():
            shell.recorder.close()

    def _patch_sync(self, lib: ModuleType) -> None:
        owner = lib.HTTPTransport
        original = owner.handle_request

        def handle_request(transport: Any, request: Any) -> Any:
            return self._handle(lib, transport, request, original)

        self._patches.append((owner, "handle_request", original))
        owner.handle_request = handle_request

    def _patch_async(self, lib: ModuleType) -> None:
        owner = lib.AsyncHTTPTransport
        original = owner.handle_async_request

        async def handle_async_request(transport: Any, request: Any) -> Any:
            return await self._ahandle(lib, transport, request, original)

        self._patches.append((owner, "handle_async_request", original))
        owner.handle_async_request = handle_async_request

    # -- routing ----------------------------------------------------------------------------------------
    def _handle(self, lib: ModuleType, transport: Any, request: Any, original: Callable[..., Any]) -> Any:
        if self.replaying:
            try:
                return self._replayer(lib, is_async=False).handle_request(request)
            except TapeError as exc:
                self._problem(exc)
        return self._recorder(lib, is_async=False).record(request, lambda r: original(transport, r))

    async def _ahandle(
        self, lib: ModuleType, transport: Any, request: Any, original: Callable[..., Awaitable[Any]]
    ) -> Any:
        if self.replaying:
            try:
                return await self._replayer(lib, is_async=True).handle_async_request(request)
            except TapeError as exc:
                self._problem(exc)
        return await self._recorder(lib, is_async=True).record(request, lambda r: original(transport, r))

    def _problem(self, exc: TapeError) -> None:
        """Raise it again unless this mode records what the tape cannot answer."""
        if self.recording and isinstance(exc, TapeMismatch | TapeMissingError):
            return
        self.problems.append(exc)
        raise exc

    def _replayer(self, lib: ModuleType, *, is_async: bool) -> Any:
        if self._matcher is None:
            raise TapeMissingError(
                f"no tape to replay (mode {self.mode!r} replays only; record it with mode 'once' or 'all')",
                path=self.path,
            )
        key = (lib.__name__, is_async)
        with self._lock:
            shell = self._replayers.get(key)
            if shell is None:
                adapter = _adapter(lib)
                cls = adapter.AsyncReplayTransport if is_async else adapter.ReplayTransport
                shell = cls(self._matcher.tape, **self._replay_options)
                shell.matcher = self._matcher  # one matcher: an exchange is served once, whoever asks
                self._replayers[key] = shell
            return shell

    def _recorder(self, lib: ModuleType, *, is_async: bool) -> Any:
        key = (lib.__name__, is_async)
        with self._lock:
            shell = self._recorders.get(key)
            if shell is None:
                if not self._recorders:
                    self._first_recording()
                adapter = _adapter(lib)
                cls = adapter.AsyncRecordingTransport if is_async else adapter.RecordingTransport
                sender = (
                    lib.AsyncBaseTransport() if is_async else lib.BaseTransport()
                )  # unused: ``record`` sends
                shell = cls(self.path, transport=sender, **self._record_options)
                self._recorders[key] = shell
            return shell

    def _first_recording(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.mode == "all":
            self.path.unlink(missing_ok=True)  # only now: a test that sends nothing keeps the old tape


def use_tape(path: StrPath | Tape, *, mode: Mode = "once", **options: Any) -> TapeSession:
    """Route every httpx and httpx2 client through the tape at ``path`` inside a ``with`` block (a ``Tape``
    object, such as a ``faults`` variant, is replayed only: ``mode="none"``).

    >>> with streamtape.use_tape("tests/tapes/chat.tape") as session:
    ...     client.chat.completions.create(...)   # replayed if the tape exists, else recorded
    """
    return TapeSession(path, mode=mode, **options)
