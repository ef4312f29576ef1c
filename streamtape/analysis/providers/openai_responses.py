"""OpenAI Responses API: assembling ``response.*`` stream events, or one ``response`` object.

Follows the installed SDK: the event union ``openai/types/responses/response_stream_event.py`` and the files
it names (``response_output_item_added_event.py``, ``response_text_delta_event.py``,
``response_text_done_event.py``, ``response_refusal_delta_event.py``,
``response_reasoning_text_delta_event.py``, ``response_reasoning_summary_text_delta_event.py``,
``response_function_call_arguments_delta_event.py`` / ``_done_event.py``, ``response_completed_event.py``,
``response_failed_event.py``, ``response_incomplete_event.py``, ``response_error_event.py``), the object in
``response.py`` (``status``, ``error``, ``incomplete_details``, ``usage``, ``output``), the items
``response_output_message.py``, ``response_function_tool_call.py``, ``response_reasoning_item.py``, and the
SDK's accumulator ``openai/lib/streaming/responses/_responses.py``.

Deltas are keyed by ``output_index`` (or by ``item_id`` when the index is missing) and ``content_index``, and
joined in that order, like ``Response.output_text``. A ``.done`` event states the final value of its part:
it replaces what the deltas built, and a disagreement is noted in ``problems``. ``finish_reason`` is the
final response's ``status`` (``completed``, ``failed``, ``incomplete``), or for an incomplete response its
``incomplete_details.reason`` (``max_output_tokens``, ``content_filter``) when given. A tool call's ``id``
is its ``call_id``, the id a ``function_call_output`` refers to.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from . import _json as j
from .assembly import JOIN_EVERY, OPENAI_RESPONSES, Assembly, Builder, CallBuffer, Pieces, ToolCall

_TERMINAL = {
    "response.completed": "completed",
    "response.failed": "failed",
    "response.incomplete": "incomplete",
}
_FINAL_STATUSES = ("completed", "failed", "incomplete", "cancelled")

# delta event -> (which text, the event's field holding the piece, the field numbering parts in the item)
_DELTAS = {
    "response.output_text.delta": ("text", "delta", "content_index"),
    "response.refusal.delta": ("refusal", "delta", "content_index"),
    "response.reasoning_text.delta": ("thinking", "delta", "content_index"),
    "response.reasoning_summary_text.delta": ("summary", "delta", "summary_index"),
}
_DONES = {
    "response.output_text.done": ("text", "text", "content_index"),
    "response.refusal.done": ("refusal", "refusal", "content_index"),
    "response.reasoning_text.done": ("thinking", "text", "content_index"),
    "response.reasoning_summary_text.done": ("summary", "text", "summary_index"),
}

_ARGUMENTS_DELTA = "response.function_call_arguments.delta"
_HOT = frozenset([*_DELTAS, _ARGUMENTS_DELTA])


# A delta event's fields, typed as the happy path has them: a value of another type fails the decode and
# the event goes through the dict path, which handles (and reports) it.
class _TypedDelta(msgspec.Struct, gc=False):
    type: str | None = None
    output_index: int | None = None
    item_id: str | None = None
    content_index: int | None = None
    summary_index: int | None = None
    delta: str | None = None


_decode_delta = msgspec.json.Decoder(_TypedDelta).decode


class ResponsesAssembler:
    """Feed Responses API SSE events one by one; ``result()`` at any point."""

    def __init__(self) -> None:
        self._b = Builder(OPENAI_RESPONSES)
        # (which, output_index, part index) -> pieces; which is text / refusal / thinking / summary
        self._parts: dict[tuple[str, int, int], Pieces] = {}
        self._calls: dict[int, CallBuffer] = {}
        self._item_index: dict[str, int] = {}

    def feed(self, event: Any) -> None:
        b = self._b
        b.events += 1
        data = getattr(event, "data", "")
        if not isinstance(data, str):
            b.problem(f"event {b.events}: data is not text")
            return
        body = b.event_object(data)
        if body is None:
            return
        kind = j.text(body, "type") or str(getattr(event, "event", ""))
        if self._event(kind, body):
            b.content(getattr(event, "t_ns", 0))

    def feed_raw(self, names: list[str], datas: list[bytes], time: Callable[[int], int], start: int) -> int:
        """``feed`` for events ``start:`` given as raw data, the delta events decoded into a typed struct,
        up to the first other event, or one that is not a well-typed delta with its output index: its
        index, for ``feed`` (``len(datas)`` when all were applied). The fast path's hot loop."""
        b, parts, calls, item_index = self._b, self._parts, self._calls, self._item_index
        decode = _decode_delta
        content = 0
        first = b.first_token_t_ns
        stop = len(datas)
        for i in range(start, stop):
            if names[i] not in _HOT:
                stop = i
                break
            try:
                body = decode(datas[i])
            except (ValueError, RecursionError):  # msgspec.DecodeError is a ValueError
                stop = i
                break
            kind, piece, where = body.type or names[i], body.delta, body.output_index
            if where is None:
                where = item_index.get(body.item_id or "")
            if piece is None or where is None or kind not in _HOT:
                stop = i  # not a delta after all, or one feed reports as a problem
                break
            if kind == _ARGUMENTS_DELTA:
                call = calls.get(where)
                if call is None:
                    stop = i
                    break
                pieces = call.pieces
            else:
                which, _, part_field = _DELTAS[kind]
                part = body.summary_index if part_field == "summary_index" else body.content_index
                key = (which, where, part or 0)
                found = parts.get(key)
                if found is None:
                    found = parts[key] = Pieces()
                pieces = found
            pieces.append(piece)
            if len(pieces) >= JOIN_EVERY:
                pieces.text()
            if not piece and kind != _ARGUMENTS_DELTA:
                continue  # an empty text delta carries no content (an empty arguments delta does)
            content += 1
            if first is None:
                first = time(i)
        b.events += stop - start
        b.content_events += content
        b.first_token_t_ns = first
        return stop

    def _text_delta(self, kind: str, piece: str | None, where: int | None, part: int | None) -> bool:
        which, field, _ = _DELTAS[kind]
        if piece is None or where is None:
            self._b.problem(f"event {self._b.events}: {kind} without a string {field} or an output index")
            return False
        self._parts.setdefault((which, where, part or 0), Pieces()).add(piece)
        return piece != ""

    def _arguments_delta(self, kind: str, piece: str | None, where: int | None) -> bool:
        if piece is None or where is None:
            self._b.problem(f"event {self._b.events}: {kind} without a string delta or an output index")
            return False
        self._call(where).pieces.add(piece)
        return True

    def _event(self, kind: str, body: dict[str, Any]) -> bool:
        """Apply one event; whether it carried content."""
        b = self._b
        if kind in _DELTAS:
            field, part = _DELTAS[kind][1:]
            return self._text_delta(kind, j.text(body, field), self._where(body), j.integer(body, part))
        if kind in _DONES:
            which, field, part = _DONES[kind]
            final, where = j.text(body, field), self._where(body)
            if final is not None and where is not None:
                key = (which, where, j.integer(body, part) or 0)
                current = self._parts.get(key)
                if (current.text() if current is not None else "") != final:
                    if key in self._parts:
                        b.problem(
                            f"event {b.events}: {kind} differs from its deltas (the .done text is kept)"
                        )
                    self._parts[key] = Pieces([final])
            return False
        if kind == _ARGUMENTS_DELTA:
            return self._arguments_delta(kind, j.text(body, "delta"), self._where(body))
        if kind == "response.function_call_arguments.done":
            final, where = j.text(body, "arguments"), self._where(body)
            if final is not None and where is not None:
                self._final_arguments(where, final, kind)
            return False
        if kind in ("response.output_item.added", "response.output_item.done"):
            return self._item(kind, body)
        if kind in ("response.created", "response.in_progress", "response.queued"):
            b.set_model(j.text(j.obj(body, "response"), "model"))
            return False
        if kind in _TERMINAL:
            b.terminal = True
            self._final(j.obj(body, "response"), _TERMINAL[kind])
            return False
        if kind == "error":  # flat in the SDK's type; seen nested as {"error": {...}} on the wire too
            error = j.obj(body, "error") or body
            b.error(j.text(error, "code") or j.text(error, "type"), j.text(error, "message"))
            return False
        return False  # the many other event types carry nothing assembled here

    def _where(self, body: dict[str, Any]) -> int | None:
        index = j.integer(body, "output_index")
        if index is None:
            index = self._item_index.get(j.text(body, "item_id") or "")
        return index

    def _call(self, where: int) -> CallBuffer:
        if where not in self._calls:
            self._b.problem(
                f"event {self._b.events}: arguments for output {where} before its output_item.added"
            )
        return self._calls.setdefault(where, CallBuffer())

    def _final_arguments(self, where: int, final: str, kind: str) -> None:
        call = self._call(where)
        if call.pieces and final != call.arguments:
            self._b.problem(
                f"event {self._b.events}: {kind} differs from its deltas (the .done value is kept)"
            )
        call.replace(final)

    def _item(self, kind: str, body: dict[str, Any]) -> bool:
        item, where = j.obj(body, "item"), j.integer(body, "output_index")
        if item is None or where is None:
            self._b.problem(f"event {self._b.events}: {kind} without an item or an output index")
            return False
        item_id = j.text(item, "id")
        if item_id:
            self._item_index[item_id] = where
        if j.text(item, "type") != "function_call":
            return False
        added = kind == "response.output_item.added"
        if added and where in self._calls:
            self._b.problem(f"event {self._b.events}: output index {where} added twice")
        call = self._calls.setdefault(where, CallBuffer())
        call.id = call.id or j.text(item, "call_id") or ""
        call.name = call.name or j.text(item, "name") or ""
        arguments = j.text(item, "arguments")
        if arguments:  # added: usually ""; done: the final arguments
            self._final_arguments(where, arguments, kind)
        return added

    def _final(self, response: dict[str, Any] | None, default_status: str) -> None:
        b = self._b
        if response is None:
            b.finish_reason = default_status
            return
        b.set_model(j.text(response, "model"))
        b.finish_reason = _finish_reason(response) or default_status
        if isinstance(response.get("usage"), dict):
            b.usage = response["usage"]
        if response.get("error"):
            b.error(*j.error_kind_and_message(response["error"]))

    def result(self) -> Assembly:
        texts: dict[str, list[str]] = {"text": [], "refusal": [], "thinking": [], "summary": []}
        for (which, _, _), pieces in sorted(self._parts.items(), key=lambda kv: kv[0][1:]):
            texts[which].append(pieces.text())
        calls = [
            ToolCall(n, call.id, call.name, call.arguments)
            for n, (_, call) in enumerate(sorted(self._calls.items()))
        ]
        return self._b.result(
            text="".join(texts["text"]),
            refusal="".join(texts["refusal"]),
            thinking="".join(texts["summary"] + texts["thinking"]),
            tool_calls=calls,
        )


def _finish_reason(response: dict[str, Any]) -> str | None:
    status = j.text(response, "status")
    reason = j.text(j.obj(response, "incomplete_details"), "reason")
    return reason if status == "incomplete" and reason else status


def from_json(body: bytes | str) -> Assembly:
    """A ``response`` object (``"stream": false``); an ``{"error": ...}`` body fills ``errors``."""
    b = Builder(OPENAI_RESPONSES)
    response, why = j.load(body)
    if why is not None or not isinstance(response, dict):
        b.problem(f"body is not a JSON object: {why or type(response).__name__}")
        return b.result()
    if response.get("object") != "response" and "output" not in response:
        if response.get("error"):
            b.error(*j.error_kind_and_message(response["error"]))
        else:
            b.problem("body is not a response object")
        return b.result()
    b.set_model(j.text(response, "model"))
    b.finish_reason = _finish_reason(response)
    b.terminal = b.finish_reason is not None and j.text(response, "status") in _FINAL_STATUSES
    if isinstance(response.get("usage"), dict):
        b.usage = response["usage"]
    if response.get("error"):
        b.error(*j.error_kind_and_message(response["error"]))
    text: list[str] = []
    refusal: list[str] = []
    thinking: list[str] = []
    calls: list[ToolCall] = []
    for item in j.items(response, "output"):
        kind = j.text(item, "type")
        if kind == "message":
            for part in j.items(item, "content"):
                part_type = j.text(part, "type")
                if part_type == "output_text":
                    text.append(j.text(part, "text") or "")
                elif part_type == "refusal":
                    refusal.append(j.text(part, "refusal") or "")
        elif kind == "function_call":
            calls.append(
                ToolCall(
                    len(calls),
                    j.text(item, "call_id") or "",
                    j.text(item, "name") or "",
                    j.text(item, "arguments") or "",
                )
            )
        elif kind == "reasoning":
            thinking.extend(j.text(part, "text") or "" for part in j.items(item, "summary"))
            thinking.extend(j.text(part, "text") or "" for part in j.items(item, "content"))
    return b.result(
        text="".join(text), refusal="".join(refusal), thinking="".join(thinking), tool_calls=calls
    )
