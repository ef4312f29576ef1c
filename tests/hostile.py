"""Crafted hostile tapes, generated at test time (never committed as binaries).

Each function returns a tape's bytes built by hand: raw MessagePack bodies, zstd frames and frame markers, so
that a file can break any rule a writer would never break. ``tests/test_hostile_tapes.py`` reads them;
``benchmarks/hostile_tapes.py`` measures the record-count bomb. Run ``python tests/hostile.py DIR`` to write
every crafted file into DIR (to try them on the command line).

Only ``zstandard``, ``msgspec`` and the marker layout are used to build them, so the same files can be fed to
an older streamtape (the benchmark's "before").
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import msgspec
import zstandard

MARKER_MAGIC = 0x184D2A53
STARTED = 1_767_225_600_000_000_000


def marker(sequence: int) -> bytes:
    """The 32-byte frame marker that precedes zstd frame number ``sequence`` (format 1.1)."""
    return (
        MARKER_MAGIC.to_bytes(4, "little")
        + (24).to_bytes(4, "little")
        + b"streamtape-frame"
        + sequence.to_bytes(8, "big")
    )


def raw(body: bytes) -> bytes:
    """One record: a 4-byte big-endian length, then ``body`` (normally one MessagePack array)."""
    return len(body).to_bytes(4, "big") + body


def pack(*fields: object) -> bytes:
    """A record body: the MessagePack array of ``fields`` (the tag first)."""
    return msgspec.msgpack.encode(list(fields))


def header(version: tuple[int, int] = (1, 1), meta: object = None) -> bytes:
    return pack("header", "streamtape", list(version), "streamtape hostile", STARTED, meta or {}, None)


def request(x: int = 1, t_ns: int = 1_000, headers: list[list[str]] | None = None) -> bytes:
    return pack("request", x, t_ns, "POST", "http://h/v1/chat/completions", headers or [["host", "h"]], b"{}")


def response(
    x: int = 1, t_ns: int = 2_000, version: str = "HTTP/1.1", headers: list[list[str]] | None = None
) -> bytes:
    return pack("response", x, t_ns, 200, version, headers or [["content-type", "text/event-stream"]], "OK")


def chunk(x: int = 1, t_ns: int = 3_000, data: bytes = b"data: x\n\n") -> bytes:
    return pack("chunk", x, t_ns, data)


def end(x: int = 1, t_ns: int = 4_000, outcome: str = "complete") -> bytes:
    return pack("end", x, t_ns, outcome, None, None)


def gap(x: int = 1, t_ns: int = 3_500) -> bytes:
    return pack("gap", x, t_ns, 2, 20, "the writer's queue was full")


def frame(*bodies: bytes, marked: int | None = None) -> bytes:
    """One zstd frame (content size and checksum) holding ``bodies`` as records, after marker ``marked``."""
    data = zstandard.ZstdCompressor(write_checksum=True).compress(b"".join(raw(b) for b in bodies))
    return (b"" if marked is None else marker(marked)) + data


def tape(*bodies: bytes) -> bytes:
    """A one-frame 1.1 tape of ``bodies`` (the header is not added: pass it)."""
    return frame(*bodies, marked=0)


def exchange(x: int = 1, t0: int = 1_000, chunks: int = 3) -> list[bytes]:
    """A whole exchange's record bodies: request, response, ``chunks`` chunks, end."""
    return [
        request(x, t0),
        response(x, 2_000),
        *(chunk(x, 3_000 + i, b"data: %d\n\n" % i) for i in range(chunks)),
        end(x, 9_000),
    ]


# -- deep nesting -----------------------------------------------------------------------------------------


def deep_body(depth: int = 100_000) -> bytes:
    """``0x91`` (an array of one element) ``depth`` times, then nil: nesting no record type has."""
    return b"\x91" * depth + b"\xc0"


def deep_nesting(depth: int = 100_000) -> bytes:
    """A header, then a record whose body is ``deep_body``: the issue's 30-207 byte files."""
    return tape(header(), deep_body(depth))


def deep_nesting_first() -> bytes:
    """The deep body as the very first record: not a tape at all."""
    return tape(deep_body())


def deep_meta(depth: int = 100_000) -> bytes:
    """A header whose ``meta`` (any JSON-like value) nests ``depth`` arrays."""
    body = b"\x96" + pack("header", "streamtape", [1, 1], "w", STARTED)[1:] + b"\x81\xa1m" + deep_body(depth)
    return tape(body)


def deep_tail(depth: int = 100_000) -> bytes:
    """A chunk record with a deeply nested extra field past the ones a reader knows (a newer minor)."""
    body = b"\x95" + pack("chunk", 1, 3_000, b"x")[1:] + deep_body(depth)
    return tape(header(), request(), response(), body, end())


def deep_unknown(depth: int = 100_000) -> bytes:
    """An unknown-tag record whose second field nests deeply: skipped, never decoded."""
    body = b"\x92" + msgspec.msgpack.encode("annotation") + deep_body(depth)
    return tape(header(), request(), body, response(), end())


# -- record-count bombs ---------------------------------------------------------------------------------

#: The issue's bomb record: a 13-byte chunk body (17 bytes with its length), 7.86 million to a 128 MiB frame.
TINY_CHUNK = chunk(1, 200, b"x")
#: An unknown-tag record of 3 bytes (7 with its length).
TINY_UNKNOWN = pack("z")


def _bomb_frame(records: int, record: bytes, prefix: bytes = b"", level: int = 1) -> bytes:
    """A streamed zstd frame (no content size) of ``prefix`` then ``records`` copies of ``record``."""
    one = raw(record)
    compressor = zstandard.ZstdCompressor(level=level, write_checksum=True, write_content_size=False)
    obj = compressor.compressobj()
    out = bytearray(obj.compress(prefix))
    piece = one * 65_536
    left = records
    while left >= 65_536:
        out += obj.compress(piece)
        left -= 65_536
    out += obj.compress(one * left)
    out += obj.flush()
    return bytes(out)


def record_bomb(frames: int = 3, per_frame: int = 7_864_000, record: bytes = TINY_CHUNK) -> bytes:
    """``frames`` frames of ``per_frame`` tiny records each, after a header, request and response.

    The defaults are the issue's bomb: three frames, 23.6 million 17-byte chunk records, about 32 KB.
    """
    start = b"".join(raw(b) for b in (header(), request(), response()))
    out = bytearray()
    for n in range(frames):
        out += marker(n) + _bomb_frame(per_frame, record, start if n == 0 else b"")
    return bytes(out)


def unknown_bomb(frames: int = 1, per_frame: int = 1_700_000) -> bytes:
    """Frames of unknown-tag records (a reader skips each: it must cost O(1))."""
    return record_bomb(frames, per_frame, TINY_UNKNOWN)


# -- frame sequence ---------------------------------------------------------------------------------------


def framed(groups: Iterable[Iterable[bytes]]) -> list[bytes]:
    """Each group of record bodies as its own marked frame, numbered from 0: the pieces of a tape."""
    return [frame(*group, marked=n) for n, group in enumerate(groups)]


def five_frames() -> list[bytes]:
    """A tape of five frames: header; request and head; two frames of chunks; the last chunk and the end."""
    x = 1
    return framed(
        [
            [header()],
            [request(x, 1_000), response(x, 2_000)],
            [chunk(x, 3_000, b"data: a\n\n"), chunk(x, 3_100, b"data: b\n\n")],
            [chunk(x, 3_200, b"data: c\n\n"), chunk(x, 3_300, b"data: d\n\n")],
            [chunk(x, 3_400, b"data: [DONE]\n\n"), end(x, 4_000)],
        ]
    )


def missing_frame(index: int = 2) -> bytes:
    frames = five_frames()
    return b"".join(frames[:index] + frames[index + 1 :])


def repeated_frame(index: int = 2) -> bytes:
    frames = five_frames()
    return b"".join(frames[: index + 1] + frames[index:])


def swapped_frames(index: int = 2) -> bytes:
    frames = five_frames()
    frames[index], frames[index + 1] = frames[index + 1], frames[index]
    return b"".join(frames)


def concatenated() -> bytes:
    """Two whole tapes, one after the other (``cat a.tape b.tape``): each numbers its frames from 0."""
    later = pack("header", "streamtape", [1, 1], "streamtape hostile", STARTED + 10**12, {}, None)
    second = framed([[later], [request(1, 1_000), response(1, 2_000), chunk(1, 3_000), end(1, 4_000)]])
    return b"".join(five_frames() + second)


# -- times and strings a replay cannot use ------------------------------------------------------------------

DAY_NS = 86_400 * 10**9


def bad_times() -> dict[str, bytes]:
    """One tape per recorded time out of range: past a day, negative, 2**64-1."""
    x = 1
    r, s, c, e = request(x), response(x), chunk(x), end(x)
    return {
        "request negative": tape(header(), request(x, -1), s, c, e),
        "response past a day": tape(header(), r, response(x, DAY_NS + 1), c, e),
        "chunk past a day": tape(header(), r, s, chunk(x, 10**15), e),
        "chunk negative": tape(header(), r, s, chunk(x, -5), e),
        "end past a day": tape(header(), r, s, c, end(x, 10**15)),
        "end at 2**64-1": tape(header(), r, s, c, end(x, 2**64 - 1)),
        "connect error, end at 10**15": tape(
            header(), r, pack("end", x, 10**15, "error", "ConnectError", "x")
        ),
        "gap past a day": tape(header(), r, s, pack("gap", x, 10**15, 1, 1, "q"), c, e),
    }


def bad_strings() -> dict[str, bytes]:
    """One tape per string a replayed response could not carry on the wire."""
    x = 1
    r, c, e = request(x), chunk(x), end(x)
    return {
        "http_version not ASCII": tape(header(), r, response(x, version="HTTP/1.1\u00e9"), c, e),
        "response header name outside latin-1": tape(
            header(), r, response(x, headers=[["x-\u20ac", "v"]]), c, e
        ),
        "response header value outside latin-1": tape(
            header(), r, response(x, headers=[["x-a", "\u4e2d"]]), c, e
        ),
        "request header outside latin-1": tape(
            header(), request(x, headers=[["x-\u0100", "v"]]), response(x), c, e
        ),
        "reason outside latin-1": tape(
            header(), r, pack("response", x, 2_000, 200, "HTTP/1.1", [], "\u2603"), c, e
        ),
    }


def every_file() -> dict[str, Callable[[], bytes]]:
    return {
        "deep-nesting": deep_nesting,
        "deep-nesting-first": deep_nesting_first,
        "deep-meta": deep_meta,
        "deep-tail": deep_tail,
        "deep-unknown": deep_unknown,
        "record-bomb": record_bomb,
        "unknown-bomb": unknown_bomb,
        "missing-frame": missing_frame,
        "repeated-frame": repeated_frame,
        "swapped-frames": swapped_frames,
        "concatenated": concatenated,
    }


# -- mutation of real tapes (run in a child process by the tests: see ``fuzz``) ------------------------------

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


def sample_pieces() -> list[list[bytes]]:
    """Each sample tape re-written in frames of a few records each (so frames can be dropped or repeated):
    the marker-and-frame pieces of each."""
    from streamtape import iter_records
    from streamtape.format.encoder import TapeEncoder

    out = []
    for n, path in enumerate(sorted(SAMPLES.glob("*.tape"))):
        encoder = TapeEncoder(level=1)
        pieces = []
        for i, record in enumerate(iter_records(path)):
            encoder.add(record)
            if i % (3 + n % 3) == 2:
                pieces.append(encoder.end_frame())
        pieces.append(encoder.end_frame())
        out.append([p for p in pieces if p])
    return out


def fuzz(examples: int, memory_mb: int) -> None:
    """Mutate real tapes (flip, insert, delete bytes, cut; drop, repeat, swap frames) and read each: only a
    ``TapeError`` may escape, and frames dropped or repeated are never a clean tape. Runs under an address
    space limit of ``memory_mb`` above what the process uses when it starts (``RLIMIT_AS``)."""
    import resource
    import tempfile

    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    import streamtape

    tapes = sample_pieces()
    with open("/proc/self/status") as f:
        size_kb = next(int(line.split()[1]) for line in f if line.startswith("VmSize:"))
    limit = (size_kb << 10) + (memory_mb << 20)
    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
    directory = Path(tempfile.mkdtemp(prefix="streamtape-fuzz-"))
    path = directory / "mutated.tape"

    frame_op = st.tuples(st.sampled_from(["drop", "repeat", "swap"]), st.integers(0, 50))
    byte_op = st.tuples(
        st.sampled_from(["flip", "set", "insert", "delete", "cut"]),
        st.integers(0, 10**6),
        st.binary(min_size=1, max_size=8),
    )

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.integers(0, len(tapes) - 1), st.lists(frame_op, max_size=3), st.lists(byte_op, max_size=4))
    def mutated_tapes_raise_only_tape_errors(which: int, frame_ops: list, byte_ops: list) -> None:
        pieces = list(tapes[which])
        for op, at in frame_ops:
            if op == "drop" and len(pieces) > 2:
                i = 1 + at % (len(pieces) - 2)  # a middle frame (a tape that lost its last frame ends early)
                del pieces[i]
            elif op == "repeat":
                i = at % len(pieces)
                pieces.insert(i + 1, pieces[i])
            elif op == "swap" and len(pieces) > 2:
                i = at % (len(pieces) - 1)
                pieces[i], pieces[i + 1] = pieces[i + 1], pieces[i]
        # (frames lost at the end leave a tape that ends early, which no reader can tell from one that ended)
        changed_frames = pieces != tapes[which][: len(pieces)]
        data = bytearray(b"".join(pieces))
        for op, at, value in byte_ops:
            if not data:
                break
            at %= len(data)
            if op == "flip":
                data[at] ^= value[0] or 1
            elif op == "set":
                data[at : at + len(value)] = value
            elif op == "insert":
                data[at:at] = value
            elif op == "delete":
                del data[at : at + len(value)]
            else:
                del data[at:]
        path.write_bytes(data)
        try:
            stream = streamtape.iter_records(path)
            records = list(stream)
            tape = streamtape.open_tape(path)
        except streamtape.TapeError:
            return
        assert len(records) >= sum(len(e.chunks) for e in tape.exchanges)
        if changed_frames and not byte_ops:
            assert stream.incomplete and tape.incomplete, (frame_ops, tape.problem)

    mutated_tapes_raise_only_tape_errors()
    path.unlink(missing_ok=True)
    directory.rmdir()
    print(f"fuzz: {examples} examples, only TapeError")


def main(argv: list[str]) -> None:
    if len(argv) > 1 and argv[1] == "--fuzz":
        fuzz(int(argv[2]), int(argv[3]))
        return
    out = Path(argv[1] if len(argv) > 1 else "hostile-tapes")
    out.mkdir(parents=True, exist_ok=True)
    for name, build in every_file().items():
        (out / f"{name}.tape").write_bytes(build())
    for group in (bad_times(), bad_strings()):
        for name, data in group.items():
            (out / (name.replace(" ", "-").replace(",", "").replace("*", "") + ".tape")).write_bytes(data)
    print(f"wrote {len(list(out.glob('*.tape')))} tapes into {out}")


if __name__ == "__main__":
    main(sys.argv)
