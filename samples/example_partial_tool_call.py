"""The partial tool call: a stream cut while tool arguments are still arriving.

Starts from ``openai-tool-calls.tape`` (two parallel tool calls whose argument fragments interleave) and cuts
it cleanly half way. The article's ``ToolCallBuffer`` waits for ``finish_reason == "tool_calls"``, which never
comes; code that runs what it buffered anyway calls a tool with half its JSON.

    python samples/example_partial_tool_call.py
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from _replay import QUESTION, openai_client

import streamtape
from streamtape import faults

HERE = Path(__file__).resolve().parent


class ToolCallBuffer:
    """The article's buffer, as written there."""

    def __init__(self) -> None:
        self.buffers: dict[int, dict[str, str]] = {}

    def process_chunk(self, chunk: Any) -> list[dict[str, str]] | None:
        delta = chunk.choices[0].delta if chunk.choices else None
        if not delta or not delta.tool_calls:
            return None
        for tc in delta.tool_calls:
            entry = self.buffers.setdefault(tc.index, {"id": tc.id or "", "name": "", "arguments": ""})
            if tc.function:
                entry["name"] = tc.function.name or entry["name"]
                entry["arguments"] += tc.function.arguments or ""
        if chunk.choices[0].finish_reason == "tool_calls":
            return list(self.buffers.values())
        return None


def main() -> None:
    tape = streamtape.open_tape(HERE / "openai-tool-calls.tape")
    events = faults.event_spans(tape.exchanges[0].body)
    cut = faults.truncate(tape, after_bytes=events[len(events) // 2][1], error=None)
    buffer, done = ToolCallBuffer(), None
    for chunk in openai_client(cut).chat.completions.create(model="m", messages=QUESTION, stream=True):
        done = buffer.process_chunk(chunk) or done
    print(f"naive client: the buffer never finished ({done}); running what it holds anyway:")
    for call in buffer.buffers.values():
        try:
            json.loads(call["arguments"])
            print(f"  {call['name']}({call['arguments']}) ok")
        except json.JSONDecodeError as exc:
            print(f"  {call['name']}({call['arguments']}) -> JSONDecodeError: {exc.msg}")
    d = streamtape.diagnose(cut.exchanges[0])
    calls = ", ".join(f"{c['name']} valid_json={c['valid_json']}" for c in d.tool_calls)
    print(f"streamtape:   verdict {d.verdict}, finish_reason {d.finish_reason!r}; {calls}")


if __name__ == "__main__":
    main()
