"""The emulator's scenario knobs: their compact encoding, how a request carries them (URL path or header), and
the ``--help`` that lists them all.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import httpx
import pytest
from helpers import CHAT

from streamtape.emulator import Emulator, Scenario

pytestmark = pytest.mark.timeout(30)


# -- scenario encoding --------------------------------------------------------------------------------


def test_scenario_encode_decode_roundtrip() -> None:
    s = Scenario(events=3, text="a,b/c=d é 🚀", stall_at=2, stall_s=0.5, usage=False, seed=7, pace_ms=2)
    encoded = s.encode()
    assert "/" not in encoded and encoded.isascii()
    assert Scenario.decode(encoded) == s
    assert Scenario().encode() == "" and Scenario.decode("") == Scenario()
    assert Scenario(pace_ms=2).encode() == Scenario(pace_ms=2.0).encode() == "pace_ms=2"


@pytest.mark.parametrize(
    ("encoded", "message"),
    [
        ("bogus=1", "unknown scenario knob 'bogus'"),
        ("events=x", "'events'"),
        ("tools=3", "'tools'"),
        ("split", "no value"),
    ],
)
def test_scenario_decode_rejects_bad_input(encoded: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Scenario.decode(encoded)


def test_bad_scenario_in_url_is_a_400(emulator: Emulator) -> None:
    response = httpx.post(f"{emulator.url()}/x/nope=1/v1/chat/completions", json=CHAT)
    assert response.status_code == 400
    assert "unknown scenario knob 'nope'" in response.json()["error"]["message"]


def test_scenario_header_overrides_the_path(emulator: Emulator) -> None:
    response = httpx.post(
        emulator.url(events=2) + "/v1/chat/completions",
        json=CHAT,
        headers={"x-emulator-scenario": Scenario(status=503).encode()},
    )
    assert response.status_code == 503
    assert response.json()["error"]["type"] == "server_error"
    assert emulator.requests[-1].scenario == Scenario(status=503)


def test_help_lists_every_scenario_knob_with_its_default_and_an_example_url() -> None:
    """``python -m streamtape.emulator --help`` names every field of ``Scenario``: one source of truth."""
    result = subprocess.run(
        [sys.executable, "-m", "streamtape.emulator", "--help"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    help_text = result.stdout
    for knob in dataclasses.fields(Scenario):
        assert knob.metadata.get("meaning"), f"Scenario.{knob.name} has no meaning for --help"
        assert f"  {knob.name}=" in help_text, f"--help does not list the {knob.name!r} knob"
        assert knob.metadata["meaning"] in help_text
        example = Scenario(**{knob.name: knob.metadata["example"]})
        assert example != Scenario(), f"the example for {knob.name!r} is its default"
        assert f"/x/{example.encode()}/v1/" in help_text
    assert "(default: 12)" in help_text  # events
    assert "/x/events=6,split_utf8=1/v1/chat/completions" in help_text
