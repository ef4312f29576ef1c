"""The reader against hostile tapes: deep nesting, record-count bombs, frames dropped or repeated, values a
replay cannot use, and random mutation of real tapes. Only ``TapeError`` may escape, in bounded time and
memory; damage that leaves a tape readable is reported, never a clean tape.

The crafted files come from ``tests/hostile.py`` (generated here, never committed). Time is never
asserted; hangs are caught by generous guards (a subprocess timeout, pytest-timeout).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import hostile
import msgspec
import pytest

import streamtape
from streamtape.format.codec import TapeDecoder, decode_record
from streamtape.format.encoder import TapeEncoder
from streamtape.format.records import MAX_DEPTH, MAX_FRAME_RECORDS, MAX_HEADERS, MAX_TIME_NS, Chunk
from streamtape.storage.tapefile import TapeFile

ROOT = Path(__file__).resolve().parents[1]
#: How long a child process may run before the test calls it a hang (a guard, never a measurement).
HANG_GUARD_S = 100.0


def write(tmp_path: Path, data: bytes, name: str = "hostile.tape") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def cli(*args: str, timeout: float = HANG_GUARD_S) -> subprocess.CompletedProcess[str]:
    """The real console entry point in a child process; its stdout is thrown away (``cat`` may be long)."""
    return subprocess.run(
        [sys.executable, "-c", "from streamtape.cli import main; main()", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        timeout=timeout,
    )


def assert_one_line_exit_2(result: subprocess.CompletedProcess[str], path: Path, *words: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"streamtape: error: {path}: "), result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0], lines[0]


def read_all(path: Path) -> tuple[streamtape.RecordStream, list[object], streamtape.Tape]:
    stream = streamtape.iter_records(path)
    return stream, list(stream), streamtape.open_tape(path)


# -- deep nesting ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "build",
    [hostile.deep_nesting, hostile.deep_meta, hostile.deep_tail],
    ids=["record-body", "header-meta", "field-past-the-known-ones"],
)
def test_deeply_nested_record_is_a_corrupt_tape_error_not_a_recursion_error(
    tmp_path: Path, build: Callable[[], bytes]
):
    path = write(tmp_path, build())
    with pytest.raises(streamtape.CorruptTapeError, match=r"hostile\.tape: record #\d"):
        list(streamtape.iter_records(path))
    with pytest.raises(streamtape.CorruptTapeError):
        streamtape.open_tape(path)


def test_deeply_nested_first_record_is_not_a_tape(tmp_path: Path):
    path = write(tmp_path, hostile.deep_nesting_first())
    with pytest.raises(streamtape.NotATapeError):
        streamtape.open_tape(path)


def test_deeply_nested_unknown_record_is_skipped_unread(tmp_path: Path):
    """A record of a newer minor version is skipped by its tag: its fields are never decoded."""
    tape = streamtape.open_tape(write(tmp_path, hostile.deep_unknown()))
    assert [e.end.outcome for e in tape.exchanges] == ["complete"]


def test_unknown_records_are_skipped_without_a_loose_decode(monkeypatch: pytest.MonkeyPatch):
    calls: list[int] = []
    real = msgspec.msgpack.decode

    def counting(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return real(*args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(msgspec.msgpack, "decode", counting)
    decoder = TapeDecoder()
    records = decoder.feed(hostile.unknown_bomb(1, 50_000)) + decoder.finish()
    assert len(records) == 3 and decoder.count == 50_003
    assert calls == []


def test_nesting_in_a_headers_meta_is_refused_past_the_depth_limit():
    def header(depth: int) -> bytes:  # meta = {"m": [[...[nil]...]]} with ``depth`` arrays
        fields = hostile.pack("header", "streamtape", [1, 1], "w", 0)
        return b"\x96" + fields[1:] + b"\x81\xa1m" + b"\x91" * depth + b"\xc0"

    # the record's array, the meta map, then the arrays: MAX_DEPTH levels in all is the most allowed
    assert decode_record(header(MAX_DEPTH - 2), 0) is not None
    with pytest.raises(streamtape.CorruptTapeError, match=f"more than {MAX_DEPTH} levels"):
        decode_record(header(MAX_DEPTH - 1), 0)


@pytest.mark.parametrize("verb", ["info", "cat", "diagnose"])
def test_deeply_nested_tape_prints_one_line_and_exits_2_in_every_verb(tmp_path: Path, verb: str):
    path = write(tmp_path, hostile.deep_nesting())
    assert_one_line_exit_2(cli(verb, str(path)), path, "record #1")


# -- record-count bombs -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The issue's bomb: three frames of 7.86 million 17-byte records each (23.6 million), about 37 KB."""
    path = tmp_path_factory.mktemp("bomb") / "bomb.tape"
    path.write_bytes(hostile.record_bomb())
    assert path.stat().st_size < 64_000
    return path


def test_record_bomb_is_a_tape_limit_error_from_iter_records_and_open_tape(bomb: Path):
    stream = streamtape.iter_records(bomb)
    seen = 0
    with pytest.raises(streamtape.TapeLimitError, match=r"bomb\.tape: the frame at byte 32 holds over"):
        for _ in stream:
            seen += 1
    assert seen <= MAX_FRAME_RECORDS  # it stopped in the first frame
    with pytest.raises(streamtape.TapeLimitError, match="holds over 1048576 records"):
        streamtape.open_tape(bomb)


def test_record_bomb_is_one_line_and_exit_2_in_every_cli_verb(bomb: Path, tmp_path: Path):
    compacted = str(tmp_path / "compacted.tape")
    verbs = [["info"], ["cat"], ["diagnose"], ["play", "--speed", "inf"], ["compact", "--output", compacted]]
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda verb: cli(*verb, str(bomb)), verbs))
    for result in results:
        assert_one_line_exit_2(result, bomb, "holds over 1048576 records")


MEASURE = """
import sys, streamtape
def peak():  # this process's high-water mark since exec (ru_maxrss would count the forking parent's too)
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) << 10 for line in f if line.startswith("VmHWM:"))
counts = []
for path in sys.argv[1:]:
    counts.append(sum(1 for _ in streamtape.iter_records(path, max_records=None)))
    counts.append(peak())
print(counts)
"""


def test_iter_records_memory_does_not_grow_with_the_number_of_records(tmp_path: Path):
    """Records stream as blocks decompress: 3 million records in 3 frames cost what 50,000 cost (the issue's
    goal: under 100 MB on the bomb). Peak memory is the child process's own high-water mark."""
    small = write(tmp_path, hostile.record_bomb(1, 50_000), "small.tape")
    large = write(tmp_path, hostile.record_bomb(3, 1_000_000), "large.tape")
    result = subprocess.run(
        [sys.executable, "-c", MEASURE, str(small), str(large)],
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
    )
    assert result.returncode == 0, result.stderr
    n_small, peak_small, n_large, peak_large = json.loads(result.stdout)
    assert (n_small, n_large) == (50_003, 3_000_003)
    assert peak_large - peak_small < 16 << 20, (peak_small, peak_large)
    assert peak_large < 100 << 20


def test_open_tape_stops_at_the_records_it_may_hold(tmp_path: Path):
    path = write(tmp_path, hostile.record_bomb(3, 40_000))
    with pytest.raises(streamtape.TapeLimitError, match=r"over 100000 records .*max_records"):
        streamtape.open_tape(path, max_records=100_000)
    with pytest.raises(streamtape.TapeLimitError, match=r"over 1000000 bytes"):
        streamtape.open_tape(path, max_bytes=1_000_000)
    tape = streamtape.open_tape(path, max_records=None, max_bytes=None)
    assert len(tape.exchanges[0].chunks) == 120_000


def test_iter_records_stops_at_max_records(tmp_path: Path):
    path = write(tmp_path, hostile.record_bomb(2, 30_000))
    assert sum(1 for _ in streamtape.iter_records(path, max_records=60_003)) == 60_003
    with pytest.raises(streamtape.TapeLimitError, match="over 60002 records"):
        list(streamtape.iter_records(path, max_records=60_002))


def test_a_frame_with_a_bad_checksum_streams_its_records_then_raises_and_open_tape_returns_nothing(
    tmp_path: Path,
):
    frames = hostile.five_frames()
    frames[2] = frames[2][:-1] + bytes([frames[2][-1] ^ 0xFF])  # the frame's checksum, its last byte
    path = write(tmp_path, b"".join(frames))
    seen: list[object] = []
    with pytest.raises(streamtape.CorruptTapeError, match="checksum"):
        for record in streamtape.iter_records(path):
            seen.append(record)
    assert sum(isinstance(r, Chunk) for r in seen) == 2  # the bad frame's chunks came before the error
    with pytest.raises(streamtape.CorruptTapeError, match="checksum"):
        streamtape.open_tape(path)


def test_a_record_garbled_by_a_corrupt_frame_is_reported_as_the_frame(tmp_path: Path):
    """A flipped literal decodes to a broken record before the checksum is read: the frame is to blame."""
    frames = hostile.five_frames()
    damaged = bytearray(frames[1])
    at = damaged.index(b"POST")
    damaged[at] ^= 0x80  # the method string no longer UTF-8: the record fails, then the checksum does
    frames[1] = bytes(damaged)
    offset = len(frames[0]) + 32
    path = write(tmp_path, b"".join(frames))
    with pytest.raises(streamtape.CorruptTapeError, match=f"corrupt zstd frame at byte {offset}"):
        streamtape.open_tape(path)


# -- the frame sequence ----------------------------------------------------------------------------------


def test_a_missing_middle_frame_is_reported_as_damage_not_a_clean_tape(tmp_path: Path):
    frames = hostile.five_frames()
    at = sum(map(len, frames[:2]))  # where the marker of frame #3 lands once #2 is gone
    stream, _, tape = read_all(write(tmp_path, hostile.missing_frame(2)))
    assert stream.incomplete and tape.incomplete
    message = f"frame #2 is missing (or its marker) before the marker of frame #3 at byte {at}"
    assert [d.message for d in stream.damage] == [message]
    assert tape.damage == [message] and message in (tape.problem or "")
    (exchange,) = tape.exchanges
    assert [c.data for c in exchange.chunks] == [b"data: c\n\n", b"data: d\n\n", b"data: [DONE]\n\n"]
    assert exchange.damaged and "frame #2 is missing" in exchange.gaps[0].reason
    assert streamtape.diagnose(exchange).verdict != "complete"


def test_a_repeated_frame_is_skipped_and_reported(tmp_path: Path):
    original = list(streamtape.iter_records(write(tmp_path, b"".join(hostile.five_frames()), "ok.tape")))
    stream, records, tape = read_all(write(tmp_path, hostile.repeated_frame(2)))
    assert records == original
    assert stream.incomplete and tape.incomplete
    assert "is numbered #2 where #3 was next: a repeated" in (tape.problem or "")
    assert not tape.exchanges[0].damaged  # nothing was lost: the copy held records already read


def test_swapped_frames_are_damage(tmp_path: Path):
    _, _, tape = read_all(write(tmp_path, hostile.swapped_frames(2)))
    assert tape.incomplete and len(tape.damage) == 2
    assert tape.exchanges[0].damaged


def test_a_missing_frame_holding_a_request_drops_its_orphans_and_says_so(tmp_path: Path):
    frames = hostile.framed(
        [
            [hostile.header(), *hostile.exchange(1)],
            [hostile.request(2, 5_000), hostile.response(2)],
            [hostile.chunk(2, 3_000), hostile.end(2)],
            hostile.exchange(3, 9_000),
        ]
    )
    tape = streamtape.open_tape(write(tmp_path, b"".join(frames[:1] + frames[2:])))
    assert [e.id for e in tape.exchanges] == [1, 3]
    assert tape.incomplete
    assert "2 records after missing frames were dropped" in (tape.problem or "")
    assert tape.damage[-1].startswith("2 records after missing frames were dropped")


def test_a_marker_without_its_frame_is_a_missing_frame(tmp_path: Path):
    frames = hostile.five_frames()
    data = b"".join(frames[:2]) + frames[2][:32] + b"".join(frames[3:])  # frame #2's marker, not its frame
    tape = streamtape.open_tape(write(tmp_path, data))
    assert tape.incomplete and "frame #2 is missing: its marker at byte" in (tape.problem or "")
    assert tape.exchanges[0].damaged


def test_a_repeated_first_frame_is_damage_not_a_new_segment(tmp_path: Path):
    frames = hostile.five_frames()
    tape = streamtape.open_tape(write(tmp_path, b"".join([*frames, frames[0]])))
    assert len(tape.segments) == 1
    assert tape.incomplete and "numbered #0 where #5 was next" in (tape.problem or "")


def test_concatenated_tapes_read_as_segments_without_damage(tmp_path: Path):
    stream, _, tape = read_all(write(tmp_path, hostile.concatenated()))
    assert len(tape.segments) == 2 and len(tape.exchanges) == 2
    assert not stream.incomplete and not tape.incomplete and tape.damage == []


def test_frames_without_markers_are_not_checked(tmp_path: Path):
    """Format 1.0 tapes have no markers: they read as they always did, frames repeated or not."""
    frames = [
        hostile.frame(hostile.header((1, 0)), *hostile.exchange(1)),
        hostile.frame(*hostile.exchange(2)),
    ]
    tape = streamtape.open_tape(write(tmp_path, b"".join(frames)))
    assert not tape.incomplete and len(tape.exchanges) == 2


def test_appended_and_mended_tapes_have_no_damage(tmp_path: Path):
    path = tmp_path / "appended.tape"
    for run in range(3):
        tape = TapeFile(str(path), msgspec.msgpack.decode(hostile.header(), type=streamtape.Header))
        tape.write(
            [msgspec.msgpack.decode(b, type=streamtape.format.Record) for b in hostile.exchange(run + 1)]
        )
        tape.end_frame()
        tape.write([msgspec.msgpack.decode(hostile.request(9, 99_000), type=streamtape.format.Record)])
        tape.flush()  # a frame left open...
        size = path.stat().st_size
        tape.close()
        if run < 2:  # ...and cut by a crash: the next writer mends it under the same sequence number
            with open(path, "r+b") as f:
                f.truncate(size - 3)
    read = streamtape.open_tape(path)
    assert len(read.segments) == 3
    assert read.damage == [], read.problem


@pytest.mark.parametrize("sample", sorted((ROOT / "samples").glob("*.tape")), ids=lambda p: p.stem)
def test_every_middle_frame_removed_or_repeated_from_a_real_tape_is_noticed(tmp_path: Path, sample: Path):
    """The issue's experiment: a middle frame removed or duplicated opened clean, verdict complete."""
    encoder = TapeEncoder(level=1)
    pieces = []
    for record in streamtape.iter_records(sample):
        encoder.add(record)
        if isinstance(record, Chunk):
            pieces.append(encoder.end_frame())
    pieces.append(encoder.end_frame())
    assert len(pieces) >= 4
    for i in range(1, len(pieces) - 1):
        for name, changed in (
            ("removed", pieces[:i] + pieces[i + 1 :]),
            ("repeated", pieces[: i + 1] + pieces[i:]),
        ):
            path = write(tmp_path, b"".join(changed), f"{name}-{i}.tape")
            tape = streamtape.open_tape(path)
            assert tape.incomplete and tape.damage, f"frame {i} {name}: opened clean"
            if name == "removed":
                assert any(e.damaged for e in tape.exchanges), f"frame {i} removed: no exchange marked"


def test_a_tape_cut_at_every_offset_is_a_prefix_never_damage(tmp_path: Path):
    """A multi-exchange tape of many frames, cut at every byte: each cut reads as a prefix of the records,
    flagged incomplete, and is never mistaken for a missing or repeated frame."""
    pieces = max(hostile.sample_pieces(), key=len)  # the sample of the most frames
    data = b"".join(pieces)
    frame_ends = {sum(map(len, pieces[:i])) for i in range(len(pieces) + 1)}
    decoder = TapeDecoder(streaming=True)
    full = list(decoder.feed_iter(data)) + decoder.finish()
    assert len(pieces) >= 6 and not decoder.incomplete
    for n in range(1, len(data)):
        decoder = TapeDecoder(streaming=True)
        try:
            records = list(decoder.feed_iter(data[:n])) + decoder.finish()
        except streamtape.TapeError as exc:
            assert "before its header" in str(exc) or "not a tape" in str(exc), f"cut at {n}: {exc}"
            continue
        assert records == full[: len(records)], f"cut at {n}"
        assert decoder.damage == [], f"cut at {n}: {decoder.problem}"
        # (a cut between two frames leaves a shorter tape: no reader can tell it from one that ended there)
        assert decoder.incomplete or n in frame_ends, f"cut at {n}"
    for n in range(len(data) // 2, len(data), 97):  # and the model builds from those prefixes too
        tape = streamtape.open_tape(write(tmp_path, data[:n]))
        assert tape.incomplete and tape.damage == []


# -- times and strings -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(hostile.bad_times()))
def test_a_time_past_a_day_or_negative_is_a_corrupt_tape_error_at_open(tmp_path: Path, name: str):
    path = write(tmp_path, hostile.bad_times()[name])
    with pytest.raises(
        streamtape.CorruptTapeError, match=r"record #\d \((request|response|chunk|end|gap)\) has"
    ):
        streamtape.open_tape(path)
    with pytest.raises(streamtape.CorruptTapeError):
        list(streamtape.iter_records(path))


def test_the_time_cap_is_a_day_by_default_and_configurable(tmp_path: Path):
    x = 1
    at_cap = write(
        tmp_path,
        hostile.tape(hostile.header(), hostile.request(x), hostile.response(x), hostile.end(x, MAX_TIME_NS)),
        "a.tape",
    )
    assert streamtape.open_tape(at_cap).exchanges[0].end.t_ns == MAX_TIME_NS
    two_days = write(
        tmp_path,
        hostile.tape(hostile.header(), hostile.request(x), hostile.end(x, 2 * MAX_TIME_NS)),
        "b.tape",
    )
    with pytest.raises(streamtape.CorruptTapeError, match="past the sanity cap of a day"):
        streamtape.open_tape(two_days)
    assert (
        streamtape.open_tape(two_days, max_time_ns=3 * MAX_TIME_NS).exchanges[0].end.t_ns == 2 * MAX_TIME_NS
    )
    assert len(list(streamtape.iter_records(two_days, max_time_ns=3 * MAX_TIME_NS))) == 3


@pytest.mark.parametrize("name", list(hostile.bad_strings()))
def test_a_string_a_replay_cannot_send_is_a_corrupt_tape_error_at_open(tmp_path: Path, name: str):
    path = write(tmp_path, hostile.bad_strings()[name])
    with pytest.raises(streamtape.CorruptTapeError, match=r"not (ASCII|latin-1)"):
        streamtape.open_tape(path)


def test_latin1_headers_are_kept_byte_for_byte(tmp_path: Path):
    headers = [["x-\u00e9", "caf\u00e9 \u00ff"]]
    tape = streamtape.open_tape(
        write(
            tmp_path, hostile.tape(hostile.header(), hostile.request(1), hostile.response(1, headers=headers))
        )
    )
    assert tape.exchanges[0].response is not None
    assert tape.exchanges[0].response.headers == [("x-\u00e9", "caf\u00e9 \u00ff")]


def test_a_response_declaring_too_many_headers_is_refused_before_it_is_decoded():
    body = hostile.response(headers=[["a", "b"]] * (MAX_HEADERS + 1))
    with pytest.raises(streamtape.TapeLimitError, match=f"declares {MAX_HEADERS + 1} headers"):
        decode_record(body, 2)


def test_a_header_record_over_a_mebibyte_is_refused(tmp_path: Path):
    path = write(tmp_path, hostile.tape(hostile.header(meta={"pad": "x" * (1 << 20)})))
    with pytest.raises(streamtape.TapeError):
        streamtape.open_tape(path)
    second = hostile.tape(hostile.header(), hostile.header(meta={"pad": "x" * (1 << 20)}))
    with pytest.raises(streamtape.TapeLimitError, match="limit of a header"):
        streamtape.open_tape(write(tmp_path, second, "second.tape"))


# -- random mutation of real tapes -----------------------------------------------------------------------


def test_mutated_real_tapes_raise_only_tape_errors_within_bounded_memory():
    """Hypothesis mutates the sample tapes (bytes flipped, inserted, deleted, cut; frames dropped, repeated,
    swapped) in a child process whose address space is capped 768 MiB above its start: only ``TapeError``
    escapes, and a tape with frames dropped or repeated is never clean. A hang is caught by the timeout."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "hostile.py"), "--fuzz", "2500", "768"],
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    assert "only TapeError" in result.stdout
