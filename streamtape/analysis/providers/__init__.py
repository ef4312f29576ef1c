"""Provider assemblers: what a client would piece together from a recorded response. Sans-IO.

Events in (``streamtape.sse.Event``: ``.event``, ``.data``, ``.t_ns``), an ``Assembly`` out: the text, the
tool calls, why the model stopped, the usage, whether the provider's terminal marker arrived, the errors it
reported, and when the first content came. No I/O and no clocks; hostile input (invalid JSON, fields of the
wrong type, unknown events, ``[DONE]`` in the middle) never raises: it lands in ``Assembly.problems`` or
``Assembly.errors``.

>>> from streamtape.sse import decode
>>> events, _ = decode([(c.t_ns, c.data) for c in exchange.chunks])
>>> provider = detect(exchange.request.url, exchange.request.body, "text/event-stream", events)
>>> assembly = assemble_events(provider, events)
>>> assembly.terminal, assembly.finish_reason, [c.name for c in assembly.tool_calls]
(True, 'tool_calls', ['get_weather'])

One module per wire format, each with an incremental assembler (``feed(event)``, ``result()``) and
``from_json(body)`` for the ``"stream": false`` answer: ``openai_chat`` (Chat Completions),
``openai_responses`` (Responses API), ``anthropic`` (Messages). Bodies must be content-decoded first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

from . import anthropic, openai_chat, openai_responses
from .assembly import ANTHROPIC, OPENAI_CHAT, OPENAI_RESPONSES, UNKNOWN, Assembly, Builder, ToolCall
from .detect import detect

__all__ = [
    "ANTHROPIC",
    "OPENAI_CHAT",
    "OPENAI_RESPONSES",
    "PROVIDERS",
    "UNKNOWN",
    "Assembler",
    "Assembly",
    "ToolCall",
    "assemble_events",
    "assemble_json",
    "detect",
    "new_assembler",
]


class Assembler(Protocol):
    """``feed`` events, ``result()`` at any point.

    ``feed_raw`` is the fast path's (``analysis.fastpath``): the same as ``feed`` for the events from
    ``start`` on, given as parallel lists of names and raw UTF-8 data, and ``time(i)`` for event ``i``'s
    time (looked up on demand), up to the first one it leaves to ``feed``, whose index it returns
    (``len(datas)`` when it applied them all).
    """

    def feed(self, event: Any) -> None: ...
    def feed_raw(
        self, names: list[str], datas: list[bytes], time: Callable[[int], int], start: int
    ) -> int: ...
    def result(self) -> Assembly: ...


class _Counter:
    """The assembler for an unknown format: it only counts events."""

    def __init__(self) -> None:
        self._b = Builder(UNKNOWN)

    def feed(self, event: Any) -> None:
        self._b.events += 1

    def feed_raw(self, names: list[str], datas: list[bytes], time: Callable[[int], int], start: int) -> int:
        self._b.events += len(datas) - start
        return len(datas)

    def result(self) -> Assembly:
        return self._b.result()


_ASSEMBLERS: dict[str, Callable[[], Assembler]] = {
    OPENAI_CHAT: openai_chat.ChatAssembler,
    OPENAI_RESPONSES: openai_responses.ResponsesAssembler,
    ANTHROPIC: anthropic.MessagesAssembler,
    UNKNOWN: _Counter,
}
_FROM_JSON: dict[str, Callable[[bytes | str], Assembly]] = {
    OPENAI_CHAT: openai_chat.from_json,
    OPENAI_RESPONSES: openai_responses.from_json,
    ANTHROPIC: anthropic.from_json,
}

#: The provider names ``detect`` returns, ``"unknown"`` included.
PROVIDERS = tuple(_ASSEMBLERS)


def _check(provider: str) -> None:
    if provider not in _ASSEMBLERS:
        raise ValueError(f"unknown provider {provider!r}; expected one of {', '.join(PROVIDERS)}")


def new_assembler(provider: str) -> Assembler:
    """A fresh incremental assembler for ``provider`` (``ValueError`` for a name not in ``PROVIDERS``)."""
    _check(provider)
    return _ASSEMBLERS[provider]()


def assemble_events(provider: str, events: Iterable[Any]) -> Assembly:
    """Assemble a whole stream of SSE events (``streamtape.sse.Event``) in the ``provider``'s format."""
    state = new_assembler(provider)
    for event in events:
        state.feed(event)
    return state.result()


def assemble_json(provider: str, body: bytes | str) -> Assembly:
    """Assemble a non-streaming JSON response (``chat.completion``, ``response``, ``message``) or error body.

    ``terminal`` is true when the body is a complete response object; ``events`` and ``content_events`` are 0
    and ``first_token_t_ns`` is None. For ``"unknown"``, an empty assembly.
    """
    _check(provider)
    if provider == UNKNOWN:
        return Builder(UNKNOWN).result()
    return _FROM_JSON[provider](body)
