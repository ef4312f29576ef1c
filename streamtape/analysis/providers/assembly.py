"""What an assembler produces (``ToolCall``, ``Assembly``), and the bookkeeping every assembler shares.

An ``Assembly`` is what a client would have pieced together from one response: the visible text, the tool
calls, why it stopped, and whether the provider's terminal marker arrived. The same fields come out of a
stream (``assemble_events``) and of a plain JSON response (``assemble_json``), so the two can be compared.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from . import _json as j

#: The provider names ``detect`` returns and the assemblers accept.
OPENAI_CHAT = "openai-chat"
OPENAI_RESPONSES = "openai-responses"
ANTHROPIC = "anthropic"
UNKNOWN = "unknown"

#: At most this many entries in ``errors`` and ``problems``; the rest are counted in a last entry.
MAX_NOTES = 100


@dataclass
class ToolCall:
    """One assembled function/tool call.

    ``index`` is the call's position: the wire ``index`` for OpenAI Chat Completions, the call's order among
    the tool calls (by output index, by content block index) for the Responses API and Anthropic, which number
    output items and content blocks rather than calls. ``id`` is what a tool result refers back to
    (``tool_calls[].id``, the Responses ``call_id``, the Anthropic ``tool_use`` id). ``arguments`` is the
    argument JSON exactly as its fragments concatenate.

    An empty ``arguments`` counts as valid JSON and parses as ``{}``: Anthropic streams a tool that takes no
    arguments as a ``tool_use`` block whose ``input_json_delta`` pieces add up to ``""`` (its ``input`` is
    ``{}``), and OpenAI can send ``""`` for a call without parameters. Whitespace alone is not valid.
    """

    index: int
    id: str
    name: str
    arguments: str

    @property
    def valid_json(self) -> bool:
        """Whether ``arguments`` parse as JSON (``""`` counts as ``{}``)."""
        return _parse_arguments(self.arguments)[1]

    @property
    def parsed(self) -> Any:
        """The parsed arguments (``{}`` for ``""``), or ``None`` when they are not valid JSON."""
        return _parse_arguments(self.arguments)[0]

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "arguments": self.arguments, "valid_json": self.valid_json}


def _parse_arguments(arguments: str) -> tuple[Any, bool]:
    if arguments == "":
        return {}, True
    try:
        return json.loads(arguments), True
    except (ValueError, RecursionError):
        return None, False


@dataclass
class Assembly:
    """Everything assembled from one response. See the package docstring for each provider's sources.

    ``terminal``: the provider's end marker was seen (Chat Completions ``data: [DONE]``, Anthropic
    ``message_stop``, Responses ``response.completed`` / ``.failed`` / ``.incomplete``; for a JSON body, a
    complete response object). ``errors``: errors the provider reported, as ``"type: message"``.
    ``problems``: malformed input the assembler skipped (invalid JSON, fields of the wrong type, data after
    ``[DONE]``, ``.done`` values that disagree with their deltas); never raised. ``first_token_t_ns``: time
    of the first event that carried content (text, refusal, thinking or a tool-call piece);
    ``content_events`` counts those events, ``events`` every SSE event (both 0 for a JSON body).
    """

    provider: str
    text: str = ""
    refusal: str = ""
    thinking: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    terminal: bool = False
    errors: list[str] = field(default_factory=list)
    first_token_t_ns: int | None = None
    content_events: int = 0
    events: int = 0
    model: str | None = None
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; tool calls as ``ToolCall.as_dict()``."""
        out = asdict(self)
        out["tool_calls"] = [call.as_dict() for call in self.tool_calls]
        return out


class Builder:
    """The fields every assembler fills the same way: counters, timing, errors, problems, the stop facts."""

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.events = 0
        self.content_events = 0
        self.first_token_t_ns: int | None = None
        self.finish_reason: str | None = None
        self.usage: dict[str, Any] | None = None
        self.terminal = False
        self.model: str | None = None
        self._errors: list[str] = []
        self._problems: list[str] = []
        self._dropped_errors = 0
        self._dropped_problems = 0

    def content(self, t_ns: int) -> None:
        """The current event carried content: count it, and keep the first one's time."""
        self.content_events += 1
        if self.first_token_t_ns is None:
            self.first_token_t_ns = t_ns

    def error(self, kind: object, message: object) -> None:
        kind = kind if isinstance(kind, str) and kind else "error"
        text = message if isinstance(message, str) and message else "(no message)"
        if len(self._errors) < MAX_NOTES:
            self._errors.append(f"{kind}: {text}")
        else:
            self._dropped_errors += 1

    def event_object(self, data: str, *, report: bool = True) -> dict[str, Any] | None:
        """An event's data as a JSON object; None (and a problem noted, if ``report``) when it is not one."""
        value, why = j.load(data)
        if why is not None:
            if report:
                self.problem(f"event {self.events}: invalid JSON ({why}): {j.excerpt(data)}")
            return None
        if not isinstance(value, dict):
            if report:
                self.problem(f"event {self.events}: JSON is a {type(value).__name__}, not an object")
            return None
        return value

    def problem(self, message: str) -> None:
        if len(self._problems) < MAX_NOTES:
            self._problems.append(message)
        else:
            self._dropped_problems += 1

    def set_model(self, model: object) -> None:
        if self.model is None and isinstance(model, str) and model:
            self.model = model

    def result(self, *, notes: tuple[str, ...] = (), **fields: Any) -> Assembly:
        """The assembly so far (callable again after more events); ``notes`` are problems seen only now."""
        errors = list(self._errors)
        if self._dropped_errors:
            errors.append(f"streamtape: {self._dropped_errors} more errors not listed")
        problems = [*self._problems, *notes]
        if self._dropped_problems:
            problems.append(f"{self._dropped_problems} more problems not listed")
        return Assembly(
            provider=self.provider,
            finish_reason=self.finish_reason,
            usage=self.usage,
            terminal=self.terminal,
            errors=errors,
            first_token_t_ns=self.first_token_t_ns,
            content_events=self.content_events,
            events=self.events,
            model=self.model,
            problems=problems,
            **fields,
        )


#: How many pieces a ``Pieces`` gathers before it joins them.
JOIN_EVERY = 1024


class Pieces(list[str]):
    """Text assembled from many small pieces (a token or so each), held as one string and the pieces that
    came since it last grew. Why: a str object a piece costs ~50 bytes besides its characters, so a long
    stream's pieces would cost many times its text; joined, the text costs its characters (about once: it
    grows in place, and ``text()`` does not copy it again). The hot loops call the list's own ``append``
    and join when there are ``JOIN_EVERY`` pieces (``compact()``, or after a batch); elsewhere ``add``."""

    __slots__ = ()

    def add(self, piece: str) -> None:
        """Append ``piece``, joining the pieces once there are many."""
        self.append(piece)
        if len(self) >= JOIN_EVERY:
            self.text()

    def compact(self) -> None:
        """Join the pieces if there are many."""
        if len(self) >= JOIN_EVERY:
            self.text()

    def text(self) -> str:
        """The whole text: the pieces joined, in place (pieces added later are joined to it)."""
        if len(self) > 1:
            text = self[0]
            self[0] = ""  # ``text`` is then its only reference, and CPython grows it in place
            text += "".join(self[1:])
            del self[1:]
            self[0] = text
        return self[0] if self else ""


@dataclass
class CallBuffer:
    """A tool call being assembled: the header fields, and the argument fragments."""

    id: str = ""
    name: str = ""
    pieces: Pieces = field(default_factory=Pieces)

    @property
    def arguments(self) -> str:
        return self.pieces.text()

    def replace(self, arguments: str) -> bool:
        """Set the arguments to a final value; whether it differed from the fragments."""
        differed = arguments != self.arguments
        self.pieces = Pieces([arguments])
        return differed
