"""Recording across processes: what a killed, size-limited, forked or competing process leaves on disk.

Each test runs real recording processes (``sys.executable``), most against the SSE emulator on 127.0.0.1
(one, which must control block sizes exactly, against a mock), and reads what they wrote with
``open_tape``. Timeouts here are hang guards only; no test asserts a duration.
"""

from __future__ import annotations

import errno
import itertools
import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from helpers import CHAT_PATH, HANG_GUARD_S, ROOT, body_for, events, stream
from shells import SHELL_LIST

import streamtape
from streamtape.emulator import Emulator

pytestmark = pytest.mark.timeout(60)


def wait_until(condition: Callable[[], bool], failure: str) -> None:
    """Poll ``condition`` until it holds; fail with ``failure`` after the hang guard."""
    deadline = time.monotonic() + HANG_GUARD_S
    while not condition():
        assert time.monotonic() < deadline, failure
        time.sleep(0.02)


def exchanges_by_body(tape: streamtape.Tape) -> dict[bytes, streamtape.Exchange]:
    found: dict[bytes, streamtape.Exchange] = {}
    for exchange in tape.exchanges:
        assert exchange.request.body not in found, f"{tape.path}: request recorded twice"
        found[exchange.request.body] = exchange
    return found


# -- a recording process driven over its stdin --------------------------------------------------------

_DRIVER = """
import json, logging, os, sys
import httpx2, streamtape.httpx2

class Log(logging.Handler):
    def emit(self, record):
        sys.stderr.write(json.dumps([record.levelname, record.getMessage()]) + "\\n")
        sys.stderr.flush()

logging.getLogger("streamtape").addHandler(Log())
transport = streamtape.httpx2.RecordingTransport(sys.argv[1])
client = httpx2.Client(transport=transport, timeout=30)
print(json.dumps({"pid": os.getpid()}), flush=True)
for line in sys.stdin:
    command = json.loads(line)
    if "fetch" in command:
        with client.stream("POST", command["fetch"], content=command["body"].encode()) as response:
            body = b"".join(response.iter_raw())
        print(json.dumps({"body": body.hex()}), flush=True)
    elif command.get("exit") == "close":
        client.close()
        break
    elif command.get("exit") == "atexit":
        break  # the client is left open: the interpreter's exit closes the recorder
"""


class Driver:
    """A process recording into ``target`` through an ``httpx2.Client``, one request per command."""

    def __init__(self, target: str, log: Path) -> None:
        self.log_path = log
        with open(log, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", _DRIVER, target],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                cwd=ROOT,
            )
        self.pid: int = self.reply()["pid"]

    def send(self, command: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command).encode() + b"\n")
        self.proc.stdin.flush()

    def reply(self) -> Any:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], HANG_GUARD_S)
        assert ready, f"recording process {self.proc.pid} did not answer; its log:\n{self.log_text()}"
        line = self.proc.stdout.readline()
        assert line, f"recording process {self.proc.pid} died; its log:\n{self.log_text()}"
        return json.loads(line)

    def fetch(self, url: str, body: bytes) -> bytes:
        self.begin_fetch(url, body)
        return self.end_fetch()

    def begin_fetch(self, url: str, body: bytes) -> None:
        self.send({"fetch": url, "body": body.decode()})

    def end_fetch(self) -> bytes:
        return bytes.fromhex(self.reply()["body"])

    def exit(self, how: str) -> None:
        """``close`` (the client first), ``atexit`` (the client left open) or ``kill`` (SIGKILL)."""
        if how == "kill":
            assert self.proc.poll() is None, "the process was already gone when it was to be killed"
            self.proc.send_signal(signal.SIGKILL)
        else:
            self.send({"exit": how})
        assert self.proc.wait(HANG_GUARD_S) == (-signal.SIGKILL if how == "kill" else 0), self.log_text()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def logs(self, level: str) -> list[str]:
        lines = [json.loads(line) for line in self.log_text().splitlines() if line.startswith("[")]
        return [message for levelname, message in lines if levelname == level]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(HANG_GUARD_S)
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[[str | Path], Driver]]:
    """Start recording processes; whatever happens, none outlives the test."""
    started: list[Driver] = []

    def run(target: str | Path) -> Driver:
        driver = Driver(str(target), tmp_path / f"process-{len(started)}.log")
        started.append(driver)
        return driver

    yield run
    for driver in started:
        driver.stop()


# -- kill -9 while idle -------------------------------------------------------------------------------


def test_process_killed_while_idle_leaves_a_complete_tape_not_flagged_incomplete(
    emulator: Emulator, tmp_path: Path, start: Callable[[str | Path], Driver]
) -> None:
    path = tmp_path / "idle.tape"
    child = start(path)
    sent = [body_for(f"idle {i}") for i in range(3)]
    got = [child.fetch(emulator.url(events=4 + i, seed=i) + CHAT_PATH, body) for i, body in enumerate(sent)]

    def frame_ended() -> bool:
        tape = streamtape.open_tape(path)
        return len(tape.exchanges) == 3 and not tape.incomplete

    # No exchange is open now: the writer must end its frame on its own, without any close or exit.
    wait_until(frame_ended, "an idle recorder left its last frame open (the tape reads as incomplete)")
    child.exit("kill")

    tape = streamtape.open_tape(path)
    assert not tape.incomplete, tape.problem
    assert [e.request.body for e in tape.exchanges] == sent
    assert [e.body for e in tape.exchanges] == got
    assert got == [b"".join(events(events=4 + i, seed=i)) for i in range(3)]
    assert [e.end.outcome for e in tape.exchanges] == ["complete"] * 3

    # Nothing was left to mend: the next recorder appends after the dead one's bytes, rewriting none.
    left = path.read_bytes()
    after = stream(SHELL_LIST[2], emulator.url(events=2) + CHAT_PATH, tape=path)
    assert path.read_bytes().startswith(left)
    tape = streamtape.open_tape(path)
    assert not tape.incomplete
    assert [e.body for e in tape.exchanges] == [*got, after.body]


# -- a full disk --------------------------------------------------------------------------------------

_SIZE_LIMITED = """
import json, logging, resource, sys
import httpx2, streamtape.httpx2

url, path, limit, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
logs = []

class Log(logging.Handler):
    def emit(self, record):
        logs.append([record.levelname, record.getMessage()])

logging.getLogger("streamtape").addHandler(Log())
# Python ignores SIGXFSZ: a write past the limit fails with EFBIG, as on a full disk.
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
transport = streamtape.httpx2.RecordingTransport(path)
bodies = []
with httpx2.Client(transport=transport, timeout=30) as client:
    for i in range(count):
        body = json.dumps({"model": "gpt-test", "messages": [{"role": "user", "content": f"stream {i}"}],
                           "stream": True}).encode()
        with client.stream("POST", url.format(seed=i), content=body) as response:
            bodies.append(b"".join(response.iter_raw()).hex())
stats = transport.stats
print(json.dumps({"bodies": bodies, "logs": logs, "errors": stats.errors, "dropped": stats.dropped,
                  "recorded": stats.recorded}))
"""

_LIMIT = 20_000
_STREAMS = 8
_EVENTS = 400  # about 120 KB per stream, 5-8 KB compressed: the limit falls inside the third stream or so


def _size_limited_run(emulator: Emulator, path: Path) -> dict[str, Any]:
    url = emulator.url(events=_EVENTS, seed=999).replace("999", "{seed}") + CHAT_PATH
    assert "{seed}" in url
    child = subprocess.run(
        [sys.executable, "-c", _SIZE_LIMITED, url, str(path), str(_LIMIT), str(_STREAMS)],
        capture_output=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        timeout=HANG_GUARD_S * 2,
    )
    assert child.returncode == 0, child.stderr.decode(errors="replace")
    result: dict[str, Any] = json.loads(child.stdout)
    return result


def test_recording_onto_a_full_disk_keeps_every_stream_intact_logs_once_and_leaves_a_readable_tape(
    emulator: Emulator, tmp_path: Path
) -> None:
    path = tmp_path / "full.tape"
    result = _size_limited_run(emulator, path)

    sent = [b"".join(events(events=_EVENTS, seed=i)) for i in range(_STREAMS)]
    assert [bytes.fromhex(body) for body in result["bodies"]] == sent  # the traffic never noticed

    errors = [message for level, message in result["logs"] if level == "ERROR"]
    assert len(errors) == 1, errors  # once per cause, not once per failed write
    assert os.strerror(errno.EFBIG) in errors[0]
    assert result["errors"].get("EFBIG", 0) >= 1, result["errors"]
    assert set(result["errors"]) == {"EFBIG"}, result["errors"]
    assert result["dropped"] > 0

    assert path.stat().st_size <= _LIMIT
    tape = streamtape.open_tape(path)  # no TapeError: what is left is a readable tape
    requests = [body_for(f"stream {i}") for i in range(_STREAMS)]
    assert 1 <= len(tape.exchanges) < _STREAMS
    assert [e.request.body for e in tape.exchanges] == requests[: len(tape.exchanges)]
    assert [e.id for e in tape.exchanges] == list(range(1, len(tape.exchanges) + 1))
    assert tape.exchanges[0].end.outcome == "complete"
    for exchange, body in zip(tape.exchanges, sent, strict=False):
        assert body.startswith(exchange.body), f"exchange {exchange.id} is not a prefix of what was sent"
        if exchange.end.outcome == "complete":
            assert exchange.body == body
    # The counts match the tape: an exchange counts as recorded once it is durable, and every record the
    # disk did not take counts as dropped (at least the chunks missing from the tape).
    whole = [e for e in tape.exchanges if e.end.outcome == "complete"]
    assert result["recorded"] == len(whole), "stats.recorded counts exchanges the disk never took"
    missing = sum(len(events(events=_EVENTS, seed=i)) for i in range(_STREAMS)) - sum(
        len(e.chunks) for e in tape.exchanges
    )
    assert result["dropped"] >= missing, "stats.dropped undercounts the records lost"

    # Once there is room again, the tape takes a new segment after what the failed process left.
    kept = [e.body for e in tape.exchanges]
    after = stream(SHELL_LIST[2], emulator.url(events=2) + CHAT_PATH, tape=path)
    tape = streamtape.open_tape(path)
    assert [e.body for e in tape.exchanges] == [*kept, after.body]
    assert tape.exchanges[-1].end.outcome == "complete"


_FULL_THEN_ROOM = """
import os, resource, sys
import httpx2, streamtape.httpx2

path = sys.argv[1]

def server(request):
    def body():
        yield os.urandom(8192)  # incompressible: the block holding it cannot fit in what is left
        yield b"data: tail\\n\\n"  # small: a block holding it fits
    return httpx2.Response(200, content=body())

transport = streamtape.httpx2.RecordingTransport(path, transport=httpx2.MockTransport(server))
with httpx2.Client(transport=transport) as client:
    client.post("http://api.test/one", content=b"{}")
    assert transport.flush()
    resource.setrlimit(resource.RLIMIT_FSIZE, (os.path.getsize(path) + 1024, resource.RLIM_INFINITY))
    with client.stream("POST", "http://api.test/two", content=b"{}") as response:
        pieces = response.iter_raw()
        next(pieces)
        transport.flush()  # the request, the head and the big chunk: one block, refused (EFBIG)
        for _ in pieces:
            pass
print(transport.stats.errors)
"""


def test_tape_stays_readable_when_a_block_holding_a_request_is_refused_and_a_later_smaller_one_fits(
    tmp_path: Path,
) -> None:
    path = tmp_path / "run.tape"
    run = subprocess.run(
        [sys.executable, "-c", _FULL_THEN_ROOM, str(path)],
        capture_output=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        timeout=HANG_GUARD_S * 2,
    )
    assert run.returncode == 0, run.stderr.decode(errors="replace")
    assert "EFBIG" in run.stdout.decode()
    tape = streamtape.open_tape(path)  # today: CorruptTapeError, and the first exchange is lost with it
    assert tape.exchanges[0].request.url == "http://api.test/one"
    assert tape.exchanges[0].end.outcome == "complete"


# -- two processes, one single-file path --------------------------------------------------------------


@pytest.mark.parametrize("first_exits", ["close", "atexit", "kill"])
def test_second_process_on_a_taken_tape_path_records_beside_it_and_nothing_is_lost_when_the_first_exits_early(
    emulator: Emulator, tmp_path: Path, start: Callable[[str | Path], Driver], first_exits: str
) -> None:
    path = tmp_path / "run.tape"
    url = emulator.url(events=5) + CHAT_PATH
    first = start(path)
    first_got = {body: first.fetch(url, body) for body in (body_for("first 0"), body_for("first 1"))}
    second = start(path)
    second_got = {body: second.fetch(url, body) for body in (body_for("second 0"), body_for("second 1"))}
    beside = tmp_path / f"run.{second.pid}.tape"

    if first_exits == "kill":  # killed while idle, once its frame is ended (see the idle test above)
        wait_until(lambda: not streamtape.open_tape(path).incomplete, "the first process's tape stayed open")
    first.exit(first_exits)
    # The second goes on recording after the first is gone, wherever it now records.
    later = {body: second.fetch(url, body) for body in (body_for("second 2"), body_for("second 3"))}
    second.exit("close")

    assert sorted(p.name for p in tmp_path.glob("*.tape")) == sorted({path.name, beside.name})
    warnings = second.logs("WARNING")
    assert len(warnings) == 1, warnings
    assert str(path) in warnings[0] and str(beside) in warnings[0]
    assert first.logs("WARNING") == first.logs("ERROR") == second.logs("ERROR") == []

    tapes = {p: streamtape.open_tape(p) for p in (path, beside)}
    assert not tapes[beside].incomplete, tapes[beside].problem
    assert not tapes[path].incomplete, tapes[path].problem
    by_body = {p: exchanges_by_body(tape) for p, tape in tapes.items()}
    assert set(by_body[path]) >= set(first_got)
    assert set(by_body[beside]) >= set(second_got)  # recorded beside while the path was taken
    recorded = {**by_body[path], **by_body[beside]}
    assert sum(map(len, by_body.values())) == len(recorded)  # no exchange in both files
    assert {body: e.body for body, e in recorded.items()} == {**first_got, **second_got, **later}
    assert all(e.end.outcome == "complete" for e in recorded.values())


# -- three processes, one directory -------------------------------------------------------------------

_TAPE_NAME = re.compile(r"^(\d{8}T\d{6}\.\d{6})Z-(\d+)-(\d{6})-(\d{3})-([a-z_]+)\.tape$")


def test_three_processes_recording_into_one_directory_each_exchange_gets_its_own_complete_tape(
    emulator: Emulator, tmp_path: Path, start: Callable[[str | Path], Driver]
) -> None:
    spool = tmp_path / "spool"
    children = [start(str(spool) + "/") for _ in range(3)]
    received: dict[bytes, tuple[int, bytes]] = {}  # request body -> (pid, body received)

    # Together: each round, every process streams at once (paced, so the streams overlap).
    for round_ in range(4):
        bodies = [body_for(f"process {n} round {round_}") for n in range(3)]
        for n, child in enumerate(children):
            child.begin_fetch(emulator.url(events=6, pace_ms=5, seed=round_) + CHAT_PATH, bodies[n])
        for n, child in enumerate(children):
            received[bodies[n]] = (child.pid, child.end_fetch())
    # Then one at a time, in turn: the names must sort in this order.
    in_turn = []
    for turn in range(6):
        n = turn % 3
        body = body_for(f"turn {turn}")
        received[body] = (children[n].pid, children[n].fetch(emulator.url(events=3) + CHAT_PATH, body))
        in_turn.append(body)
    for child in children:
        child.exit("close")

    names = sorted(os.listdir(spool))
    assert not [name for name in names if not name.endswith(".tape")]  # none left .partial
    assert len(names) == len(received)
    order: dict[int, list[bytes]] = {child.pid: [] for child in children}
    starts = []
    found: dict[bytes, str] = {}
    for name in names:
        match = _TAPE_NAME.match(name)
        assert match, f"unexpected name {name!r}"
        pid, status, outcome = int(match[2]), int(match[4]), match[5]
        assert (status, outcome) == (200, "complete"), name
        tape = streamtape.open_tape(spool / name)
        assert not tape.incomplete, (name, tape.problem)
        (exchange,) = tape.exchanges
        assert exchange.end.outcome == "complete" and exchange.response is not None
        body = exchange.request.body
        assert body not in found, f"{name} and {found[body]} hold the same request"
        found[body] = name
        assert received[body] == (pid, exchange.body), f"{name}: not what process {pid} received"
        order[pid].append(body)
        start = tape.header.started_unix_ns
        named = datetime.strptime(match[1], "%Y%m%dT%H%M%S.%f").replace(tzinfo=UTC).timestamp()
        assert abs(named * 1e9 - start) < 1e6, f"{name}: its time is not its exchange's start"
        starts.append(start)
    assert set(found) == set(received)
    # The names sort by time (to within the millisecond: two processes may start streams microseconds
    # apart); the order of the exchanges made in turn, below, is the exact check across processes.
    assert all(later > earlier - 1_000_000 for earlier, later in itertools.pairwise(starts))
    for child in children:  # each process's requests were sequential: its names sort in that order
        assert order[child.pid] == [body for body, (pid, _) in received.items() if pid == child.pid]
    by_name = sorted(found, key=lambda body: found[body])
    assert [body for body in by_name if body in in_turn] == in_turn
    assert all(child.logs("ERROR") == child.logs("WARNING") == [] for child in children)
