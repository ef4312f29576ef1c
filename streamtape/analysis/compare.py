"""Do two exchanges say the same thing? The seed article's ``verify_stream_completeness``, from tapes.

Compares what was *said* — assembled text, tool calls, finish reason — not bytes or timing: a stream and
its non-streamed baseline, or two recordings of the same prompt. Reports the first divergence with context.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..model import Exchange
from .diagnose import Diagnostics, diagnose

_CONTEXT = 24


@dataclass
class Difference:
    """Where ``a`` and ``b`` first part: ``what`` (text, refusal, tool_calls[i].arguments, ...), and around it."""

    what: str
    offset: int | None
    a: str
    b: str

    def __str__(self) -> str:
        where = f" at {self.offset}" if self.offset is not None else ""
        return f"{self.what} differs{where}: {self.a!r} vs {self.b!r}"


@dataclass
class Comparison:
    equal: bool
    differences: list[Difference] = field(default_factory=list)
    a: Diagnostics | None = None
    b: Diagnostics | None = None


def first_divergence(a: str, b: str) -> int | None:
    """The index of the first differing character, or None when the strings are equal."""
    if a == b:
        return None
    limit = min(len(a), len(b))
    return next((i for i in range(limit) if a[i] != b[i]), limit)


def _text_difference(what: str, a: str, b: str) -> Difference | None:
    at = first_divergence(a, b)
    if at is None:
        return None
    lo = max(0, at - _CONTEXT)
    return Difference(what, at, a[lo : at + _CONTEXT], b[lo : at + _CONTEXT])


def _calls(d: Diagnostics) -> list[dict[str, Any]]:
    return d.tool_calls


def compare_diagnostics(a: Diagnostics, b: Diagnostics) -> Comparison:
    diffs: list[Difference] = []
    for what in ("text", "refusal"):
        if diff := _text_difference(what, getattr(a, what), getattr(b, what)):
            diffs.append(diff)
    calls_a, calls_b = _calls(a), _calls(b)
    if len(calls_a) != len(calls_b):
        diffs.append(Difference("tool_calls (count)", None, str(len(calls_a)), str(len(calls_b))))
    for i, (x, y) in enumerate(zip(calls_a, calls_b, strict=False)):
        if x["name"] != y["name"]:
            diffs.append(Difference(f"tool_calls[{i}].name", None, x["name"], y["name"]))
        if diff := _text_difference(f"tool_calls[{i}].arguments", x["arguments"], y["arguments"]):
            diffs.append(diff)
    if a.finish_reason != b.finish_reason:
        diffs.append(Difference("finish_reason", None, str(a.finish_reason), str(b.finish_reason)))
    return Comparison(not diffs, diffs, a, b)


def compare(a: Exchange, b: Exchange) -> Comparison:
    """Compare what two exchanges said (stream vs stream, or stream vs non-streamed baseline).

    >>> result = streamtape.compare(stream_tape.exchanges[0], baseline_tape.exchanges[0])
    >>> result.equal, [str(d) for d in result.differences]
    (False, ["text differs at 812: 'the last fifty tok' vs 'the last fif'"])
    """
    return compare_diagnostics(diagnose(a), diagnose(b))
