"""``play`` takes asciinema's names too: ``-s`` for ``--speed``, ``-i/--idle-time-limit`` for ``--max-gap``.

The player runs on a fake clock here: its sleeps are recorded, not slept, so the waits each spelling asks
for are compared exactly and the tests take no real time.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

import streamtape
from streamtape.cli import main

TAPE = Path(__file__).resolve().parents[1] / "samples" / "openai-complete.tape"


class FakeTime:
    """Stands for the ``time`` module in the player: ``sleep`` moves the clock and is recorded."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def perf_counter(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def play(monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[str, list[float]]:
    """What ``play`` prints with these options, and the waits it asked for."""
    clock = FakeTime()
    monkeypatch.setattr("streamtape.report.player.time", clock)
    result = CliRunner().invoke(main, ["play", *args, str(TAPE)])
    assert result.exit_code == 0, result.output
    return result.output, clock.sleeps


def test_s_is_speed(monkeypatch: pytest.MonkeyPatch):
    short = play(monkeypatch, "-s", "4")
    assert short == play(monkeypatch, "--speed", "4")
    output, sleeps = play(monkeypatch, "--speed", "1")
    assert short[0] == output
    assert sum(short[1]) == pytest.approx(sum(sleeps) / 4)  # the option took effect: a quarter of the time


def test_s_inf_prints_at_once_as_speed_inf(monkeypatch: pytest.MonkeyPatch):
    output, sleeps = play(monkeypatch, "-s", "inf")
    assert (output, sleeps) == play(monkeypatch, "--speed", "inf")
    assert sleeps == []
    assert output.startswith(streamtape.diagnose(streamtape.open_tape(TAPE).exchanges[0]).text)


@pytest.mark.parametrize("alias", ["-i", "--idle-time-limit"])
def test_idle_time_limit_is_max_gap(monkeypatch: pytest.MonkeyPatch, alias: str):
    cap = 0.002
    uncapped = play(monkeypatch)
    capped = play(monkeypatch, alias, str(cap))
    assert capped == play(monkeypatch, "--max-gap", str(cap))
    assert capped[0] == uncapped[0]
    assert max(capped[1]) <= cap + 1e-9 < max(uncapped[1])  # a wait the tape holds was cut to the cap


def test_the_aliases_combine_as_the_long_forms_do(monkeypatch: pytest.MonkeyPatch):
    assert play(monkeypatch, "-s", "2", "-i", "0.005") == play(
        monkeypatch, "--speed", "2", "--max-gap", "0.005"
    )


def test_s_rejects_a_speed_of_zero_as_speed_does():
    result = CliRunner().invoke(main, ["play", "-s", "0", str(TAPE)])
    assert result.exit_code == 2 and "must be > 0" in result.output
