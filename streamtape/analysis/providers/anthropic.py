"""Anthropic Messages: assembling the raw message stream events, or one ``message`` body.

Follows the installed SDK: the event union ``anthropic/types/raw_message_stream_event.py`` and beside it
``raw_message_start_event.py`` (the message with its ``model`` and ``usage``), ``raw_content_block_start_event.py``
(``text``, ``thinking``, ``tool_use`` / ``server_tool_use`` blocks with ``id`` and ``name``),
``raw_content_block_delta_event.py`` (``text_delta.py``, ``input_json_delta.py`` with ``partial_json``,
``thinking_delta.py``, ``signature_delta.py``), ``raw_message_delta_event.py`` (``stop_reason``, and
``message_delta_usage.py``: cumulative counts that overwrite the ``message_start`` ones when present),
``raw_message_stop_event.py``; the reader ``anthropic/_streaming.py`` (``ping`` skipped, ``event: error``
raised), the SDK's accumulator ``anthropic/lib/streaming/_messages.py``, and ``message.py`` for the body.

Text and thinking blocks are joined in block index order (``get_final_text()`` joins text blocks the same
way). Tool calls are ``tool_use`` and ``server_tool_use`` blocks, the ones whose input the SDK streams; their
``arguments`` are the ``partial_json`` pieces joined, which is ``""`` for a tool without arguments (see
``ToolCall``). Signature and citation deltas carry no text and are ignored. From a JSON body, a tool call's
arguments are its ``input`` re-serialised compactly (``{}`` for no arguments).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import msgspec

from . import _json as j
from .assembly import ANTHROPIC, JOIN_EVERY, Assembly, Builder, CallBuffer, Pieces, ToolCall

_TOOL_BLOCKS = ("tool_use", "server_tool_use")
# delta type -> (the block kind it belongs to, the field holding its piece)
_DELTAS = {
    "text_delta": ("text", "text"),
    "thinking_delta": ("thinking", "thinking"),
    "input_json_delta": ("tool", "partial_json"),
}


# A content_block_delta as the happy path has it, tagged by its types (checked without building strings):
# another type, a missing field or a value of another type fails the decode and the event goes through the
# dict path, which handles (and reports) it. gc=False: JSON values hold no cycles.
class _TextDelta(msgspec.Struct, tag_field="type", tag="text_delta", gc=False):
    kind: ClassVar[str] = "text"
    piece: str = msgspec.field(name="text")


class _ThinkingDelta(msgspec.Struct, tag_field="type", tag="thinking_delta", gc=False):
    kind: ClassVar[str] = "thinking"
    piece: str = msgspec.field(name="thinking")


class _JsonDelta(msgspec.Struct, tag_field="type", tag="input_json_delta", gc=False):
    kind: ClassVar[str] = "tool"
    piece: str = msgspec.field(name="partial_json")


class _BlockDelta(msgspec.Struct, tag_field="type", tag="content_block_delta", gc=False):
    index: int
    delta: _TextDelta | _ThinkingDelta | _JsonDelta


_decode_block_delta = msgspec.json.Decoder(_BlockDelta).decode


@dataclass
class _Block:
    kind: str  # text, thinking, tool, or the block type of anything else
    pieces: Pieces = field(default_factory=Pieces)
    call: CallBuffer | None = None
    start_input: Any = None


class MessagesAssembler:
    """Feed Anthropic Messages SSE events one by one; ``result()`` at any point."""

    def __init__(self) -> None:
        self._b = Builder(ANTHROPIC)
        self._blocks: dict[int, _Block] = {}

    def feed(self, event: Any) -> None:
        b = self._b
        b.events += 1
        name = getattr(event, "event", "")
        data = getattr(event, "data", "")
        if not isinstance(data, str):
            b.problem(f"event {b.events}: data is not text")
            return
        body = b.event_object(data, report=name != "error")
        if body is None:
            if name == "error":
                b.error("error", data)  # the SDK raises with the raw data as the message
            return
        kind = "error" if name == "error" else j.text(body, "type") or name
        if self._event(kind, body):
            b.content(getattr(event, "t_ns", 0))

    def feed_raw(self, names: list[str], datas: list[bytes], time: Callable[[int], int], start: int) -> int:
        """``feed`` for events ``start:`` given as raw data, the text, thinking and tool-input deltas decoded
        into typed structs, up to the first other event, or one for a block that did not start as its kind:
        its index, for ``feed`` (``len(datas)`` when all were applied). The fast path's hot loop."""
        b, blocks, decode = self._b, self._blocks, _decode_block_delta
        content = 0
        first = b.first_token_t_ns
        stop = len(datas)
        for i in range(start, stop):
            if names[i] != "content_block_delta":
                stop = i
                break
            try:
                body = decode(datas[i])
            except (ValueError, RecursionError):  # msgspec.DecodeError is a ValueError
                stop = i
                break
            delta, block = body.delta, blocks.get(body.index)
            if block is None or block.kind != delta.kind:
                stop = i  # feed reports it as a problem
                break
            piece = delta.piece
            pieces = block.call.pieces if block.call is not None else block.pieces
            pieces.append(piece)
            if len(pieces) >= JOIN_EVERY:
                pieces.text()
            if piece or block.call is not None:
                content += 1
                if first is None:
                    first = time(i)
        b.events += stop - start
        b.content_events += content
        b.first_token_t_ns = first
        return stop

    def _event(self, kind: str, body: dict[str, Any]) -> bool:
        """Apply one event; whether it carried content."""
        b = self._b
        if kind == "content_block_delta":
            return self._delta(body)
        if kind == "content_block_start":
            return self._start(body)
        if kind == "message_start":
            message = j.obj(body, "message")
            b.set_model(j.text(message, "model"))
            usage = j.obj(message, "usage")
            if usage is not None:
                b.usage = dict(usage)
        elif kind == "message_delta":
            stop_reason = j.text(j.obj(body, "delta"), "stop_reason")
            if stop_reason:
                b.finish_reason = stop_reason
            usage = j.obj(body, "usage")
            if usage is not None:
                b.usage = {**(b.usage or {}), **{k: v for k, v in usage.items() if v is not None}}
        elif kind == "message_stop":
            b.terminal = True
        elif kind == "error":
            b.error(*j.error_kind_and_message(body.get("error")))
        return False  # ping, content_block_stop and unknown types carry nothing assembled here

    def _start(self, body: dict[str, Any]) -> bool:
        b = self._b
        index, block = j.integer(body, "index"), j.obj(body, "content_block")
        if index is None or block is None:
            b.problem(f"event {b.events}: content_block_start without an index or a content_block")
            return False
        if index in self._blocks:
            b.problem(f"event {b.events}: content block {index} started twice")
        block_type = j.text(block, "type") or ""
        if block_type in _TOOL_BLOCKS:
            call = CallBuffer(j.text(block, "id") or "", j.text(block, "name") or "")
            self._blocks[index] = _Block("tool", call=call, start_input=block.get("input"))
            return True
        initial = j.text(block, block_type) if block_type in ("text", "thinking") else None
        self._blocks[index] = _Block(block_type, Pieces([initial] if initial else []))
        return bool(initial)

    def _delta(self, body: dict[str, Any]) -> bool:
        delta = j.obj(body, "delta")
        delta_type = j.text(delta, "type") or ""
        spec = _DELTAS.get(delta_type)
        piece = j.text(delta, spec[1]) if spec is not None else None
        return self._apply_delta(j.integer(body, "index"), delta is not None, delta_type, piece)

    def _apply_delta(self, index: int | None, has_delta: bool, delta_type: str, piece: str | None) -> bool:
        """Apply one delta (from a dict or a typed struct); whether it carried content."""
        b = self._b
        if index is None or not has_delta:
            b.problem(f"event {b.events}: content_block_delta without an index or a delta")
            return False
        if delta_type not in _DELTAS:
            return False  # signature_delta, citations_delta, and types newer than this code
        kind, key = _DELTAS[delta_type]
        if piece is None:
            b.problem(f"event {b.events}: {delta_type} without a string {key}")
            return False
        block = self._blocks.get(index)
        if block is None:  # keep the piece rather than lose it
            b.problem(f"event {b.events}: {delta_type} for block {index}, which never started")
            block = self._blocks[index] = _Block(kind, call=CallBuffer() if kind == "tool" else None)
        if block.kind != kind:
            b.problem(f"event {b.events}: {delta_type} for a {block.kind} block (ignored)")
            return False
        (block.call.pieces if block.call is not None else block.pieces).add(piece)
        return kind == "tool" or piece != ""

    def result(self) -> Assembly:
        ordered = [block for _, block in sorted(self._blocks.items())]
        calls: list[ToolCall] = []
        for block in ordered:
            if block.call is None:
                continue
            arguments = block.call.arguments
            if not block.call.pieces and isinstance(block.start_input, dict) and block.start_input:
                arguments = _dumps(block.start_input)  # input given whole at the start, never streamed
            calls.append(ToolCall(len(calls), block.call.id, block.call.name, arguments))
        return self._b.result(
            text="".join([block.pieces.text() for block in ordered if block.kind == "text"]),
            thinking="".join([block.pieces.text() for block in ordered if block.kind == "thinking"]),
            tool_calls=calls,
        )


def _dumps(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    except (ValueError, RecursionError):
        return ""


def from_json(body: bytes | str) -> Assembly:
    """A ``message`` body (``"stream": false``); a ``{"type": "error", ...}`` body fills ``errors``."""
    b = Builder(ANTHROPIC)
    message, why = j.load(body)
    if why is not None or not isinstance(message, dict):
        b.problem(f"body is not a JSON object: {why or type(message).__name__}")
        return b.result()
    if message.get("type") == "error" or (message.get("error") and message.get("type") != "message"):
        b.error(*j.error_kind_and_message(message.get("error")))
        return b.result()
    b.terminal = message.get("type") == "message"
    if not b.terminal:
        b.problem("body is not a message object")
    b.set_model(j.text(message, "model"))
    b.finish_reason = j.text(message, "stop_reason") or None
    usage = j.obj(message, "usage")
    b.usage = dict(usage) if usage is not None else None
    text: list[str] = []
    thinking: list[str] = []
    calls: list[ToolCall] = []
    for block in j.items(message, "content"):
        kind = j.text(block, "type")
        if kind == "text":
            text.append(j.text(block, "text") or "")
        elif kind == "thinking":
            thinking.append(j.text(block, "thinking") or "")
        elif kind in _TOOL_BLOCKS:
            arguments = _dumps(block["input"]) if "input" in block else ""
            calls.append(
                ToolCall(len(calls), j.text(block, "id") or "", j.text(block, "name") or "", arguments)
            )
    return b.result(text="".join(text), thinking="".join(thinking), tool_calls=calls)
