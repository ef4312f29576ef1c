"""One exchange on the writer's side: the caller's raw events in, records out. Sans-IO, no clocks.

The caller's thread only reads the clock and queues what it saw (``Begin``, ``Head``, chunk bytes,
``Finish``); everything that costs time happens here, on the writer's thread: redaction, the user's
scrubbing hooks, the lifecycle check, the gap records that mark lost data, and ``keep="failed"``, which
holds an exchange's records until its end decides whether it is written or discarded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from ..format.lifecycle import LifecycleError, Phase, advance
from ..format.records import MAX_RECORD_SIZE, Chunk, End, Gap, Headers, Outcome, Record, Request, Response
from .redact import Redactor
from .stats import RecorderStats

logger = logging.getLogger("streamtape")

_BODY_LIMIT = MAX_RECORD_SIZE - 1024 * 1024  # room for the URL and headers in the same record

Keep = Literal["all", "failed"]
#: Sees the request and the response head (None when the exchange failed before one); returns them,
#: changed or not, or None to record nothing of the exchange.
BeforeRecord = Callable[[Request, Response | None], tuple[Request, Response | None] | None]
#: Sees the request and each chunk's bytes; returns the bytes to record.
BeforeRecordChunk = Callable[[Request, bytes], bytes]


def text_pairs(pairs: Iterable[tuple[bytes, bytes]]) -> Headers:
    """Raw header bytes as latin-1 strings: lossless both ways, readable in ``cat``."""
    return [(name.decode("latin-1"), value.decode("latin-1")) for name, value in pairs]


@dataclass(frozen=True)
class RecordOptions:
    """A recording transport's choices, shared by its exchanges."""

    redactor: Redactor | None
    stats: RecorderStats
    keep: Keep = "all"
    hold_bytes: int = 8 << 20
    before_record: BeforeRecord | None = None
    before_record_chunk: BeforeRecordChunk | None = None


class Dropped:
    """Chunks a caller could not queue (the queue was full), queued in their place: one per run of drops.

    The caller adds to it while it is still queued (under the pipeline's drop lock); the writer closes it
    when it reaches it, so later drops start a new one, and the gap lands exactly where data went missing.
    """

    __slots__ = ("bytes", "closed", "records", "t_ns")

    def __init__(self) -> None:
        self.records = 0
        self.bytes = 0
        self.t_ns = 0
        self.closed = False


@dataclass(frozen=True, slots=True)
class Begin:
    method: str
    url: str
    headers: list[tuple[bytes, bytes]]
    body: bytes
    options: RecordOptions
    #: The exchange's later events, ``time, payload`` pairs the writer takes from the front.
    events: list[Any]


@dataclass(frozen=True, slots=True)
class Head:
    status_code: int
    http_version: str
    headers: list[tuple[bytes, bytes]]
    reason: str


@dataclass(frozen=True, slots=True)
class Finish:
    outcome: Outcome
    error_type: str | None
    message: str | None


class PendingExchange:
    """The writer's view of one exchange being recorded; each method returns the records to write now."""

    def __init__(self, x: int, options: RecordOptions, events: list[Any] | None = None) -> None:
        self.x = x
        self.options = options
        #: The caller's ``time, payload`` pairs not yet taken (``ExchangeRecording.events``).
        self.events: list[Any] = [] if events is None else events
        self.refused = False  # the sink refused it or its request could not be encoded: nothing is written
        self.phase = Phase.NEW
        self.start = 0
        self.request: Request | None = None
        self.status: int | None = None
        #: Records held back: by ``keep="failed"`` until the end, or by ``before_record`` until the head.
        self.held: list[Record] | None = [] if options.keep == "failed" else None
        self.held_bytes = 0
        self.skip = False  # before_record said no, or a hook failed: record nothing more
        self.lost_records = 0  # lost and not yet marked with a gap
        self.lost_bytes = 0
        self.lost_reason = ""
        self.lost_t_ns: int | None = None
        self.chunks: list[Chunk] = []  # kept only while held, for the end's diagnosis
        #: True while a chunk needs nothing but encoding (no hook, not held, no gap due): the writer's
        #: hot path then encodes it inline instead of calling ``chunk``.
        self.plain = False
        self.written = 0  # records handed to the sink
        self.written_bytes = 0  # chunk bytes handed to the sink
        self.flushed = 0  # records known durable
        #: (index among this exchange's written records, record) of its request and response head.
        self.head_marks: list[tuple[int, Record]] = []
        self._resend: list[Record] = []  # heads lost to a failed write, written again before anything else
        #: The writer's fast chunk encoding for this exchange (``pipeline.chunk_header``).
        self.chunk_header: tuple[bytes, tuple[tuple[Callable[..., bytes], int, int, int], ...]] = (b"", ())

    def _refresh(self) -> None:
        self.plain = (
            self.phase is Phase.STREAMING
            and self.held is None
            and not self.skip
            and not self.lost_records
            and not self._resend
            and self.options.before_record_chunk is None
        )

    # -- events -------------------------------------------------------------------------------------
    def begin(self, t_ns: int, origin_ns: int, event: Begin) -> list[Record]:
        self.start = t_ns
        url, headers = event.url, text_pairs(event.headers)
        redactor = self.options.redactor
        if redactor is not None:
            url, headers = redactor.redact_url(url), redactor.redact_headers(headers)
        body, body_size = event.body, None
        if len(body) > _BODY_LIMIT:
            body, body_size = body[:_BODY_LIMIT], len(body)
        self.request = Request(self.x, t_ns - origin_ns, event.method, url, headers, body, body_size)
        self._advance("request")
        if self.options.before_record is not None:
            if self.held is None:
                self.held = []  # until the head: the hook sees both
            self.held.append(self.request)
            return []
        return self._out([self.request])

    def head(self, t_ns: int, event: Head) -> list[Record]:
        if not self._advance("response"):
            return []
        headers = text_pairs(event.headers)
        if self.options.redactor is not None:
            headers = self.options.redactor.redact_headers(headers)
        self.status = event.status_code
        response = Response(
            self.x, t_ns - self.start, event.status_code, event.http_version, headers, event.reason
        )
        out = self._gap(t_ns)
        if self.options.before_record is not None:
            out += self._apply_before_record(response)
        else:
            out += self._out([response])
        self._refresh()
        return out

    def chunk(self, t_ns: int, data: bytes) -> list[Record]:
        if self.skip or self.phase is not Phase.STREAMING:
            return []
        hook = self.options.before_record_chunk
        if hook is not None:
            assert self.request is not None
            try:
                data = hook(self.request, bytes(data))
            except Exception as exc:
                return self._hook_failed("before_record_chunk", exc)
        out = self._gap(t_ns)
        chunk = Chunk(self.x, t_ns - self.start, bytes(data))
        if self.held is not None:
            self.chunks.append(chunk)
        out += self._out([chunk])
        self._refresh()
        return out

    def finish(self, t_ns: int, event: Finish) -> tuple[list[Record], bool]:
        """The end. Returns the records to write and whether the exchange is kept (False: discarded)."""
        self.plain = False
        if not self._advance("end"):
            return [], not self.skip
        out: list[Record] = []
        if self.options.before_record is not None and self.status is None and not self.skip:
            out = self._apply_before_record(None)
        out += self._gap(t_ns)
        end = End(self.x, t_ns - self.start, event.outcome, event.error_type, event.message)
        if self.skip:
            return [], False
        if self.held is None:
            return [*out, end], True
        self.held += out
        self.held.append(end)
        if self.options.keep == "failed" and not self.failed(end):
            self.held = None
            return [], False
        held, self.held = self.held, None
        return held, True

    def refuse(self) -> None:
        """Record nothing of this exchange (already counted as dropped or failed)."""
        self.refused = self.skip = True
        self.held = None
        self.plain = False

    def resend(self, heads: list[Record]) -> None:
        """Heads (request, response) a failed write lost: they go out again before the next record."""
        if heads:
            self._resend = heads + self._resend
            self.plain = False

    def lost(self, records: int, nbytes: int, reason: str, t_ns: int | None = None) -> None:
        """Records of this exchange were lost (queue full, failed write): the next record marks a gap.

        ``t_ns`` (clock time of the last one lost) when known; else the gap takes the next record's time.
        """
        if t_ns is not None:
            self.lost_t_ns = t_ns
        self.lost_records += records
        self.lost_bytes += nbytes
        self.lost_reason = self.lost_reason or reason
        self.plain = False

    # -- helpers ------------------------------------------------------------------------------------
    def failed(self, end: End) -> bool:
        """What ``keep="failed"`` keeps: an error, a status >= 400, or a stream the diagnosis calls truncated."""
        if end.outcome in ("error", "incomplete") or (self.status is not None and self.status >= 400):
            return True
        if self.lost_records:
            return True
        from ..analysis.diagnose import diagnose  # the writer's thread only, and only for keep="failed"
        from ..model import Chunks, Exchange

        assert self.request is not None
        response = next((r for r in self.held or () if isinstance(r, Response)), None)
        exchange = Exchange(0, self.x, self.request, response, Chunks(self.chunks), end)
        return diagnose(exchange).verdict != "complete"

    def _advance(self, event: Literal["request", "response", "chunk", "end"]) -> bool:
        try:
            self.phase = advance(self.phase, event)
        except LifecycleError:
            return False  # an event that can no longer happen (a second end): ignored
        return True

    def _gap(self, t_ns: int) -> list[Record]:
        """What must precede the next record: heads to write again, then a gap for what was lost."""
        heads, self._resend = self._resend, []
        if not self.lost_records:
            return heads
        at = t_ns if self.lost_t_ns is None else self.lost_t_ns
        gap = Gap(self.x, max(0, at - self.start), self.lost_records, self.lost_bytes, self.lost_reason)
        self.lost_records = self.lost_bytes = 0
        self.lost_reason = ""
        self.lost_t_ns = None
        return [*heads, gap]

    def _out(self, records: list[Record]) -> list[Record]:
        """Write now, or hold; a held exchange past its memory bound is written as if it failed."""
        if self.skip:
            return []
        if self.held is None:
            return records
        self.held += records
        self.held_bytes += sum(len(r.data) if isinstance(r, Chunk) else 256 for r in records)
        waiting_for_head = self.options.before_record is not None and self.phase is Phase.SENT
        if self.held_bytes <= self.options.hold_bytes or waiting_for_head:
            return []
        held, self.held, self.chunks = self.held, None, []
        return held

    def _apply_before_record(self, response: Response | None) -> list[Record]:
        hook = self.options.before_record
        assert hook is not None and self.request is not None
        try:
            answer = hook(self.request, response)
        except Exception as exc:
            return self._hook_failed("before_record", exc)
        if answer is None:
            self.skip = True
            self.held = None
            return []
        request, response = answer
        self.request = request
        held = [request if isinstance(r, Request) else r for r in self.held or []]
        if response is not None:
            held.append(response)
        if self.options.keep == "failed":
            self.held = held
            return []
        self.held = None
        return held

    def _hook_failed(self, name: str, exc: Exception) -> list[Record]:
        """Never record what a scrubbing hook could not clean: the exchange is dropped, and counted."""
        if not self.skip:
            logger.error(
                "streamtape: %s raised %s: %s; this exchange is not recorded", name, type(exc).__name__, exc
            )
            self.options.stats.error("hook")
        self.skip = True
        self.held = None
        self.plain = False
        return []
