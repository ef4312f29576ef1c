"""Deterministic content shared by the three providers: text pieces, tool calls, ids, padding.

Everything derives from `Scenario.seed` through a `random.Random` seeded with a purpose string, so a
scenario always produces the same bytes (useful for tapes and benchmarks), and tests can compute what a
client should assemble with `expected_text` / `expected_tool_calls` instead of hard-coding it.
"""

from __future__ import annotations

import json
import random
import string
from dataclasses import dataclass
from typing import Any

from .scenario import Scenario

_WORDS = [
    "the",
    "stream",
    "carries",
    "every",
    "token",
    "across",
    "the",
    "wire",
    "and",
    "the",
    "client",
    "joins",
    "them",
    "back",
    "into",
    "one",
    "answer",
    "while",
    "the",
    "server",
    "keeps",
    "writing",
    "small",
    "events",
    "with",
    "a",
    "blank",
    "line",
    "after",
    "each",
    "so",
    "nothing",
    "waits",
    "for",
    "the",
    "whole",
    "response",
    "before",
    "it",
    "starts",
    "to",
    "show",
    "up",
    "on",
    "the",
    "screen",
    "of",
    "whoever",
    "asked",
]

# Multi-byte UTF-8 of every width: 2 bytes (Latin accents, Greek), 3 (CJK), 4 (emoji, astral symbols).
_UNICODE_WORDS = (
    "café",
    "naïve",
    "Grüße",
    "mañana",
    "Ωμέγα",
    "東京",
    "日本語",
    "流れ",
    "🚀",
    "😀",
    "𝄞",
    "Zürich",
    "façade",
    "数据",
    "🌊",
)

_THINKING = [
    "The",
    "user",
    "wants",
    "a",
    "short",
    "answer",
    "so",
    "I",
    "should",
    "keep",
    "it",
    "brief",
    "and",
    "check",
    "the",
    "facts",
    "first",
    "before",
    "I",
    "write",
    "it",
    "out",
]

_ALNUM = string.ascii_letters + string.digits


def rng(scenario: Scenario, purpose: str) -> random.Random:
    """A generator for one purpose, so adding a draw for one thing never shifts another."""
    return random.Random(f"{scenario.seed}:{purpose}")


def random_id(r: random.Random, length: int, alphabet: str = _ALNUM) -> str:
    return "".join(r.choice(alphabet) for _ in range(length))


def obfuscation(r: random.Random) -> str:
    """Padding of varying length, like the `obfuscation` field OpenAI adds to streamed deltas."""
    return random_id(r, r.randint(1, 16))


def split_even(text: str, n: int) -> list[str]:
    """Split `text` into `n` pieces of near-equal length (fewer if the text is shorter than `n`)."""
    n = max(1, min(n, len(text)))
    if not text:
        return []
    base, extra = divmod(len(text), n)
    pieces, start = [], 0
    for i in range(n):
        size = base + (1 if i < extra else 0)
        pieces.append(text[start : start + size])
        start += size
    return pieces


def wants_unicode(scenario: Scenario) -> bool:
    """`split_utf8` needs multi-byte characters to split, so it turns on unicode text too."""
    return scenario.unicode or scenario.split_utf8


def text_pieces(scenario: Scenario) -> list[str]:
    """The content deltas, about one token each; empty when tool calls replace the text."""
    if scenario.text is not None:
        return split_even(scenario.text, scenario.events)
    if scenario.tools:
        return []
    r = rng(scenario, "text")
    unicode = wants_unicode(scenario)
    pieces = []
    for i in range(scenario.events):
        word = r.choice(_UNICODE_WORDS) if unicode and (i == 0 or r.random() < 0.5) else r.choice(_WORDS)
        if i == 0:
            word = word[:1].upper() + word[1:]
        piece = word if i == 0 else " " + word
        if i == scenario.events - 1:
            piece += "."
        elif r.random() < 0.12:
            piece += ","
        pieces.append(piece)
    return pieces


def expected_text(scenario: Scenario) -> str:
    """The text a client should assemble from the stream."""
    return "".join(text_pieces(scenario))


def thinking_pieces(scenario: Scenario) -> list[str]:
    words = _THINKING[: max(3, min(len(_THINKING), scenario.events))]
    return [w if i == 0 else " " + w for i, w in enumerate(words)]


def thinking_signature(scenario: Scenario) -> str:
    r = rng(scenario, "signature")
    return "Eq" + random_id(r, 180, _ALNUM + "+/") + "=="


@dataclass(frozen=True)
class ToolCall:
    """One function call the model makes: its name, its arguments, and how they are streamed."""

    name: str
    arguments: dict[str, Any]
    fragments: tuple[str, ...]

    @property
    def arguments_json(self) -> str:
        return "".join(self.fragments)


def _tool_templates(r: random.Random, unicode: bool) -> list[tuple[str, dict[str, Any]]]:
    city = r.choice(
        ["Zürich", "São Paulo", "東京", "Kraków"] if unicode else ["Paris", "Oslo", "Lima", "Kyoto"]
    )
    query = "streaming 🚀 café résumé" if unicode else "server sent events retry policy"
    return [
        ("get_weather", {"location": city, "unit": r.choice(["celsius", "fahrenheit"])}),
        ("search_docs", {"query": query, "limit": r.randint(3, 9), "filters": {"lang": "en"}}),
        ("lookup_order", {"order_id": "ord_" + random_id(r, 10), "include_items": True}),
    ]


def _fragment(text: str, r: random.Random) -> tuple[str, ...]:
    """Cut arguments JSON into many small pieces of 1-6 characters, like a model emits them."""
    pieces, start = [], 0
    while start < len(text):
        size = r.randint(1, 6)
        pieces.append(text[start : start + size])
        start += size
    return tuple(pieces)


def tool_calls(scenario: Scenario) -> list[ToolCall]:
    """The `tools` calls (0, 1 or 2), with their arguments as compact JSON split into fragments."""
    if not scenario.tools:
        return []
    r = rng(scenario, "tools")
    chosen = r.sample(_tool_templates(r, wants_unicode(scenario)), scenario.tools)
    calls = []
    for name, arguments in chosen:
        encoded = json.dumps(arguments, ensure_ascii=False, separators=(",", ":"))
        calls.append(ToolCall(name=name, arguments=arguments, fragments=_fragment(encoded, r)))
    return calls


def expected_tool_calls(scenario: Scenario) -> list[tuple[str, dict[str, Any]]]:
    """(name, arguments) of each call a client should assemble, in index order."""
    return [(call.name, call.arguments) for call in tool_calls(scenario)]


def interleave(calls: list[ToolCall]) -> list[tuple[int, str]]:
    """(call index, fragment) in send order: parallel calls alternate fragment by fragment."""
    order: list[tuple[int, str]] = []
    longest = max((len(c.fragments) for c in calls), default=0)
    for j in range(longest):
        for i, call in enumerate(calls):
            if j < len(call.fragments):
                order.append((i, call.fragments[j]))
    return order


def prompt_tokens(request: dict[str, Any]) -> int:
    """A stable, plausible token count for the request (about four characters a token)."""
    size = len(json.dumps(request.get("messages") or request.get("input") or "", ensure_ascii=False))
    return 8 + size // 4


def output_tokens(scenario: Scenario) -> int:
    calls = tool_calls(scenario)
    return max(1, len(text_pieces(scenario)) + sum(len(c.fragments) for c in calls) // 2)
