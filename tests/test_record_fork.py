"""Recording in a forked process: a child never writes into its parent's tape, and never hangs on a lock
the fork caught held. Real processes; timeouts are hang guards only."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import CHAT_PATH, HANG_GUARD_S, ROOT, body_for, events

import streamtape
from streamtape.emulator import Emulator

pytestmark = pytest.mark.timeout(60)


_FORKING = """
import json, logging, os, sys
import httpx2, streamtape.httpx2

url, path = sys.argv[1], sys.argv[2]
logs = []

class Log(logging.Handler):
    def emit(self, record):
        logs.append([record.levelname, record.getMessage()])

logging.getLogger("streamtape").addHandler(Log())

def body(name):
    return json.dumps({"model": "gpt-test", "messages": [{"role": "user", "content": name}],
                       "stream": True}).encode()

transport = streamtape.httpx2.RecordingTransport(path)
client = httpx2.Client(transport=transport, timeout=30)
got = [client.post(url, content=body("parent 0")).content]
with client.stream("POST", url, content=body("parent 1")) as open_stream:  # open across the fork
    pieces = open_stream.iter_raw()
    first = next(pieces)
    read, write = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(read)
        try:
            transport.inner = httpx2.HTTPTransport()  # the parent's connections stay the parent's
            with httpx2.Client(transport=transport, timeout=30) as inherited:
                inherited_body = inherited.post(url, content=body("child inherited")).content
            fresh_transport = streamtape.httpx2.RecordingTransport(path)  # created after the fork
            with httpx2.Client(transport=fresh_transport, timeout=30) as fresh:
                fresh_body = fresh.post(url, content=body("child fresh")).content
            report = {"pid": os.getpid(), "logs": logs, "inherited": inherited_body.hex(),
                      "fresh": fresh_body.hex()}
        except BaseException as exc:
            report = {"crash": repr(exc)}
        os.write(write, json.dumps(report).encode())
        os.close(write)
        sys.exit(0)  # a normal exit: the child's atexit handlers run too
    os.close(write)
    with os.fdopen(read, "rb") as reader:
        child_report = json.loads(reader.read())
    _, status = os.waitpid(child, 0)
    got.append(first + b"".join(pieces))
got.append(client.post(url, content=body("parent 2")).content)
client.close()
print(json.dumps({"got": [g.hex() for g in got], "child": child_report, "child_status": status,
                  "logs": logs}))
"""


def test_forked_child_never_writes_into_the_parents_tape_and_says_it_is_not_recording(
    emulator: Emulator, tmp_path: Path
) -> None:
    path = tmp_path / "run.tape"
    url = emulator.url(events=30, split=2) + CHAT_PATH
    run = subprocess.run(
        [sys.executable, "-c", _FORKING, url, str(path)],
        capture_output=True,
        cwd=ROOT,
        timeout=HANG_GUARD_S * 2,
    )
    assert run.returncode == 0, run.stderr.decode(errors="replace")
    result = json.loads(run.stdout)
    child = result["child"]
    assert "crash" not in child, child
    assert result["child_status"] == 0

    expected = b"".join(events(events=30, split=2))
    assert [bytes.fromhex(g) for g in result["got"]] == [expected] * 3
    assert bytes.fromhex(child["inherited"]) == bytes.fromhex(child["fresh"]) == expected
    assert result["logs"] == []

    # The child says its inherited recorder does not record (once), and a recorder made after the fork
    # records beside the parent's tape, which the parent still holds.
    errors = [message for level, message in child["logs"] if level == "ERROR"]
    assert len(errors) == 1 and "fork" in errors[0], child["logs"]
    beside = tmp_path / f"run.{child['pid']}.tape"
    warnings = [message for level, message in child["logs"] if level == "WARNING"]
    assert len(warnings) == 1 and str(beside) in warnings[0], child["logs"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([path.name, beside.name])
    (fresh,) = streamtape.open_tape(beside).exchanges
    assert fresh.request.body == body_for("child fresh") and fresh.body == expected

    tape = streamtape.open_tape(path)
    assert not tape.incomplete, tape.problem
    assert len(tape.segments) == 1
    assert [e.request.body for e in tape.exchanges] == [body_for(f"parent {i}") for i in range(3)]
    assert [e.id for e in tape.exchanges] == [1, 2, 3]
    assert [e.body for e in tape.exchanges] == [expected] * 3
    assert [e.end.outcome for e in tape.exchanges] == ["complete"] * 3


_FORK_WHILE_COUNTING = """
import json, os, signal, sys, threading
import httpx2, streamtape.httpx2

url, path = sys.argv[1], sys.argv[2]
transport = streamtape.httpx2.RecordingTransport(path)
client = httpx2.Client(transport=transport, timeout=30)
client.post(url, content=b"{}")
# The fork lands while another thread updates this transport's counters, as the writer thread does after
# every exchange and request threads do at every request: that moment, held open so the fork cannot miss it.
stats = transport.recorder.stats
held, done = threading.Event(), threading.Event()

def counting():
    with stats._lock:
        held.set()
        done.wait(60)

thread = threading.Thread(target=counting)
thread.start()
held.wait(10)
child = os.fork()
if child == 0:
    signal.alarm(10)  # the hang guard: a child stuck on the parent's lock dies of SIGALRM
    transport.inner = httpx2.HTTPTransport()
    with httpx2.Client(transport=transport, timeout=30) as inherited:
        ok = inherited.post(url, content=b"{}").status_code == 200
    os._exit(0 if ok else 1)
_, status = os.waitpid(child, 0)
done.set()
thread.join()
client.close()
print(json.dumps(os.waitstatus_to_exitcode(status)))
"""


def test_forked_child_does_not_hang_when_the_fork_caught_another_thread_updating_the_recorders_counters(
    emulator: Emulator, tmp_path: Path
) -> None:
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            _FORK_WHILE_COUNTING,
            emulator.url(events=3) + CHAT_PATH,
            str(tmp_path / "run.tape"),
        ],
        capture_output=True,
        cwd=ROOT,
        timeout=HANG_GUARD_S * 2,
    )
    assert run.returncode == 0, run.stderr.decode(errors="replace")
    assert json.loads(run.stdout) == 0, "the child hung (-14: killed by its SIGALRM hang guard) or failed"
