"""A tape becomes rows, one per exchange, and the Parquet schema they are written with. Sans-IO.

A tape is read for the index in one pass that holds no body (``analysis.outline``): a worker's memory grows
with the assembled text of one tape, whatever the tapes' sizes.

The columns are in ``COLUMNS`` and nowhere else; ``arrow_schema()`` turns them into a pyarrow schema
(pyarrow is imported only there). Exchanges are numbered as ``streamtape info`` numbers them (their index
in ``tape.exchanges``, across segments), so a row's ``tape`` and ``exchange`` are what ``-x N`` takes.

Token usage is normalized across providers: ``input_tokens`` is every prompt token the provider processed
(OpenAI Chat ``prompt_tokens``, which include cached ones; OpenAI Responses ``input_tokens``; Anthropic
``input_tokens`` plus its cache-creation and cache-read tokens, which Anthropic counts apart), and
``output_tokens`` is OpenAI Chat ``completion_tokens`` or ``output_tokens``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import msgspec

from ..analysis.outline import Outline, TapeOutline

#: Every column of the index, in order, with its type: the one place the schema is written down.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("tape", "string"),  # the tape's path (absolute) or URL
    ("segment", "int32"),  # the recording session in the tape (0 for the first)
    ("exchange", "int32"),  # the exchange's number as `streamtape info` shows it
    ("started_at", "timestamp"),  # UTC wall-clock time of the request: segment start + request time
    ("method", "string"),
    ("host", "string"),  # the URL's host[:port]
    ("path", "string"),  # the URL's path, without the query
    ("provider", "string"),  # openai-chat, openai-responses, anthropic, unknown
    ("model", "string"),  # the model that answered, else the model the request asked for
    ("status", "int32"),  # None: no response head
    ("outcome", "string"),  # complete, error, client_closed, incomplete
    ("verdict", "string"),  # complete, truncated, error
    ("error_type", "string"),  # the exception's class when outcome is error
    ("chunks", "int64"),
    ("bytes", "int64"),  # response body bytes as received
    ("ttfb_ms", "float64"),  # first chunk, from the request
    ("ttft_ms", "float64"),  # first token, from the request
    ("duration_ms", "float64"),  # request to end
    ("longest_gap_ms", "float64"),
    ("finish_reason", "string"),
    ("hazards", "list<string>"),
    ("input_tokens", "int64"),
    ("output_tokens", "int64"),
    ("tape_incomplete", "bool"),  # the tape was cut short or lost frames
    ("damaged", "bool"),  # the recorder lost records of this exchange
)
NAMES: tuple[str, ...] = tuple(name for name, _ in COLUMNS)
_EPOCH = datetime.fromtimestamp(0, UTC)


def arrow_schema() -> Any:
    """``COLUMNS`` as a ``pyarrow.Schema`` (needs the ``fleet`` extra)."""
    import pyarrow as pa

    kinds = {
        "string": pa.string(),
        "int32": pa.int32(),
        "int64": pa.int64(),
        "float64": pa.float64(),
        "bool": pa.bool_(),
        "timestamp": pa.timestamp("us", tz="UTC"),
        "list<string>": pa.list_(pa.string()),
    }
    return pa.schema([pa.field(name, kinds[kind]) for name, kind in COLUMNS])


class _AskedModel(msgspec.Struct):
    model: str | None = None


def _asked_model(body: bytes) -> str | None:
    """The ``model`` a JSON request body asks for, or None."""
    if body.lstrip()[:1] != b"{":
        return None
    try:
        return msgspec.json.decode(body, type=_AskedModel).model
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def _count(usage: dict[str, Any], name: str) -> int | None:
    value = usage.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def usage_tokens(usage: dict[str, Any] | None) -> tuple[int | None, int | None]:
    """``(input_tokens, output_tokens)`` from a provider's usage object (see the module docstring)."""
    if not usage:
        return None, None
    if "prompt_tokens" in usage or "completion_tokens" in usage:  # OpenAI Chat Completions
        return _count(usage, "prompt_tokens"), _count(usage, "completion_tokens")
    tokens_in = _count(usage, "input_tokens")
    if tokens_in is not None:  # Anthropic counts cache writes and reads apart; the Responses API has neither
        for extra in ("cache_creation_input_tokens", "cache_read_input_tokens"):
            tokens_in += _count(usage, extra) or 0
    return tokens_in, _count(usage, "output_tokens")


def _host(netloc: str) -> str:
    return netloc.rpartition("@")[2]


def exchange_row(tape: TapeOutline, where: str, number: int, exchange: Outline) -> dict[str, Any]:
    """The row of exchange ``number`` of ``tape`` (found at ``where``), from its outline and diagnosis."""
    found = exchange.diagnostics
    assert found is not None, "tapes are outlined with diagnose=True"
    segments = tape.segments or [tape.header]
    header = segments[exchange.segment] if exchange.segment < len(segments) else tape.header
    request = exchange.request
    url = urlsplit(request.url)
    tokens_in, tokens_out = usage_tokens(found.usage)
    wall_us = (header.started_unix_ns + request.t_ns) // 1000
    return {
        "tape": where,
        "segment": exchange.segment,
        "exchange": number,
        "started_at": _EPOCH + timedelta(microseconds=wall_us),
        "method": request.method,
        "host": _host(url.netloc),
        "path": url.path,
        "provider": found.provider,
        "model": found.model or _asked_model(request.body),
        "status": found.status,
        "outcome": exchange.end.outcome,
        "verdict": found.verdict,
        "error_type": exchange.end.error_type,
        "chunks": found.chunks_received,
        "bytes": exchange.bytes,
        "ttfb_ms": found.first_chunk_ms,
        "ttft_ms": found.first_token_ms,
        "duration_ms": found.duration_ms,
        "longest_gap_ms": found.gap_max_ms,
        "finish_reason": found.finish_reason,
        "hazards": list(found.hazards),
        "input_tokens": tokens_in,
        "output_tokens": tokens_out,
        "tape_incomplete": tape.incomplete,
        "damaged": exchange.damaged,
    }


def tape_rows(tape: TapeOutline, where: str) -> list[dict[str, Any]]:
    """One row per exchange of ``tape`` (outlined with its diagnoses, ``analysis.outline``), in ``info``'s
    order; ``where`` is the tape's path or URL."""
    return [exchange_row(tape, where, number, exchange) for number, exchange in enumerate(tape.exchanges)]


__all__ = ["COLUMNS", "NAMES", "arrow_schema", "exchange_row", "tape_rows", "usage_tokens"]
