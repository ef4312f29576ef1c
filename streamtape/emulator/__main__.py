"""`python -m streamtape.emulator --port N`: run the emulator in the foreground for manual poking."""

from __future__ import annotations

import argparse
import contextlib

from . import anthropic_messages, openai_chat, openai_responses
from .scenario import Scenario, knob_help
from .server import SCENARIO_HEADER, SCENARIO_PREFIX, Emulator

#: What ``--help`` shows as a base URL; the real one is printed at start-up.
_BASE = "http://127.0.0.1:PORT"
_ENDPOINTS = (openai_chat, openai_responses, anthropic_messages)


def _example_path(scenario: Scenario) -> str:
    """The first endpoint whose events the scenario changes (Chat Completions if it changes only timing)."""
    request = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "input": "hi", "stream": True}
    for module in _ENDPOINTS:
        if module.stream_events(scenario, request) != module.stream_events(Scenario(), request):
            path: str = module.PATH
            return path
    return openai_chat.PATH


def scenario_help() -> str:
    """The scenario knobs for ``--help``: how to pass them, then each one, all read from `Scenario`."""
    example = f"{_BASE}{SCENARIO_PREFIX}{Scenario(events=6, split_utf8=True).encode()}{openai_chat.PATH}"
    paths = ", ".join(m.PATH for m in _ENDPOINTS)
    lines = [
        "endpoints (POST, with or without a scenario prefix):",
        f"  {paths}",
        "",
        f"scenario knobs: name=value pairs joined by commas, in the path after {SCENARIO_PREFIX}",
        f"(or in an {SCENARIO_HEADER} header, which wins); unlisted knobs keep their defaults.",
        "Event numbers count every SSE event on the wire from 0; a plain JSON answer is one event.",
        f"  e.g. {example}",
        "",
    ]
    for knob in knob_help():
        lines.append(f"  {knob.name}={knob.kind}  (default: {knob.default})")
        lines.append(f"      {knob.meaning}")
        path = _example_path(Scenario.decode(knob.example))
        lines.append(f"      e.g. {_BASE}{SCENARIO_PREFIX}{knob.example}{path}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m streamtape.emulator",
        description=__doc__,
        epilog=scenario_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    args = parser.parse_args(argv)
    emulator = Emulator(host=args.host, port=args.port).start()
    print(emulator.url(), flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        emulator.serve_forever()


if __name__ == "__main__":
    main()
