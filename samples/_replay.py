"""What the example scripts share: an OpenAI client answered from a tape, touching no network."""

from __future__ import annotations

import math
from typing import Any

import httpx2
import openai

import streamtape
import streamtape.httpx2

QUESTION = [{"role": "user", "content": "What does a tape keep?"}]


def openai_client(tape: streamtape.Tape, **options: Any) -> openai.OpenAI:
    """The OpenAI SDK, unchanged, with a replay transport under it (``match="sequence"``: any prompt)."""
    url = tape.exchanges[0].request.url
    transport = streamtape.httpx2.ReplayTransport(tape, speed=math.inf, match="sequence")
    return openai.OpenAI(
        api_key="sk-example",
        base_url=url[: url.index("/v1/")] + "/v1",
        http_client=httpx2.Client(transport=transport),
        max_retries=0,
        **options,
    )
