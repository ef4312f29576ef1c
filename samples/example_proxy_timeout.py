"""The timeout behind a proxy: the stream goes quiet for 90 s, past the client's 60 s read timeout.

Starts from ``openai-complete.tape`` (healthy) and adds a 90 s stall in the middle, as a proxy that buffers
or a model that stalls would. Replay applies the client's read timeout to the recorded wait in virtual time:
the timeout fires at once, not after a minute. The naive client treats the timeout as the end and keeps a
half answer.

    python samples/example_proxy_timeout.py
"""

from __future__ import annotations

from pathlib import Path

import httpx2
import openai
from _replay import QUESTION, openai_client

import streamtape
from streamtape import faults

HERE = Path(__file__).resolve().parent


def main() -> None:
    tape = streamtape.open_tape(HERE / "openai-complete.tape")
    stalled = faults.stall(tape, at_chunk=len(tape.exchanges[0].chunks) // 2, seconds=90)
    client = openai_client(stalled, timeout=httpx2.Timeout(10.0, read=60.0))
    text = []
    try:
        for chunk in client.chat.completions.create(model="m", messages=QUESTION, stream=True):
            if chunk.choices:
                text.append(chunk.choices[0].delta.content or "")
    except openai.APITimeoutError as exc:
        print(
            f"naive client: {type(exc).__name__} after {''.join(text)!r}; it shows the half answer as if done"
        )
    d = streamtape.diagnose(stalled.exchanges[0])
    print(
        f"streamtape:   longest gap {d.gap_max_ms / 1000:.1f} s before chunk {d.gap_max_at_chunk} "
        f"(gaps p50 {d.gap_p50_ms:.1f} ms); verdict of the recording it came from: "
        f"{streamtape.diagnose(tape.exchanges[0]).verdict}"
    )


if __name__ == "__main__":
    main()
