"""The reset: the connection dies mid-event, and the article's retry loop does not catch it.

Starts from ``openai-reset.tape``, recorded when the server reset the connection (TCP RST) in the middle of
an event. The retry code of the article catches ``httpx.ReadTimeout`` and ``httpx.RemoteProtocolError``; the
OpenAI SDK raises its own ``APIConnectionError`` (caused by httpx2's ``ReadError``), so the "resilient" loop
lets it escape after half an answer.

    python samples/example_reset.py
"""

from __future__ import annotations

from pathlib import Path

import httpx
from _replay import QUESTION, openai_client

import streamtape

HERE = Path(__file__).resolve().parent


def resilient_answer(tape: streamtape.Tape) -> str:
    """The article's ``resilient_stream``, sync: retry on the two httpx errors it knows."""
    collected: list[str] = []
    for attempt in range(3):
        try:
            stream = openai_client(tape).chat.completions.create(model="m", messages=QUESTION, stream=True)
            for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    collected.append(chunk.choices[0].delta.content)
            return "".join(collected)
        except (httpx.ReadTimeout, httpx.RemoteProtocolError) as exc:
            print(f"retrying after {exc!r} (attempt {attempt + 1})")
    raise RuntimeError("gave up")


def main() -> None:
    tape = streamtape.open_tape(HERE / "openai-reset.tape")
    try:
        resilient_answer(tape)
    except Exception as exc:
        print(
            f"naive client: {type(exc).__name__}: {exc} (caused by {type(exc.__cause__).__name__}) escaped the retry loop"
        )
    d = streamtape.diagnose(tape.exchanges[0])
    print(f"streamtape:   verdict {d.verdict}; {'; '.join(d.errors)}; {len(d.text)} characters arrived first")


if __name__ == "__main__":
    main()
