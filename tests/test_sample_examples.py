"""The example scripts in ``samples/`` (one per bug class of the article the project started from) run, show
the naive client failing, and show what the diagnosis says."""

from __future__ import annotations

import subprocess
import sys

import pytest
from helpers import ROOT

EXAMPLES = {
    "example_dropped_tail.py": ["naive client: no exception", "finish_reason None", "verdict truncated"],
    "example_reset.py": ["APIConnectionError", "escaped the retry loop", "verdict error; ReadError"],
    "example_proxy_timeout.py": ["naive client: APITimeoutError after", "longest gap 90.0 s before chunk"],
    "example_partial_tool_call.py": ["JSONDecodeError", "verdict truncated", "valid_json=False"],
    "example_split_utf8.py": [
        "UnicodeDecodeError",
        "1 UTF-8 character split across chunks",
        "text has 🚀: True",
    ],
}


def test_every_example_script_is_listed_here() -> None:
    assert sorted(p.name for p in (ROOT / "samples").glob("example_*.py")) == sorted(EXAMPLES)


@pytest.mark.parametrize(("script", "expected"), EXAMPLES.items(), ids=list(EXAMPLES))
def test_an_example_shows_the_failure_and_the_diagnosis(script: str, expected: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "samples" / script)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for phrase in expected:
        assert phrase in result.stdout, (phrase, result.stdout)
    assert "Traceback" not in result.stderr
