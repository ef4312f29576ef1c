"""The flight recorder: keep only failures, sample, opt out, scrub, spool to a directory, cap what it keeps,
and drop (never block) when the disk cannot keep up."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import httpx2
import msgspec
import pytest
from helpers import CHAT_BODY, CHAT_PATH, decompressed, events

import streamtape
import streamtape.httpx2
from streamtape.emulator import Emulator
from streamtape.format.records import Header, Record, Request, Response
from streamtape.storage.sinks import FileSink


def _post(client: httpx2.Client, url: str) -> bytes:
    try:
        return client.post(url, content=CHAT_BODY).read()
    except httpx2.TransportError:
        return b""


def _record(
    target: Path | Any, urls: list[str], **options: Any
) -> tuple[streamtape.httpx2.RecordingTransport, list[bytes]]:
    transport = streamtape.httpx2.RecordingTransport(target, **options)
    with httpx2.Client(transport=transport) as client:
        bodies = [_post(client, url) for url in urls]
    return transport, bodies


def test_keep_failed_writes_only_errors_error_statuses_and_truncated_streams(
    emulator: Emulator, tmp_path: Path
):
    urls = {
        "complete": emulator.url(events=4),
        "reset": emulator.url(events=8, reset_at=3),
        "status": emulator.url(status=500),
        "truncated": emulator.url(events=4, drop_final=True),
        "complete again": emulator.url(events=6),
    }
    transport, _ = _record(tmp_path / "t.tape", [u + CHAT_PATH for u in urls.values()], keep="failed")
    tape = streamtape.open_tape(tmp_path / "t.tape")
    kept = [(e.response.status_code if e.response else None, e.end.outcome) for e in tape.exchanges]
    assert kept == [(200, "error"), (500, "complete"), (200, "complete")]
    assert streamtape.diagnose(tape.exchanges[2]).verdict == "truncated"
    stats = transport.stats
    assert (stats.seen, stats.recorded, stats.discarded, stats.dropped) == (5, 3, 2, 0)


def test_keep_failed_writes_an_exchange_past_its_memory_bound_as_if_it_failed(
    emulator: Emulator, tmp_path: Path
):
    """A healthy stream too long to hold is written, never lost."""
    url = emulator.url(events=400) + CHAT_PATH
    transport, bodies = _record(tmp_path / "t.tape", [url], keep="failed", hold_bytes=4096)
    (exchange,) = streamtape.open_tape(tmp_path / "t.tape").exchanges
    assert exchange.body == bodies[0] == b"".join(events(events=400))
    assert exchange.end.outcome == "complete"
    assert transport.stats.recorded == 1 and transport.stats.discarded == 0


def test_sampling_records_about_the_asked_fraction_and_repeats_with_a_seed(
    emulator: Emulator, tmp_path: Path
):
    url = emulator.url(events=1) + CHAT_PATH
    counts = []
    for run in range(2):
        transport, _ = _record(tmp_path / f"{run}.tape", [url] * 1000, sample=0.2, seed=7)
        stats = transport.stats
        assert stats.seen == 1000 and stats.recorded + stats.sampled_out == 1000
        counts.append(stats.recorded)
        assert len(streamtape.open_tape(tmp_path / f"{run}.tape").exchanges) == stats.recorded
    assert counts[0] == counts[1]  # the same seed, the same choice
    assert 200 - 4 * 13 <= counts[0] <= 200 + 4 * 13  # binomial(1000, 0.2): sd ~12.6


def test_a_request_opts_out_by_context_or_by_extension(emulator: Emulator, tmp_path: Path):
    url = emulator.url(events=2) + CHAT_PATH
    transport = streamtape.httpx2.RecordingTransport(tmp_path / "t.tape")
    with httpx2.Client(transport=transport) as client:
        client.post(url, content=b'{"stream": true, "n": 1}')
        with streamtape.not_recorded():
            secret = client.post(url, content=b'{"stream": true, "n": "private"}').read()
        client.post(url, content=b'{"stream": true, "n": 3}', extensions={"streamtape.record": False})
        client.post(url, content=b'{"stream": true, "n": 4}')
    assert secret.startswith(b"data: ")  # the client got its answer
    bodies = [e.request.body for e in streamtape.open_tape(tmp_path / "t.tape").exchanges]
    assert bodies == [b'{"stream": true, "n": 1}', b'{"stream": true, "n": 4}']
    assert b"private" not in decompressed(tmp_path / "t.tape")
    assert transport.stats.sampled_out == 2


def test_before_record_scrubs_the_request_and_skips_what_it_refuses(emulator: Emulator, tmp_path: Path):
    seen_heads: list[int | None] = []

    def scrub(request: Request, response: Response | None) -> tuple[Request, Response | None] | None:
        seen_heads.append(response.status_code if response else None)
        if b"skip me" in request.body:
            return None
        return msgspec.structs.replace(request, body=b"[prompt removed]"), response

    urls = [emulator.url(events=2) + CHAT_PATH, emulator.url(status=429) + CHAT_PATH]
    transport = streamtape.httpx2.RecordingTransport(tmp_path / "t.tape", before_record=scrub)
    with httpx2.Client(transport=transport) as client:
        client.post(urls[0], content=b'{"prompt": "my card is 4111"}')
        client.post(urls[0], content=b'{"prompt": "skip me"}')
        client.post(urls[1], content=b'{"prompt": "rate limited"}')
    tape = streamtape.open_tape(tmp_path / "t.tape")
    assert [e.request.body for e in tape.exchanges] == [b"[prompt removed]", b"[prompt removed]"]
    assert [e.response.status_code for e in tape.exchanges if e.response] == [200, 429]
    assert b"4111" not in decompressed(tmp_path / "t.tape")
    assert seen_heads == [200, 200, 429]
    assert transport.stats.discarded == 1


def test_before_record_chunk_scrubs_stream_bytes_on_the_writers_thread(emulator: Emulator, tmp_path: Path):
    threads: set[str] = set()

    def scrub(request: Request, data: bytes) -> bytes:
        threads.add(threading.current_thread().name)
        return data.replace(b"data:", b"DATA:")

    _, bodies = _record(tmp_path / "t.tape", [emulator.url(events=5) + CHAT_PATH], before_record_chunk=scrub)
    (exchange,) = streamtape.open_tape(tmp_path / "t.tape").exchanges
    assert bodies[0] == b"".join(events(events=5))  # the client saw the real stream
    assert exchange.body == bodies[0].replace(b"data:", b"DATA:")
    assert threads == {"streamtape-writer"}


def test_a_hook_that_raises_records_nothing_of_its_exchange(
    emulator: Emulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    def broken(request: Request, data: bytes) -> bytes:
        raise ValueError("cannot parse")

    url = emulator.url(events=3) + CHAT_PATH
    transport, bodies = _record(tmp_path / "t.tape", [url], before_record_chunk=broken)
    assert bodies[0] == b"".join(events(events=3))
    tape = streamtape.open_tape(tmp_path / "t.tape")
    assert all(not e.chunks for e in tape.exchanges)
    assert transport.stats.errors == {"hook": 1}
    assert sum("before_record_chunk raised ValueError" in r.getMessage() for r in caplog.records) == 1


class _GatedSink:
    """A sink whose first write waits for the test: a disk that cannot keep up."""

    def __init__(self, inner: FileSink, gate: threading.Event) -> None:
        self.inner, self.gate = inner, gate

    @property
    def buffer(self) -> bytearray | None:
        return self.inner.buffer

    def spill(self) -> None:
        self.inner.spill()

    def write(self, records: list[Record]) -> None:
        self.gate.wait(30)
        self.inner.write(records)

    def flush(self) -> None:
        self.inner.flush()

    def idle(self) -> None:
        self.inner.idle()

    def accepts(self) -> bool:
        return True

    def close(self) -> None:
        self.inner.close()


def test_a_writer_that_cannot_keep_up_drops_chunks_marks_a_gap_and_never_blocks_the_stream(
    emulator: Emulator, tmp_path: Path
):
    gate = threading.Event()
    path = tmp_path / "t.tape"

    def sink(header: Header) -> _GatedSink:
        return _GatedSink(FileSink(str(path), header), gate)

    transport = streamtape.httpx2.RecordingTransport(sink, max_pending_bytes=1)  # the smallest queue
    with httpx2.Client(transport=transport) as client:
        with client.stream("POST", emulator.url(events=3000) + CHAT_PATH, content=CHAT_BODY) as response:
            pieces = list(response.iter_raw())
        gate.set()  # the stream finished while the writer was stuck: the caller never waited for it
    assert b"".join(pieces) == b"".join(events(events=3000))
    (exchange,) = streamtape.open_tape(path).exchanges
    stats = transport.stats
    assert stats.dropped > 0
    assert sum(g.records for g in exchange.gaps) == stats.dropped
    assert len(exchange.chunks) + stats.dropped == len(pieces)
    assert len(exchange.body) + sum(g.bytes for g in exchange.gaps) == len(b"".join(pieces))
    assert exchange.end.outcome == "complete"
    diagnosis = streamtape.diagnose(exchange)
    assert diagnosis.verdict == "error" and any("lost" in e for e in diagnosis.errors)


class _RefusingSink(_GatedSink):
    """A sink that refuses its first exchange (a directory over its cap that could not make room)."""

    def __init__(self, inner: FileSink) -> None:
        super().__init__(inner, threading.Event())
        self.gate.set()
        self.asked = 0

    def accepts(self) -> bool:
        self.asked += 1
        return self.asked > 1


def test_an_exchange_the_sink_refuses_is_counted_once_and_its_events_are_taken_not_kept(
    emulator: Emulator, tmp_path: Path
):
    path = tmp_path / "t.tape"
    transport = streamtape.httpx2.RecordingTransport(
        lambda header: _RefusingSink(FileSink(str(path), header))
    )
    url = emulator.url(events=400) + CHAT_PATH
    with httpx2.Client(transport=transport) as client:
        with client.stream("POST", url, content=CHAT_BODY) as response:
            pipeline = transport.recorder.pipeline
            assert pipeline is not None
            pieces = response.iter_raw()
            head = [next(pieces) for _ in range(20)]
            assert transport.flush()
            (refused,) = pipeline._exchanges.values()  # mid-stream
            assert refused.refused and refused.events == []  # taken by the writer and dropped, not held
            first = b"".join(head + list(pieces))
        second = client.post(url, content=CHAT_BODY).read()
    assert first == second == b"".join(events(events=400))
    stats = transport.stats
    assert (stats.seen, stats.dropped, stats.recorded, stats.discarded, stats.errors) == (2, 1, 1, 0, {})
    (exchange,) = streamtape.open_tape(path).exchanges
    assert exchange.body == second and exchange.end.outcome == "complete"


def test_a_directory_target_writes_one_tape_per_exchange_named_by_time_status_and_outcome(
    emulator: Emulator, tmp_path: Path
):
    spool = tmp_path / "spool"
    urls = [emulator.url(events=2), emulator.url(status=503), emulator.url(events=9, reset_at=4)]
    _record(f"{spool}/", [u + CHAT_PATH for u in urls])
    names = sorted(os.listdir(spool))
    assert [n.rsplit("-", 2)[1:] for n in names] == [
        ["200", "complete.tape"],
        ["503", "complete.tape"],
        ["200", "error.tape"],
    ]
    assert names == sorted(names, key=lambda n: n.split("-")[0])  # the name starts with the time
    for name in names:
        tape = streamtape.open_tape(spool / name)
        assert len(tape.exchanges) == 1 and not tape.incomplete
    assert oct((spool / names[0]).stat().st_mode & 0o777) == "0o600"


def test_retention_deletes_the_oldest_tapes_past_max_bytes(emulator: Emulator, tmp_path: Path):
    spool = tmp_path / "spool"
    url = emulator.url(events=30) + CHAT_PATH
    _record(f"{spool}/", [url] * 3)
    one = max(p.stat().st_size for p in spool.iterdir())
    before = sorted(os.listdir(spool))
    _record(f"{spool}/", [url] * 6, max_bytes=4 * one)
    after = sorted(os.listdir(spool))
    assert sum((spool / n).stat().st_size for n in after) <= 4 * one
    assert len(after) >= 3
    assert not set(before) & set(after[-3:])  # the newest are kept; the oldest went first
    assert after[0] > before[0]


def test_retention_deletes_tapes_older_than_max_age(emulator: Emulator, tmp_path: Path):
    spool = tmp_path / "spool"
    url = emulator.url(events=2) + CHAT_PATH
    _record(f"{spool}/", [url] * 2)
    old = sorted(spool.iterdir())
    for path in old:
        os.utime(path, (time.time() - 7200, time.time() - 7200))
    _record(f"{spool}/", [url], max_age=3600)
    assert [p for p in spool.iterdir() if p in old] == []
    assert len(list(spool.iterdir())) == 1


def test_a_single_tape_stops_taking_exchanges_at_max_bytes(
    emulator: Emulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    url = emulator.url(events=40) + CHAT_PATH
    transport, bodies = _record(tmp_path / "t.tape", [url] * 5, max_bytes=1500)
    assert all(b == bodies[0] for b in bodies)
    recorded = len(streamtape.open_tape(tmp_path / "t.tape").exchanges)
    assert 1 <= recorded < 5
    assert transport.stats.recorded == recorded
    assert sum("reached max_bytes" in r.getMessage() for r in caplog.records) == 1


def test_path_templates_fill_in_the_pid_and_the_date(emulator: Emulator, tmp_path: Path):
    _record(str(tmp_path / "{date}" / "run-{pid}.tape"), [emulator.url(events=2) + CHAT_PATH])
    (day,) = os.listdir(tmp_path)
    assert day == time.strftime("%Y-%m-%d", time.gmtime())
    assert os.listdir(tmp_path / day) == [f"run-{os.getpid()}.tape"]


def test_an_open_stream_reaches_the_disk_while_it_is_stalled(emulator: Emulator, tmp_path: Path):
    """No end, no close: the writer's timer alone makes the first events durable."""
    path = tmp_path / "t.tape"
    transport = streamtape.httpx2.RecordingTransport(path)
    with (
        httpx2.Client(transport=transport, timeout=30) as client,
        client.stream(
            "POST", emulator.url(events=6, stall_at=3, stall_s=3) + CHAT_PATH, content=CHAT_BODY
        ) as r,
    ):
        pieces = r.iter_raw()
        received = b""
        while received.count(b"\n\n") < 3:
            received += next(pieces)
        deadline = time.monotonic() + 2.5  # a hang guard, not a measurement
        while time.monotonic() < deadline:
            tape = streamtape.open_tape(path)
            if tape.exchanges and tape.exchanges[0].body == received:
                break
            time.sleep(0.02)
        assert tape.exchanges[0].body == received
        assert tape.incomplete and tape.exchanges[0].end.outcome == "incomplete"
        r.close()


def test_info_marks_an_exchange_with_lost_chunks_as_damaged(tmp_path: Path):
    from click.testing import CliRunner

    from streamtape.cli import main

    vector = Path(__file__).resolve().parents[1] / "spec" / "vectors" / "gap.tape"
    result = CliRunner().invoke(main, ["info", str(vector)])
    assert result.exit_code == 0
    assert "complete, DAMAGED: 2 chunks (86 B) lost by the recorder" in result.output


def test_info_marks_an_exchange_cut_by_a_missing_frame_as_damaged_and_diagnose_as_an_error():
    from click.testing import CliRunner

    from streamtape.cli import main

    vector = Path(__file__).resolve().parents[1] / "spec" / "vectors" / "missing-frame.tape"
    result = CliRunner().invoke(main, ["info", str(vector)])
    assert result.exit_code == 0
    assert "INCOMPLETE frame #2 is missing" in result.output
    assert "DAMAGED: an unknown part of it is missing from the file" in result.output
    (exchange,) = streamtape.open_tape(vector).exchanges
    diagnosis = streamtape.diagnose(exchange)
    assert diagnosis.verdict == "error"
    assert any("an unknown number of chunks" in e for e in diagnosis.errors)
