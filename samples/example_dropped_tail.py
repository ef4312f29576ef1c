"""The dropped tail: a proxy ends the stream politely before the last tokens, and nothing complains.

Starts from ``openai-complete.tape`` (a healthy stream) and cuts it cleanly after half of its events, the
way a proxy or load balancer that closes an idle or too-long response does: the HTTP body ends well formed,
the SDK raises nothing, the answer is shorter, and ``finish_reason`` never comes.

    python samples/example_dropped_tail.py
"""

from __future__ import annotations

from pathlib import Path

from _replay import QUESTION, openai_client

import streamtape
from streamtape import faults

HERE = Path(__file__).resolve().parent


def naive_answer(tape: streamtape.Tape) -> tuple[str, str | None]:
    """The usual streaming loop: join the deltas, note the finish reason, trust the result."""
    text, finish = [], None
    stream = openai_client(tape).chat.completions.create(model="gpt-4o-mini", messages=QUESTION, stream=True)
    for chunk in stream:
        if chunk.choices:
            text.append(chunk.choices[0].delta.content or "")
            finish = chunk.choices[0].finish_reason or finish
    return "".join(text), finish


def main() -> None:
    tape = streamtape.open_tape(HERE / "openai-complete.tape")
    events = faults.event_spans(tape.exchanges[0].body)
    cut = faults.truncate(tape, after_bytes=events[len(events) // 2][1], error=None)
    full, _ = naive_answer(tape)
    text, finish = naive_answer(cut)
    print(f"naive client: no exception, answer {text!r}")
    print(f"              finish_reason {finish!r}; {len(text)} of {len(full)} characters")
    diagnosis = streamtape.diagnose(cut.exchanges[0])
    print(
        f"streamtape:   verdict {diagnosis.verdict}, finish_reason {diagnosis.finish_reason!r}, "
        f"terminal marker seen: {diagnosis.terminal}"
    )


if __name__ == "__main__":
    main()
