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
from streamtape.format.records import (
    FORMAT_MAJOR,
    FORMAT_MINOR,
    MAX_FRAME_SIZE,
    MAX_RECORD_SIZE,
    Chunk,
    End,
    Header,
    Request,
    Response,
)
from streamtape.storage.compact import compact
from streamtape.storage.tapefile import TapeFile

VECTORS = Path(__file__).resolve().parents[1] / "spec" / "vectors"


def _header(**meta: object) -> Header:
    return Header(
        "streamtape", (FORMAT_MAJOR, FORMAT_MINOR), "streamtape test", 1_767_225_600 * 10**9, dict(meta)
    )


def _record_exchange(tape: TapeFile, x: int, chunks: list[bytes], outcome: str = "complete") -> None:
    tape.write([Request(x, x * 1000, "POST", "http://h/v1/x", [("a", "b")], b"{}")])
    tape.write([Response(x, 10, 200, "HTTP/1.1", [("content-type", "text/event-stream")])])
    tape.write([Chunk(x, 20 + i, data) for i, data in enumerate(chunks)])
    tape.write([End(x, 99, outcome)])
    tape.flush()


@pytest.fixture
def small_tape(tmp_path: Path) -> Path:
    path = tmp_path / "small.tape"
    tape = TapeFile(str(path), _header(run=1))
    _record_exchange(tape, 1, [b"data: 1\n\n", b"data: 2\n\n"])
    _record_exchange(tape, 2, [b"data: \xe2\x82", b"\xac\n\n"], outcome="error")
    tape.close()
    return path


def test_written_tape_reads_back_every_record(small_tape: Path):
    tape = streamtape.open_tape(small_tape)
    assert tape.header.meta == {"run": 1}
    assert tape.header.version == (FORMAT_MAJOR, FORMAT_MINOR)
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


def _block_ends(data: bytes) -> list[int]:
    """Offsets at which a zstd block (or a frame) ends: where a flush left the file readable."""
    ends, at = [], 0
    while at < len(data):
        if data[at : at + 4] != b"\x28\xb5\x2f\xfd":  # a skippable frame: the marker
            at += 8 + int.from_bytes(data[at + 4 : at + 8], "little")
            continue
        descriptor = data[at + 4]
        fcs = (1 if descriptor & 0x20 else 0, 2, 4, 8)[descriptor >> 6]
        at += 5 + (0 if descriptor & 0x20 else 1) + fcs
        while True:
            raw = int.from_bytes(data[at : at + 3], "little")
            at += 3 + (1 if (raw >> 1) & 3 == 1 else raw >> 3)
            if raw & 1:
                at += 4 if descriptor & 4 else 0
                ends.append(at)
                break
            ends.append(at)
    return ends


def _records_in_blocks(data: bytes) -> dict[int, int]:
    """For each block end, how many records decode from the file up to it."""
    out = {}
    for end in _block_ends(data):
        decoder = TapeDecoder()
        out[end] = len(decoder.feed(data[:end]) + decoder.finish())
    return out


def _cuts_keeping_flushed_records(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    full = list(streamtape.iter_records(path))
    kept = _records_in_blocks(data)
    good = 0
    for cut in range(1, len(data)):
        due = max((n for end, n in kept.items() if end <= cut), default=0)
        decoder = TapeDecoder()
        try:
            records = decoder.feed(data[:cut]) + decoder.finish()
        except streamtape.TapeError:
            records = []
        assert records == full[: len(records)]  # never a record that was not there, never out of order
        good += len(records) >= due
    return good, len(data) - 1


def test_tape_cut_at_every_byte_keeps_every_record_of_every_flushed_block(small_tape: Path):
    good, cuts = _cuts_keeping_flushed_records(small_tape)
    assert good == cuts
    assert len(_block_ends(small_tape.read_bytes())) >= 3  # the header, then one block per exchange


def test_saved_and_compacted_tapes_cut_anywhere_keep_every_exchange_before_the_cut(
    small_tape: Path, tmp_path: Path
):
    saved, compacted = tmp_path / "saved.tape", tmp_path / "compacted.tape"
    streamtape.open_tape(small_tape).save(saved)
    compact(small_tape, output=compacted)
    for path in (saved, compacted):
        good, cuts = _cuts_keeping_flushed_records(path)
        assert good == cuts
        assert len(_block_ends(path.read_bytes())) >= 2  # a block per exchange, not one for the whole tape


def test_cut_tape_file_opens_with_what_it_held_or_names_itself(small_tape: Path, tmp_path: Path):
    data = small_tape.read_bytes()
    full = list(streamtape.iter_records(small_tape))
    blocks = _records_in_blocks(data)
    first_block = min(blocks)
    cut = tmp_path / "cut.tape"
    for n in range(len(data)):
        cut.write_bytes(data[:n])
        try:
            stream = streamtape.iter_records(cut)
            records = list(stream)
        except streamtape.TapeError as exc:
            assert str(cut) in str(exc)
            assert n < first_block, f"cut at {n}: the header's block was whole, yet: {exc}"
            continue
        assert records == full[: len(records)], f"cut at {n}: records differ from the original's prefix"
        assert stream.incomplete == (n != len(data)), f"cut at {n}"
        whole = max((held for end, held in blocks.items() if end <= n), default=0)
        assert len(records) >= whole, f"cut at {n}: lost records of complete blocks"
        tape = streamtape.open_tape(cut)  # the model builds from any prefix too
        assert tape.incomplete


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
    """A 1.7 writer may append fields and add record tags; a 1.1 reader keeps what it knows."""
    header = msgspec.msgpack.encode(["header", "streamtape", [1, 7], "w", 5, {}, None, None, "future field"])
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
        tape = TapeFile(str(path), _header(run=run))
        _record_exchange(tape, 1, [f"run {run}".encode()])
        tape.close()
    read = streamtape.open_tape(path)
    assert [h.meta for h in read.segments] == [{"run": 1}, {"run": 2}]
    assert [(e.segment, e.id, e.chunks[0].data) for e in read.exchanges] == [
        (0, 1, b"run 1"),
        (1, 1, b"run 2"),
    ]
    assert not read.incomplete


@pytest.mark.parametrize("cut", [3, 40, 200])
def test_appending_after_a_crash_mends_the_cut_frame_and_keeps_its_whole_records(tmp_path: Path, cut: int):
    path = tmp_path / "crashed.tape"
    tape = TapeFile(str(path), _header())
    _record_exchange(tape, 1, [b"kept"])
    tape.write([Request(2, 5000, "GET", "http://h/open", [], b""), Response(2, 1, 200, "HTTP/1.1", [])])
    tape.flush()
    size = tape.size
    tape.write([Chunk(2, 2, os.urandom(500))])  # a block (incompressible: ~500 bytes) that the crash cuts
    tape.flush()
    crashed = path.read_bytes()[: min(path.stat().st_size, size + cut)]  # killed: the frame never ended
    path = tmp_path / "copy.tape"  # (the first writer still holds its lock: a killed process would not)
    path.write_bytes(crashed)
    after = TapeFile(str(path), _header(after="crash"))
    _record_exchange(after, 1, [b"new"])
    after.close()
    read = streamtape.open_tape(path)
    assert [h.meta for h in read.segments] == [{}, {"after": "crash"}]
    assert [(e.request.url, [c.data for c in e.chunks], e.end.outcome) for e in read.exchanges] == [
        ("http://h/v1/x", [b"kept"], "complete"),
        ("http://h/open", [], "incomplete"),  # its cut chunk is gone; its request and head are kept
        ("http://h/v1/x", [b"new"], "complete"),
    ]
    assert read.incomplete  # exchange 2 never ended, and the tape says so


def test_appending_reads_only_the_last_frame(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Opening a large tape to append costs its last frame, not its size."""
    path = tmp_path / "big.tape"
    tape = TapeFile(str(path), _header(), frame_limit=64 * 1024)
    for x in range(1, 200):
        _record_exchange(tape, x, [os.urandom(2000)])
    tape.close()
    size = path.stat().st_size
    assert size > 300_000
    feeds: list[int] = []
    real_feed = TapeDecoder.feed

    def counting_feed(self: TapeDecoder, data: bytes) -> list:
        feeds.append(len(data))
        return real_feed(self, data)

    monkeypatch.setattr(TapeDecoder, "feed", counting_feed)
    TapeFile(str(path), _header(again=True)).close()
    assert 0 < sum(feeds) < 100_000  # one frame of ~64 KiB of content, not the ~400 KB file


def test_appending_to_a_file_that_is_not_a_tape_is_refused_and_leaves_it_alone(tmp_path: Path):
    path = tmp_path / "notes.txt"
    path.write_text("precious notes\n")
    with pytest.raises(streamtape.TapeError, match=r"notes\.txt: refusing to append: not a tape"):
        TapeFile(str(path), _header())
    assert path.read_text() == "precious notes\n"


def test_save_writes_a_tape_equal_to_the_original(small_tape: Path, tmp_path: Path):
    tape = streamtape.open_tape(small_tape)
    copy = tmp_path / "copy.tape"
    tape.save(copy)
    again = streamtape.open_tape(copy)
    assert again.header == tape.header
    assert [list(e.records()) for e in again.exchanges] == [list(e.records()) for e in tape.exchanges]
    assert oct(os.stat(copy).st_mode & 0o777) == "0o600"


def test_compact_keeps_every_record_and_makes_the_tape_smaller(tmp_path: Path):
    live, compacted = tmp_path / "live.tape", tmp_path / "compacted.tape"
    events = [b'data: {"choices":[{"delta":{"content":"w%d"}}]}\n\n' % i for i in range(200)]
    tape = TapeFile(str(live), _header(), level=1)
    for x in (1, 2, 3):
        for i in range(0, 200, 10):  # a stream flushed piece by piece, as a recorder does
            tape.write(
                [Request(x, x, "GET", "http://h/", [], b""), Response(x, 1, 200, "HTTP/1.1", [])]
                if i == 0
                else []
            )
            tape.write([Chunk(x, 2 + i + j, events[i + j]) for j in range(10)])
            tape.flush()
        tape.write([End(x, 999, "complete")])
        tape.flush()
    tape.close()
    compact(live, output=compacted)
    assert list(streamtape.iter_records(compacted)) == list(streamtape.iter_records(live))
    assert compacted.stat().st_size < live.stat().st_size
    assert oct(compacted.stat().st_mode & 0o777) == "0o600"
    assert not list(tmp_path.glob("*.tmp"))


def test_compact_refuses_an_incomplete_tape(small_tape: Path, tmp_path: Path):
    cut = tmp_path / "cut.tape"
    cut.write_bytes(small_tape.read_bytes()[:-10])
    with pytest.raises(streamtape.TapeError, match=r"cut\.tape: not compacting an incomplete tape"):
        compact(cut)


@pytest.mark.parametrize("x", [1, 200, 70_000])
def test_the_writers_fast_chunk_encoding_is_byte_identical_to_the_codecs(x: int):
    """The recorder's hot path packs chunk records with ``struct``; they must be the canonical bytes."""
    from streamtape.record.pipeline import chunk_header

    prefix, packers = chunk_header(x)
    for t in (65_536, 2**32 - 1, 2**32, 10**15):
        for n in (0, 255, 256, 65_535, 65_536, 100_000):
            data = os.urandom(n)
            pack, t_code, n_code, fixed = packers[
                (0 if n < 256 else 1 if n < 65_536 else 2) + (3 if t >= 2**32 else 0)
            ]
            expected = bytearray()
            encode_record(Chunk(x, t, data), expected)
            assert pack(fixed + n, prefix, t_code, t, n_code, n) + data == bytes(expected), (t, n)
