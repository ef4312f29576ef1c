"""The code stays as the project's style asks: ruff clean, formatted, and ``mypy --strict`` clean."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PATHS = ["streamtape", "tests", "benchmarks", "spec", "samples"]


@pytest.mark.parametrize("args", [["check"], ["format", "--check"]], ids=["check", "format"])
def test_ruff_is_clean(args: list[str]):
    result = subprocess.run(
        [sys.executable, "-m", "ruff", *args, *PATHS], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_is_clean():
    """``py.typed`` promises types: the whole package type-checks under ``mypy --strict``."""
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "streamtape"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
