"""The four transport shells the tests run on: httpx and httpx2, each sync and async."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import httpx2
import pytest

import streamtape
import streamtape.httpx
import streamtape.httpx2


@dataclass(frozen=True)
class Shell:
    lib: ModuleType
    adapter: ModuleType
    is_async: bool

    @property
    def id(self) -> str:
        return f"{self.lib.__name__}-{'async' if self.is_async else 'sync'}"

    def recording(self, tape: Path | str, **kwargs: Any) -> Any:
        cls = self.adapter.AsyncRecordingTransport if self.is_async else self.adapter.RecordingTransport
        return cls(tape, **kwargs)

    def replay(self, tape: Path | str | streamtape.Tape, **kwargs: Any) -> Any:
        cls = self.adapter.AsyncReplayTransport if self.is_async else self.adapter.ReplayTransport
        return cls(tape, **kwargs)


SHELL_LIST = [
    Shell(httpx, streamtape.httpx, False),
    Shell(httpx, streamtape.httpx, True),
    Shell(httpx2, streamtape.httpx2, False),
    Shell(httpx2, streamtape.httpx2, True),
]
SHELLS = pytest.mark.parametrize("shell", SHELL_LIST, ids=[s.id for s in SHELL_LIST])
ASYNC_SHELLS = pytest.mark.parametrize(
    "shell", [s for s in SHELL_LIST if s.is_async], ids=[s.id for s in SHELL_LIST if s.is_async]
)
