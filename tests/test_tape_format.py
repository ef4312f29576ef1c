"""Reading and writing tapes: round trips, cut files, hostile bytes, appending, versioning."""

from __future__ import annotations

import os
import shutil
import subprocess
import tracemalloc
from pathlib import Path

import msgspec
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import streamtape
from streamtape.format.codec import TapeDecoder, compress_frame, encode_record, new_compressor
from streamtape.format.records import MAX_FRAME_SIZE, MAX_RECORD_SIZE, Chunk, End, Header, Request, Response
from streamtape.storage.writer import TapeWriter

VECTORS = Path(__file__).resolve().parents[1] / "spec" / "vectors"


def _record_exchange(writer: TapeWriter, chunks: list[bytes], outcome: str = "complete") -> int:
    x = writer.next_exchange_id()
    writer.append(Request(x, writer.now(), "POST", "http://h/v1/x", [("a", "b")], b"{}"))
    writer.append(Response(x, 10, 200, "HTTP/1.1", [("content-type", "text/event-stream")]))
    for i, data in enumerate(chunks):
        writer.append(Chunk(x, 20 + i, data))
    writer.append(End(x, 99, outcome))
    writer.flush()
    return x


@pytest.fixture
def small_tape(tmp_path: Path) -> Path:
    path = tmp_path / "small.tape"
    writer = TapeWriter(str(path), meta={"run": 1}, compact=False)  # keep the live framing
    _record_exchange(writer, [b"data: 1\n\n", b"data: 2\n\n"])
    _record_exchange(writer, [b"data: \xe2\x82", b"\xac\n\n"], outcome="error")
    writer.close()
    return path


def test_written_tape_reads_back_every_record(small_tape: Path):
    tape = streamtape.open_tape(small_tape)
    assert tape.header.meta == {"run": 1}
    assert tape.header.version == (1, 0)
    assert not tape.incomplete
    assert [[c.data for c in e.chunks] for e in tape.exchanges] == [
        [b"data: 1\n\n", b"data: 2\n\n"],
        [b"data: \xe2\x82", b"\xac\n\n"],
    ]
    assert [e.end.outcome for e in tape.exchanges] == ["complete", "error"]


def test_tape_is_a_valid_zstd_stream_for_the_zstd_tool(small_tape: Path):
    content = (
        zstandard.ZstdDecompressor().stream_reader(small_tape.read_bytes(), read_across_frames=True).read()
    )
    assert b"data: 1\n\n" in content and b"streamtape" in content
    if shutil.which("zstd"):
        out = subprocess.run(["zstd", "-dc", str(small_tape)], capture_output=True, check=True).stdout
        assert out == content


def test_tape_cut_at_every_byte_returns_the_records_before_the_cut(small_tape: Path, tmp_path: Path):
    data = small_tape.read_bytes()
    full = list(streamtape.iter_records(small_tape))
    frame_ends = []
    decoder = TapeDecoder()
    for i in range(len(data)):  # where each frame ends, byte by byte
        decoder.feed(data[i : i + 1])
        if decoder.good_end == i + 1:
            frame_ends.append(i + 1)
    assert len(frame_ends) >= 3  # header frame + one per exchange
    held = {end: len(TapeDecoder().feed(data[:end])) for end in frame_ends}
    assert held[frame_ends[-1]] == len(full) == 11
    cut = tmp_path / "cut.tape"
    for n in range(len(data)):
        cut.write_bytes(data[:n])
        try:
            stream = streamtape.iter_records(cut)
            records = list(stream)
        except streamtape.TapeError as exc:
            assert str(cut) in str(exc)
            assert n < frame_ends[0], f"cut at {n}: a whole header frame was there, yet: {exc}"
            continue
        assert records == full[: len(records)], f"cut at {n}: records differ from the original's prefix"
        assert stream.incomplete == (n not in frame_ends), f"cut at {n}"
        whole = max((held[end] for end in frame_ends if end <= n), default=0)
        assert len(records) >= whole, f"cut at {n}: lost records of complete frames"
        tape = streamtape.open_tape(cut)  # the model builds from any prefix too
        assert tape.incomplete == (n not in frame_ends) or any(
            e.end.outcome == "incomplete" for e in tape.exchanges
        )


def test_empty_file_is_a_clear_error(tmp_path: Path):
    path = tmp_path / "empty.tape"
    path.write_bytes(b"")
    with pytest.raises(streamtape.NotATapeError, match=r"empty\.tape: empty file"):
        streamtape.open_tape(path)


def test_other_zstd_file_is_not_a_tape(tmp_path: Path):
    path = tmp_path / "log.zst"
    path.write_bytes(zstandard.ZstdCompressor().compress(b"hello world, just a log line\n" * 10))
    with pytest.raises(streamtape.NotATapeError, match=r"log\.zst: not a tape"):
        streamtape.open_tape(path)


def test_missing_file_and_directory_name_the_path(tmp_path: Path):
    with pytest.raises(streamtape.TapeError, match=r"nope\.tape: no such file"):
        streamtape.open_tape(tmp_path / "nope.tape")
    with pytest.raises(streamtape.TapeError, match="is a directory"):
        streamtape.open_tape(tmp_path)


def _raw_tape(*records_bytes: bytes) -> bytes:
    body = b"".join(len(r).to_bytes(4, "big") + r for r in records_bytes)
    return new_compressor().compress(body)


def _header_bytes(version: list[int]) -> bytes:
    return msgspec.msgpack.encode(["header", "streamtape", version, "streamtape 9.9", 0, {}, None])


def test_newer_major_version_is_refused_with_the_versions_named(tmp_path: Path):
    path = tmp_path / "future.tape"
    path.write_bytes(_raw_tape(_header_bytes([2, 3])))
    with pytest.raises(streamtape.TapeVersionError, match=r"format 2\.3 by streamtape 9\.9.*upgrade"):
        streamtape.open_tape(path)


def test_newer_minor_version_with_new_fields_and_record_types_is_read(tmp_path: Path):
    """A 1.7 writer may append fields and add record tags; a 1.0 reader keeps what it knows."""
    header = msgspec.msgpack.encode(["header", "streamtape", [1, 7], "w", 5, {}, None, "future field"])
    request = msgspec.msgpack.encode(["request", 1, 0, "GET", "http://h/", [], b"", None, "extra"])
    unknown = msgspec.msgpack.encode(["annotation", 1, "a record type from the future"])
    end = msgspec.msgpack.encode(["end", 1, 5, "complete", None, None])
    path = tmp_path / "minor.tape"
    path.write_bytes(_raw_tape(header, request, unknown, end))
    tape = streamtape.open_tape(path)
    assert tape.header.version == (1, 7)
    assert tape.exchanges[0].request.url == "http://h/"
    assert tape.exchanges[0].end.outcome == "complete"


def test_record_over_the_limit_is_refused_before_it_is_read(tmp_path: Path):
    path = tmp_path / "big.tape"
    head = _header_bytes([1, 0])
    declared = (MAX_RECORD_SIZE + 1).to_bytes(4, "big")
    path.write_bytes(new_compressor().compress(len(head).to_bytes(4, "big") + head + declared + b"\x00" * 16))
    with pytest.raises(streamtape.TapeLimitError, match=r"big\.tape: record #1 declares \d+ bytes, over"):
        streamtape.open_tape(path)


def test_corrupt_frame_names_the_byte_where_it_starts(small_tape: Path, tmp_path: Path):
    data = bytearray(small_tape.read_bytes())
    decoder = TapeDecoder()
    decoder.feed(data[:200])
    first_end = decoder.good_end
    assert first_end > 0
    data[first_end + 30] ^= 0x55
    path = tmp_path / "corrupt.tape"
    path.write_bytes(bytes(data))
    with pytest.raises(streamtape.CorruptTapeError, match=rf"corrupt\.tape: .*at byte {first_end}"):
        streamtape.open_tape(path)


def test_garbage_after_the_last_frame_is_reported_at_its_offset(small_tape: Path, tmp_path: Path):
    path = tmp_path / "junk.tape"
    data = small_tape.read_bytes()
    path.write_bytes(data + b"garbage!")
    with pytest.raises(streamtape.CorruptTapeError, match=rf"offset {len(data)} are not a zstd frame"):
        streamtape.open_tape(path)


def test_decompression_bomb_is_stopped_at_the_frame_limit(tmp_path: Path):
    """A frame without a declared size that inflates past the limit: refused, memory stays bounded."""
    head = _header_bytes([1, 0])
    cctx = zstandard.ZstdCompressor(write_content_size=False)
    bomb = cctx.compressobj()
    frame = bomb.compress(len(head).to_bytes(4, "big") + head)
    zeros = bytes(1 << 20)
    for _ in range(MAX_FRAME_SIZE // len(zeros) + 2):
        frame += bomb.compress(zeros)
    frame += bomb.flush()
    path = tmp_path / "bomb.tape"
    path.write_bytes(frame)
    assert len(frame) < 200_000
    tracemalloc.start()
    try:
        with pytest.raises(streamtape.TapeLimitError, match="over"):
            list(streamtape.iter_records(path))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < MAX_FRAME_SIZE * 2.5


def test_frame_declaring_more_than_the_limit_is_refused(tmp_path: Path):
    frame = bytearray(new_compressor().compress(b"\0" * 1000))
    # Rewrite the declared content size (4-byte field, single segment) to 2 GiB.
    assert frame[4] >> 6 == 1 or frame[4] >> 6 == 2
    path = tmp_path / "liar.tape"
    fcs = 2 if frame[4] >> 6 == 1 else 4
    frame[4] = (frame[4] & 0x3F) | (2 << 6)
    frame[5 : 5 + fcs] = (2**31).to_bytes(4, "little")[:fcs] if fcs == 4 else frame[5 : 5 + fcs]
    path.write_bytes(bytes(frame))
    with pytest.raises(streamtape.TapeError):
        streamtape.open_tape(path)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=2048))
def test_random_bytes_raise_only_tape_errors(data: bytes):
    decoder = TapeDecoder()
    try:
        decoder.feed(data)
        decoder.finish()
    except streamtape.TapeError:
        pass


_SMALL = None


def _small_bytes() -> bytes:
    global _SMALL
    if _SMALL is None:
        buf = bytearray()
        encode_record(Header("streamtape", (1, 0), "w", 0), buf)
        encode_record(Request(1, 0, "POST", "http://h/", [("a", "b")], b"{}"), buf)
        encode_record(Response(1, 1, 200, "HTTP/1.1", []), buf)
        encode_record(Chunk(1, 2, b"data: x\n\n"), buf)
        encode_record(End(1, 3, "complete"), buf)
        _SMALL = compress_frame(new_compressor(), buf)
    return _SMALL


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=6),
    st.integers(0, 400),
)
def test_mutated_tapes_raise_only_tape_errors(flips: list[tuple[int, int]], cut: int):
    data = bytearray(_small_bytes())
    for pos, value in flips:
        data[pos % len(data)] = value
    data = data[: len(data) - cut % len(data)]
    decoder = TapeDecoder()
    try:
        records = decoder.feed(bytes(data))
        records += decoder.finish()
        streamtape.model.build_tape(records)
    except streamtape.TapeError:
        pass


def test_appending_to_a_tape_adds_a_segment(tmp_path: Path):
    path = tmp_path / "two.tape"
    for run in (1, 2):
        writer = TapeWriter(str(path), meta={"run": run})
        _record_exchange(writer, [f"run {run}".encode()])
        writer.close()
    tape = streamtape.open_tape(path)
    assert [h.meta for h in tape.segments] == [{"run": 1}, {"run": 2}]
    assert [(e.segment, e.id, e.chunks[0].data) for e in tape.exchanges] == [
        (0, 1, b"run 1"),
        (1, 1, b"run 2"),
    ]
    assert not tape.incomplete


def test_appending_after_a_crash_mends_the_cut_frame_and_keeps_its_records(tmp_path: Path):
    path = tmp_path / "crashed.tape"
    writer = TapeWriter(str(path))
    _record_exchange(writer, [b"kept"])
    writer.close()
    good = path.read_bytes()
    path.write_bytes(good[:-3])  # the last frame (the exchange) cut by a crash
    writer = TapeWriter(str(path), meta={"after": "crash"})
    _record_exchange(writer, [b"new"])
    writer.close()
    tape = streamtape.open_tape(path)
    assert tape.segments[1].meta == {"after": "crash"}
    assert [c.data for e in tape.exchanges for c in e.chunks] == [b"new"] or [
        c.data for e in tape.exchanges for c in e.chunks
    ] == [b"kept", b"new"]
    assert tape.exchanges[-1].end.outcome == "complete"
    # Reading the file raises nothing: the cut frame was mended, not left in the middle.
    assert list(streamtape.iter_records(path))


def test_appending_to_a_file_that_is_not_a_tape_is_refused_and_leaves_it_alone(tmp_path: Path):
    path = tmp_path / "notes.txt"
    path.write_text("precious notes\n")
    with pytest.raises(streamtape.TapeError, match=r"notes\.txt: refusing to append: not a tape"):
        TapeWriter(str(path))
    assert path.read_text() == "precious notes\n"


def test_save_writes_a_tape_equal_to_the_original(small_tape: Path, tmp_path: Path):
    tape = streamtape.open_tape(small_tape)
    copy = tmp_path / "copy.tape"
    tape.save(copy)
    again = streamtape.open_tape(copy)
    assert again.header == tape.header
    assert [list(e.records()) for e in again.exchanges] == [list(e.records()) for e in tape.exchanges]
    assert oct(os.stat(copy).st_mode & 0o777) == "0o600"


def test_closing_a_writer_compacts_the_tape_without_changing_a_record(tmp_path: Path):
    live, compacted = tmp_path / "live.tape", tmp_path / "compacted.tape"
    events = [b'data: {"choices":[{"delta":{"content":"w%d"}}]}\n\n' % i for i in range(200)]
    for path, compact in ((live, False), (compacted, True)):
        writer = TapeWriter(str(path), compact=compact, clock=iter(range(0, 10**12, 10**8)).__next__)
        for _ in range(3):
            _record_exchange(writer, events)
        writer.close()
    assert list(streamtape.iter_records(compacted))[1:] == list(streamtape.iter_records(live))[1:]
    assert compacted.stat().st_size < live.stat().st_size
    assert oct(compacted.stat().st_mode & 0o777) == "0o600"
    assert not list(tmp_path.glob("*.tmp"))


def test_writer_flushes_an_open_stream_within_the_interval(tmp_path: Path):
    """A stream that stalls after a chunk: the chunk reaches the disk without waiting for the end."""
    import time

    path = tmp_path / "open.tape"
    writer = TapeWriter(str(path), flush_interval=0.05)
    x = writer.next_exchange_id()
    writer.append(Request(x, writer.now(), "GET", "http://h/", [], b""))
    writer.append(Response(x, 1, 200, "HTTP/1.1", []))
    writer.append(Chunk(x, 2, b"before the stall"))
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        tape = streamtape.open_tape(path)
        if tape.exchanges and tape.exchanges[0].chunks:
            break
        time.sleep(0.01)
    assert tape.exchanges[0].chunks[0].data == b"before the stall"
    assert tape.incomplete and tape.exchanges[0].end.outcome == "incomplete"
    writer.close()


def test_a_forked_child_does_not_write_through_its_parents_writer(tmp_path: Path):
    """gunicorn --preload: a client made before the fork must not interleave two processes in one segment."""
    path = tmp_path / "fork.tape"
    writer = TapeWriter(str(path), compact=False)
    x = writer.next_exchange_id()
    writer.append(Request(x, writer.now(), "GET", "http://h/parent", [], b""))  # pending in the buffer
    pid = os.fork()
    if pid == 0:  # the child: its appends and its close must not reach the file
        try:
            writer.append(Request(99, 0, "GET", "http://h/child", [], b""))
            writer.flush()
            writer.close()
            os._exit(0 if isinstance(writer.failure, streamtape.TapeError) else 3)
        except BaseException:
            os._exit(4)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    writer.append(End(x, 1, "error", "ConnectError", "refused"))
    writer.flush()
    writer.close()
    urls = [r.url for r in streamtape.iter_records(path) if isinstance(r, Request)]
    assert urls == ["http://h/parent"]  # once: the child neither wrote its own nor re-flushed the parent's
