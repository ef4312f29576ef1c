"""OpenAI Chat Completions: assembling ``chat.completion.chunk`` events, or one ``chat.completion`` body.

Follows the installed SDK: the chunk type ``openai/types/chat/chat_completion_chunk.py`` (``choices[]`` with
``index``, ``delta.content``, ``delta.refusal``, ``delta.tool_calls[]`` with ``index``, ``id``,
``function.name``, ``function.arguments``; ``finish_reason``; ``usage`` on the last chunk when
``stream_options.include_usage`` is set, with ``choices: []``), the reader ``openai/_streaming.py`` (data
events without an ``event:`` line, ``[DONE]`` ends the stream, a JSON ``error`` object is an error), the
SDK's accumulator ``openai/lib/streaming/chat/_completions.py``, and for the plain body
``openai/types/chat/chat_completion.py`` and ``chat_completion_message.py``.

Only the choice with ``index`` 0 (or no index) is assembled: ``n > 1`` streams interleave several answers
and the others are skipped. Where the SDK's generic delta merge would concatenate a repeated tool-call
``id`` or ``name``, the first one is kept. ``delta.reasoning_content`` / ``delta.reasoning`` strings, which
OpenAI-compatible servers (DeepSeek, vLLM, OpenRouter) send, are assembled as ``thinking``. Events after
``[DONE]`` are counted but not assembled, as the SDK stops reading there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import msgspec

from . import _json as j
from .assembly import OPENAI_CHAT, Assembly, Builder, CallBuffer, Pieces, ToolCall

_DONE = "[DONE]"


# The fields the assembler reads, typed as the happy path has them: a value of another type fails the
# decode and the event goes through the dict path, which handles (and reports) it. Fewer objects, no dicts;
# gc=False: JSON values hold no cycles, and untracked objects cost the collector nothing.
class _Function(msgspec.Struct, gc=False):
    name: str | None = None
    arguments: str | None = None


class _ToolPiece(msgspec.Struct, gc=False):
    index: int
    id: str | None = None
    function: _Function | None = None


class _Delta(msgspec.Struct, gc=False):
    content: str | None = None
    refusal: str | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None
    tool_calls: list[_ToolPiece] | None = None


class _Choice(msgspec.Struct, gc=False):
    index: int = 0
    finish_reason: str | None = None
    delta: _Delta | None = None


class _Chunk(msgspec.Struct, gc=False):
    usage: dict[str, Any] | None = None
    choices: list[_Choice] | None = None
    error: Any = None


class _FirstChunk(_Chunk, gc=False):
    """A chunk with its model, read until the model is known (not decoding it after saves a string)."""

    model: str | None = None


_decode_chunk = msgspec.json.Decoder(_Chunk).decode
_decode_first_chunk = msgspec.json.Decoder(_FirstChunk).decode


class ChatAssembler:
    """Feed Chat Completions SSE events one by one; ``result()`` at any point."""

    def __init__(self) -> None:
        self._b = Builder(OPENAI_CHAT)
        self._text = Pieces()
        self._refusal = Pieces()
        self._thinking = Pieces()
        self._calls: dict[int, CallBuffer] = {}
        self._after_done = 0

    def feed(self, event: Any) -> None:
        b = self._b
        b.events += 1
        if b.terminal:
            self._after_done += 1
            return
        data = getattr(event, "data", "")
        if not isinstance(data, str):
            b.problem(f"event {b.events}: data is not text")
            return
        if data.startswith(_DONE):  # the SDK's test: `sse.data.startswith("[DONE]")`
            b.terminal = True
            return
        chunk = b.event_object(data)
        if chunk is None:
            return
        if chunk.get("error"):
            b.error(*j.error_kind_and_message(chunk["error"]))
            return
        if self._chunk(chunk):
            b.content(getattr(event, "t_ns", 0))

    def feed_raw(self, names: list[str], datas: list[bytes], time: Callable[[int], int], start: int) -> int:
        """``feed`` for events ``start:`` given as raw data (names unused), decoded into typed structs,
        up to the first that is not a well-typed chunk, or is ``[DONE]``, or comes after it: its index,
        for ``feed`` (``len(datas)`` when all were applied). The fast path's hot loop."""
        b = self._b
        if b.terminal:
            return start
        decode, decode_first = _decode_chunk, _decode_first_chunk
        text, refusal, thinking = self._text.append, self._refusal.append, self._thinking.append
        content = 0
        first = b.first_token_t_ns
        stop = len(datas)
        for i in range(start, stop):
            try:  # [DONE] is not a JSON object either
                chunk = decode(datas[i]) if b.model is not None else decode_first(datas[i])
            except (ValueError, RecursionError):  # msgspec.DecodeError is a ValueError
                stop = i
                break
            if chunk.error:
                b.error(*j.error_kind_and_message(chunk.error))
                continue
            if b.model is None:
                b.set_model(cast("_FirstChunk", chunk).model)
            if chunk.usage is not None:
                b.usage = chunk.usage
            carried = False
            for choice in chunk.choices or ():
                if choice.index != 0:
                    continue
                if choice.finish_reason:
                    b.finish_reason = choice.finish_reason
                delta = choice.delta
                if delta is None:
                    continue
                if delta.content:
                    text(delta.content)
                    carried = True
                if delta.refusal:
                    refusal(delta.refusal)
                    carried = True
                if delta.reasoning_content:
                    thinking(delta.reasoning_content)
                    carried = True
                if delta.reasoning:
                    thinking(delta.reasoning)
                    carried = True
                if delta.tool_calls:
                    self._typed_tools(delta.tool_calls)
                    carried = True
            if carried:
                content += 1
                if first is None:
                    first = time(i)
        b.events += stop - start
        b.content_events += content
        b.first_token_t_ns = first
        self._text.compact()
        self._refusal.compact()
        self._thinking.compact()
        return stop

    def _typed_tools(self, pieces: list[_ToolPiece]) -> None:
        for piece in pieces:
            call = self._calls.setdefault(piece.index, CallBuffer())
            if piece.id and not call.id:
                call.id = piece.id
            function = piece.function
            if function is not None:
                if function.name and not call.name:
                    call.name = function.name
                if function.arguments:
                    call.pieces.add(function.arguments)

    def _chunk(self, chunk: dict[str, Any]) -> bool:
        """Apply one chunk; whether it carried content."""
        b = self._b
        b.set_model(chunk.get("model"))
        if isinstance(chunk.get("usage"), dict):
            b.usage = chunk["usage"]
        choices = chunk.get("choices")
        if choices is None:
            return False
        if not isinstance(choices, list):
            b.problem(f"event {b.events}: choices is a {type(choices).__name__}, not a list")
            return False
        carried = False
        for choice in choices:
            if not isinstance(choice, dict):
                b.problem(f"event {b.events}: a choice is not an object")
                continue
            index = choice.get("index", 0)
            if index != 0 or isinstance(index, bool):
                continue
            finish = choice.get("finish_reason")
            if isinstance(finish, str) and finish:
                b.finish_reason = finish
            delta = choice.get("delta")
            if delta is None:
                continue
            if not isinstance(delta, dict):
                b.problem(f"event {b.events}: delta is not an object")
                continue
            carried |= self._delta(delta)
        return carried

    def _delta(self, delta: dict[str, Any]) -> bool:
        carried = False
        for key, parts in (
            ("content", self._text),
            ("refusal", self._refusal),
            ("reasoning_content", self._thinking),
            ("reasoning", self._thinking),
        ):
            value = delta.get(key)
            if isinstance(value, str):
                if value:
                    parts.add(value)
                    carried = True
            elif value is not None and key in ("content", "refusal"):
                self._b.problem(f"event {self._b.events}: delta.{key} is not a string")
        tool_calls = delta.get("tool_calls")
        if tool_calls is not None and not isinstance(tool_calls, list):
            self._b.problem(f"event {self._b.events}: delta.tool_calls is not a list")
            return carried
        for piece in tool_calls or []:
            carried |= self._tool_piece(piece)
        return carried

    def _tool_piece(self, piece: Any) -> bool:
        b = self._b
        index = j.integer(piece, "index")
        if index is None:
            b.problem(f"event {b.events}: a tool call piece without an integer index")
            return False
        call = self._calls.setdefault(index, CallBuffer())
        call_id = j.text(piece, "id")
        if call_id and not call.id:
            call.id = call_id
        function = j.obj(piece, "function")
        name = j.text(function, "name")
        if name and not call.name:
            call.name = name
        arguments = j.text(function, "arguments")
        if arguments:
            call.pieces.add(arguments)
        return True

    def result(self) -> Assembly:
        notes = (f"{self._after_done} events after [DONE] (not assembled)",) if self._after_done else ()
        tool_calls = [
            ToolCall(index, call.id, call.name, call.arguments) for index, call in sorted(self._calls.items())
        ]
        return self._b.result(
            notes=notes,
            text=self._text.text(),
            refusal=self._refusal.text(),
            thinking=self._thinking.text(),
            tool_calls=tool_calls,
        )


def from_json(body: bytes | str) -> Assembly:
    """A ``chat.completion`` body (``"stream": false``); an ``{"error": ...}`` body fills ``errors``."""
    b = Builder(OPENAI_CHAT)
    completion, why = j.load(body)
    if why is not None or not isinstance(completion, dict):
        b.problem(f"body is not a JSON object: {why or type(completion).__name__}")
        return b.result()
    if completion.get("error"):
        b.error(*j.error_kind_and_message(completion["error"]))
        return b.result()
    b.set_model(completion.get("model"))
    if isinstance(completion.get("usage"), dict):
        b.usage = completion["usage"]
    choices = completion.get("choices")
    b.terminal = isinstance(choices, list)
    if not isinstance(choices, list):
        b.problem("body has no choices list")
        return b.result()
    choice = next((c for c in choices if isinstance(c, dict) and c.get("index", 0) == 0), None)
    message = j.obj(choice, "message")
    finish = j.text(choice, "finish_reason")
    b.finish_reason = finish or None
    calls = []
    for index, call in enumerate(j.items(message, "tool_calls")):
        function = j.obj(call, "function")
        calls.append(
            ToolCall(
                index,
                j.text(call, "id") or "",
                j.text(function, "name") or "",
                j.text(function, "arguments") or "",
            )
        )
    return b.result(
        text=j.text(message, "content") or "",
        refusal=j.text(message, "refusal") or "",
        thinking=j.text(message, "reasoning_content") or j.text(message, "reasoning") or "",
        tool_calls=calls,
    )
