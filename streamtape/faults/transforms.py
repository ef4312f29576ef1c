"""The faults: pure functions ``Tape -> Tape`` that turn a recorded exchange into a broken one.

Each takes the tape and ``exchange`` (a number as ``info`` shows it; None, the default, means every
exchange the fault can apply to, and at least one), never changes its input, and returns a new tape whose
header records what was applied (``provenance``, format 1.1). Chunk indices count from 0; ``after_chunk=k``
keeps the first ``k`` chunks; ``seconds`` are added to the recorded wait. The names follow the emulator's
scenario knobs where they mean the same thing (a ``stall``, a ``reset`` is a truncation with ``ReadError``),
and Toxiproxy's and WireMock's faults otherwise (``rechunk`` is the slicer, ``throttle`` the bandwidth
limit, ``garbage`` the random data then close, ``status`` the error answer, ``fail_connect`` the refused
connection).

A fault that cannot apply (a chunk past the end, an exchange with no body, a negative size) raises
``FaultError`` naming the fault and the tape: never a silently unchanged tape.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import msgspec

from ..errors import FaultError
from ..format.records import Applied, Chunk, End, Header, Response
from ..model import Chunks, Exchange, Tape

#: Exception class names a fault may end an exchange with: httpx's and httpx2's transport errors, which a
#: replay raises as the client's own library's class of that name.
TRANSPORT_ERRORS = (
    "RemoteProtocolError",
    "ReadError",
    "ReadTimeout",
    "WriteError",
    "WriteTimeout",
    "ConnectError",
    "ConnectTimeout",
    "PoolTimeout",
    "ProxyError",
    "LocalProtocolError",
    "CloseError",
    "NetworkError",
    "UnsupportedProtocol",
)
_MESSAGES = {
    "RemoteProtocolError": "peer closed connection without sending complete message body (incomplete chunked read)",
    "ReadError": "[Errno 104] Connection reset by peer",
    "ReadTimeout": "The read operation timed out",
    "ConnectError": "[Errno 111] Connection refused",
    "ConnectTimeout": "timed out",
}
_NS = 1_000_000_000


# -- the faults ---------------------------------------------------------------------------------------------


def truncate(
    tape: Tape,
    *,
    after_chunk: int | None = None,
    after_bytes: int | None = None,
    error: str | None = "RemoteProtocolError",
    exchange: int | None = None,
) -> Tape:
    """Cut the body after ``after_chunk`` chunks or ``after_bytes`` bytes (a chunk may be split); the client
    then gets ``error`` (an exception class name: ``RemoteProtocolError``, ``ReadError`` for a reset,
    ``ReadTimeout``), or, with ``error=None``, a clean end of the body: the proxy that closes politely."""
    where = {"after_chunk": after_chunk} if after_chunk is not None else {"after_bytes": after_bytes}
    params = {**where, "error": error}
    if (after_chunk is None) == (after_bytes is None):
        raise FaultError("truncate", tape, "give exactly one of after_chunk and after_bytes")
    _check_error("truncate", tape, error)
    limit = after_chunk if after_chunk is not None else after_bytes
    if limit is None or limit < 0:
        raise FaultError("truncate", tape, f"the cut must be >= 0, not {limit}")

    def cut(e: Exchange) -> Exchange | str:
        chunks = list(e.chunks)
        if e.response is None:
            return "it has no response"
        if after_chunk is not None:
            if after_chunk >= len(chunks):
                return f"it has {len(chunks)} chunks, none after chunk {after_chunk}"
            kept, next_t = chunks[:after_chunk], chunks[after_chunk].t_ns
        else:
            assert after_bytes is not None
            if after_bytes >= len(e.body):
                return f"its body has {len(e.body)} bytes, none after byte {after_bytes}"
            kept, next_t = _first_bytes(chunks, after_bytes)
        last = kept[-1].t_ns if kept else e.response.t_ns
        if error is None:
            end = End(e.id, last, "complete")
        else:
            end = End(e.id, max(last, next_t), "error", error, _MESSAGES.get(error, error))
        return e.replace(chunks=kept, recorded_end=end)

    return _apply(tape, "truncate", params, exchange, cut)


def stall(tape: Tape, *, at_chunk: int, seconds: float, exchange: int | None = None) -> Tape:
    """Wait ``seconds`` more before chunk ``at_chunk`` (everything after moves later): under replay's virtual
    time, a client's read timeout shorter than the wait fires, without the test waiting for it."""
    _check_seconds("stall", tape, seconds)
    _check_index("stall", tape, at_chunk)
    shift = round(seconds * _NS)

    def later(e: Exchange) -> Exchange | str:
        if at_chunk >= len(e.chunks):
            return f"it has {len(e.chunks)} chunks, no chunk {at_chunk}"
        return _shift_from(e, at_chunk, shift)

    return _apply(tape, "stall", {"at_chunk": at_chunk, "seconds": seconds}, exchange, later)


def rechunk(
    tape: Tape,
    *,
    size: int | None = None,
    sizes: Sequence[int] | None = None,
    seed: int | None = None,
    exchange: int | None = None,
) -> Tape:
    """Cut the body again: into ``size``-byte chunks (the last may be shorter), or chunks of the given
    ``sizes`` in order (the rest, if any, one last chunk), or at random points drawn from ``seed``. Each new
    chunk is timed when its last byte originally arrived, so the bytes and their pace stay the recording's."""
    chosen = [name for name, v in (("size", size), ("sizes", sizes), ("seed", seed)) if v is not None]
    if len(chosen) != 1:
        raise FaultError("rechunk", tape, "give exactly one of size, sizes and seed")
    if size is not None and size < 1:
        raise FaultError("rechunk", tape, f"size must be >= 1, not {size}")
    if sizes is not None and (not sizes or any(n < 1 for n in sizes)):
        raise FaultError("rechunk", tape, f"sizes must be numbers >= 1, not {list(sizes)}")

    def again(e: Exchange) -> Exchange | str:
        body = e.body
        if not body:
            return "it has no body"
        if size is not None:
            lengths = [size] * (len(body) // size) + ([len(body) % size] if len(body) % size else [])
        elif sizes is not None:
            if sum(sizes) > len(body):
                return f"the sizes add up to {sum(sizes)} bytes, more than its body's {len(body)}"
            lengths = [*sizes, *([len(body) - sum(sizes)] if sum(sizes) < len(body) else [])]
        else:
            lengths = _random_lengths(len(body), len(e.chunks), random.Random(f"{seed}:{e.segment}:{e.id}"))
        return e.replace(chunks=_recut(e, lengths))

    given = {"size": size, "sizes": list(sizes) if sizes is not None else None, "seed": seed}
    return _apply(tape, "rechunk", {k: v for k, v in given.items() if v is not None}, exchange, again)


def drop(tape: Tape, *, chunk: int, exchange: int | None = None) -> Tape:
    """Lose chunk ``chunk``: the dropped token (its bytes never arrive; the others keep their times)."""
    _check_index("drop", tape, chunk)

    def without(e: Exchange) -> Exchange | str:
        if chunk >= len(e.chunks):
            return f"it has {len(e.chunks)} chunks, no chunk {chunk}"
        return e.replace(chunks=[c for i, c in enumerate(e.chunks) if i != chunk])

    return _apply(tape, "drop", {"chunk": chunk}, exchange, without)


def duplicate(tape: Tape, *, chunk: int, exchange: int | None = None) -> Tape:
    """Deliver chunk ``chunk`` twice, the copy at the same time: the doubled token."""
    _check_index("duplicate", tape, chunk)

    def twice(e: Exchange) -> Exchange | str:
        if chunk >= len(e.chunks):
            return f"it has {len(e.chunks)} chunks, no chunk {chunk}"
        chunks = list(e.chunks)
        return e.replace(chunks=[*chunks[: chunk + 1], chunks[chunk], *chunks[chunk + 1 :]])

    return _apply(tape, "duplicate", {"chunk": chunk}, exchange, twice)


def delay_head(tape: Tape, *, seconds: float, exchange: int | None = None) -> Tape:
    """Wait ``seconds`` more for the response head: a slower time to first byte (and everything after)."""
    _check_seconds("delay_head", tape, seconds)
    shift = round(seconds * _NS)

    def later(e: Exchange) -> Exchange | str:
        if e.response is None:
            return "it has no response"
        delayed = _shift_from(e, 0, shift)
        assert e.response is not None
        return delayed.replace(response=replace_struct(e.response, t_ns=e.response.t_ns + shift))

    return _apply(tape, "delay_head", {"seconds": seconds}, exchange, later)


def throttle(tape: Tape, *, bytes_per_second: float, exchange: int | None = None) -> Tape:
    """Deliver the body no faster than ``bytes_per_second`` (Toxiproxy's bandwidth toxic): each chunk arrives
    when the link would have carried it, or when it was recorded, whichever is later."""
    if not (isinstance(bytes_per_second, int | float) and bytes_per_second > 0):
        raise FaultError("throttle", tape, f"bytes_per_second must be > 0, not {bytes_per_second!r}")

    def slower(e: Exchange) -> Exchange | str:
        if not e.chunks:
            return "it has no body"
        start = e.response.t_ns if e.response is not None else e.chunks[0].t_ns
        sent, out, delay = 0, [], 0
        for c in e.chunks:
            sent += len(c.data)
            due = max(c.t_ns, start + round(sent / bytes_per_second * _NS))
            delay = due - c.t_ns
            out.append(Chunk(c.x, due, c.data))
        end = e.recorded_end
        moved = None if end is None else replace_struct(end, t_ns=end.t_ns + delay)
        return e.replace(chunks=out, recorded_end=moved)

    return _apply(tape, "throttle", {"bytes_per_second": bytes_per_second}, exchange, slower)


def garbage(
    tape: Tape,
    *,
    after_chunk: int,
    size: int = 64,
    seed: int = 0,
    error: str | None = "RemoteProtocolError",
    exchange: int | None = None,
) -> Tape:
    """Keep the first ``after_chunk`` chunks, then ``size`` random bytes (from ``seed``), then end as
    ``error`` says: WireMock's "random data, then close", what a broken proxy or a confused server sends."""
    _check_index("garbage", tape, after_chunk)
    _check_error("garbage", tape, error)
    if size < 1:
        raise FaultError("garbage", tape, f"size must be >= 1, not {size}")

    def noise(e: Exchange) -> Exchange | str:
        if e.response is None:
            return "it has no response"
        if after_chunk > len(e.chunks):
            return f"it has {len(e.chunks)} chunks, fewer than {after_chunk}"
        kept = list(e.chunks[:after_chunk])
        t = e.chunks[after_chunk].t_ns if after_chunk < len(e.chunks) else e.end.t_ns
        junk = random.Random(f"{seed}:{e.segment}:{e.id}").randbytes(size)
        end = (
            End(e.id, t, "complete")
            if error is None
            else End(e.id, t, "error", error, _MESSAGES.get(error, error))
        )
        return e.replace(chunks=[*kept, Chunk(e.id, t, junk)], recorded_end=end)

    params = {"after_chunk": after_chunk, "size": size, "seed": seed, "error": error}
    return _apply(tape, "garbage", params, exchange, noise)


def status(
    tape: Tape,
    *,
    code: int,
    body: bytes | str | None = None,
    headers: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
    exchange: int | None = None,
) -> Tape:
    """Answer with HTTP ``code`` instead of the stream (429, 500, 529 ...): ``body`` (default: the provider's
    own error JSON for that status) and ``headers`` (default: ``content-type: application/json``; give
    ``{"retry-after": "1"}`` and the like), at the recorded time of the head."""
    if not 100 <= code <= 599:
        raise FaultError("status", tape, f"code must be an HTTP status (100-599), not {code}")
    pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers or [])
    if not any(name.lower() == "content-type" for name, _ in pairs):
        pairs.insert(0, ("content-type", "application/json"))

    def answer(e: Exchange) -> Exchange | str:
        t = e.response.t_ns if e.response is not None else (e.chunks[0].t_ns if e.chunks else 1_000_000)
        data = body.encode() if isinstance(body, str) else body
        if data is None:
            data = _error_body(e, code)
        version = e.response.http_version if e.response is not None else "HTTP/1.1"
        head = Response(e.id, t, code, version, [*pairs, ("content-length", str(len(data)))], "")
        chunks = [Chunk(e.id, t, data)] if data else []
        return Exchange(e.segment, e.id, e.request, head, Chunks(chunks), End(e.id, t, "complete"), ())

    params: dict[str, Any] = {"code": code, "headers": [list(p) for p in pairs]}  # as a tape stores it
    if body is not None:
        params["body"] = body if isinstance(body, str) else body.decode("latin-1")
    return _apply(tape, "status", params, exchange, answer)


def fail_connect(tape: Tape, *, error: str = "ConnectError", exchange: int | None = None) -> Tape:
    """The connection never opens: no response, and the client gets ``error`` (``ConnectError``,
    ``ConnectTimeout``) when the response head was due."""
    _check_error("fail_connect", tape, error)

    def refused(e: Exchange) -> Exchange:
        t = e.response.t_ns if e.response is not None else e.end.t_ns
        end = End(e.id, t, "error", error, _MESSAGES.get(error, error))
        return Exchange(e.segment, e.id, e.request, None, Chunks(), end, ())

    return _apply(tape, "fail_connect", {"error": error}, exchange, refused)


# -- shared machinery ----------------------------------------------------------------------------------------


def replace_struct(struct: Any, **changes: Any) -> Any:
    """A msgspec struct with some fields changed (they are frozen)."""
    return msgspec.structs.replace(struct, **changes)


def _apply(
    tape: Tape,
    fault: str,
    params: dict[str, Any],
    exchange: int | None,
    change: Callable[[Exchange], Exchange | str],
) -> Tape:
    """Apply ``change`` to the chosen exchange (or every one it can apply to) and record it in the header."""
    if exchange is not None and not 0 <= exchange < len(tape.exchanges):
        raise FaultError(fault, tape, f"no exchange #{exchange}: the tape has {len(tape.exchanges)}")
    chosen = range(len(tape.exchanges)) if exchange is None else [exchange]
    if not chosen:
        raise FaultError(fault, tape, "the tape has no exchanges")
    out = list(tape.exchanges)
    reasons: list[str] = []
    for n in chosen:
        changed = change(out[n])
        if isinstance(changed, str):
            reasons.append(f"#{n}: {changed}")
        else:
            out[n] = changed
    if len(reasons) == len(chosen):  # applied to nothing
        more = f" (and {len(reasons) - 3} more)" if len(reasons) > 3 else ""
        raise FaultError(fault, tape, "cannot apply to exchange " + "; ".join(reasons[:3]) + more)
    applied = Applied(fault, exchange, params)
    return _with_provenance(tape, out, applied)


def _with_provenance(tape: Tape, exchanges: list[Exchange], applied: Applied) -> Tape:
    """A new tape: the exchanges changed, every segment's header listing the fault after earlier ones."""

    def header(h: Header) -> Header:
        derived: Header = replace_struct(h, provenance=[*(h.provenance or []), applied])
        return derived

    segments = [header(h) for h in tape.segments] if tape.segments else []
    first = segments[0] if segments else header(tape.header)
    return replace(tape, header=first, exchanges=exchanges, segments=segments)


def _check_error(fault: str, tape: Tape, error: str | None) -> None:
    if error is not None and error not in TRANSPORT_ERRORS:
        raise FaultError(
            fault, tape, f"error must be one of {', '.join(TRANSPORT_ERRORS)} or None, not {error!r}"
        )


def _check_seconds(fault: str, tape: Tape, seconds: float) -> None:
    if not (isinstance(seconds, int | float) and 0 <= seconds <= 86_400):
        raise FaultError(fault, tape, f"seconds must be between 0 and 86400, not {seconds!r}")


def _check_index(fault: str, tape: Tape, index: int) -> None:
    if not isinstance(index, int) or index < 0:
        raise FaultError(fault, tape, f"a chunk index is a number >= 0, not {index!r}")


def _shift_from(e: Exchange, index: int, shift: int) -> Exchange:
    """Every chunk from ``index`` on, and the end, ``shift`` ns later."""
    chunks = [c if i < index else Chunk(c.x, c.t_ns + shift, c.data) for i, c in enumerate(e.chunks)]
    end = e.recorded_end
    return e.replace(
        chunks=chunks, recorded_end=None if end is None else replace_struct(end, t_ns=end.t_ns + shift)
    )


def _first_bytes(chunks: list[Chunk], n: int) -> tuple[list[Chunk], int]:
    """The chunks holding the first ``n`` bytes (the last one cut), and when the rest would have arrived."""
    kept: list[Chunk] = []
    for c in chunks:
        if n <= 0:
            return kept, c.t_ns
        if len(c.data) > n:
            kept.append(Chunk(c.x, c.t_ns, c.data[:n]))
            return kept, c.t_ns
        kept.append(c)
        n -= len(c.data)
    return kept, kept[-1].t_ns if kept else 0


def _recut(e: Exchange, lengths: list[int]) -> list[Chunk]:
    """The body cut into ``lengths``; each piece timed when its last byte originally arrived."""
    ends: list[tuple[int, int]] = []  # (offset just past the chunk, its time)
    at = 0
    for c in e.chunks:
        at += len(c.data)
        ends.append((at, c.t_ns))
    body, out, start, k = e.body, [], 0, 0
    for length in lengths:
        stop = start + length
        while ends[k][0] < stop:
            k += 1
        out.append(Chunk(e.id, ends[k][1], body[start:stop]))
        start = stop
    return out


def _random_lengths(total: int, chunks: int, rng: random.Random) -> list[int]:
    """Random chunk lengths adding up to ``total``: about twice as many chunks as recorded, sizes varying."""
    mean = max(1, total // max(1, 2 * chunks))
    lengths = []
    while total > 0:
        n = min(total, rng.randint(1, 2 * mean))
        lengths.append(n)
        total -= n
    return lengths


def _error_body(e: Exchange, code: int) -> bytes:
    """The provider's own error JSON for ``code`` (Anthropic's or OpenAI's shape, from the request)."""
    from ..analysis.providers import error_bodies
    from ..analysis.providers.assembly import ANTHROPIC
    from ..analysis.providers.detect import detect

    if detect(e.request.url, e.request.body, None, []) == ANTHROPIC:
        doc = error_bodies.anthropic_error(code, "req_streamtape_fault")
    else:
        doc = error_bodies.openai_error(code)
    return msgspec.json.encode(doc)
