"""``serve`` and ``proxy`` with clients that are not Python (curl, the Node ``openai`` package) and with the
SDKs: the bytes and chunk boundaries are the tape's, a recorded reset resets, a dropped connection drops
(curl's partial-transfer error), and the proxy records what a client streamed, chunk by chunk.

The Node tests need ``npm`` (Node is optional for the test suite, as the README says): ``.ci/run`` installs
the ``openai`` package into ``.ci/node``; they skip, saying so, only when ``npm`` is not installed.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx2
import pytest
from helpers import ROOT, load_samples_script, optional_dependency_missing

import streamtape
from streamtape import faults
from streamtape.emulator import Emulator, expected_text
from streamtape.emulator.scenario import Scenario
from streamtape.servers import Proxy, TapeServer, run_in_thread

pytestmark = pytest.mark.timeout(60)

SAMPLES = ROOT / "samples"
NODE_OPENAI = ROOT / ".ci" / "node" / "node_modules" / "openai"
CHAT = "/v1/chat/completions"
samples = load_samples_script()
BY_FILE = {s.file: s for s in samples.SAMPLES}


def curl(url: str, body: bytes, *extra: str) -> subprocess.CompletedProcess[bytes]:
    """``curl -N`` (no buffering) POSTing ``body``; a generous --max-time is a hang guard."""
    command = ["curl", "-sSN", "--max-time", "20", "-X", "POST", url, "-H", "content-type: application/json"]
    return subprocess.run(
        [*command, *extra, "--data-binary", "@-"], input=body, capture_output=True, timeout=30
    )


def _exchange(name: str) -> tuple[streamtape.Tape, streamtape.Exchange]:
    tape = streamtape.open_tape(SAMPLES / name)
    return tape, tape.exchanges[0]


# -- serve ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["openai-complete.tape", "openai-tool-calls.tape", "anthropic-tool-use.tape"]
)
def test_serve_gives_curl_the_tapes_bytes_and_httpx2_its_chunk_boundaries(name: str) -> None:
    tape, e = _exchange(name)
    path = e.request.url[e.request.url.index("/v1/") :]
    with run_in_thread(TapeServer(tape, speed=math.inf)) as server:
        result = curl(server.url + path, e.request.body)
        assert result.returncode == 0, result.stderr
        assert result.stdout == e.body
        with httpx2.Client() as client, client.stream("POST", server.url + path, content=e.request.body) as r:
            pieces = list(r.iter_raw())  # a second request on the same server: repeats are served
            head = (r.status_code, r.headers.get("content-type"))
    assert pieces == [c.data for c in e.chunks]
    assert e.response is not None
    recorded_type = next(v for n, v in e.response.headers if n.lower() == "content-type")
    assert head == (e.response.status_code, recorded_type)


def test_a_recorded_reset_resets_and_a_dropped_connection_gives_curls_partial_transfer_error() -> None:
    tape, e = _exchange("openai-reset.tape")
    assert e.end.error_type == "ReadError"
    with run_in_thread(TapeServer(tape, speed=math.inf)) as server:
        reset = curl(server.url + CHAT, e.request.body)
    assert reset.returncode == 56 and b"Connection reset by peer" in reset.stderr
    assert reset.stdout == e.body  # the same bytes first
    healthy, h = _exchange("openai-complete.tape")
    cut = faults.truncate(healthy, after_chunk=6)  # RemoteProtocolError: the connection died mid-body
    with run_in_thread(TapeServer(cut, speed=math.inf)) as server:
        dropped = curl(server.url + CHAT, h.request.body)
        with httpx2.Client() as client, pytest.raises(httpx2.RemoteProtocolError):
            client.post(server.url + CHAT, content=h.request.body)
    assert (
        dropped.returncode == 18 and b"transfer closed with outstanding read data remaining" in dropped.stderr
    )
    assert dropped.stdout == cut.exchanges[0].body


def test_a_recorded_stall_stalls_until_the_client_gives_up() -> None:
    tape, e = _exchange("openai-read-timeout.tape")
    assert e.end.error_type == "ReadTimeout"
    with run_in_thread(TapeServer(tape, speed=math.inf)) as server:
        result = curl(server.url + CHAT, e.request.body, "--max-time", "1")
    assert result.returncode == 28  # curl's own timeout: the server said nothing more
    assert result.stdout == e.body


def test_sdks_replay_through_serve_as_through_a_replay_transport() -> None:
    for name in ("openai-complete.tape", "anthropic-overloaded-retry.tape", "openai-reset.tape"):
        tape = streamtape.open_tape(SAMPLES / name)
        sample = BY_FILE[name]
        url = tape.exchanges[0].request.url
        expected = samples.run(
            sample, url[: url.index("/v1/")], streamtape.httpx2.ReplayTransport(tape, speed=math.inf)
        )
        with run_in_thread(TapeServer(tape, speed=math.inf)) as server:
            served = samples.run(sample, server.url, httpx2.HTTPTransport())
        assert (served.text, served.finish, served.statuses) == (
            expected.text,
            expected.finish,
            expected.statuses,
        )
        assert type(served.error) is type(expected.error), name


def test_a_request_the_tape_cannot_answer_gets_a_404_saying_why() -> None:
    tape, _ = _exchange("openai-complete.tape")
    with run_in_thread(TapeServer(tape)) as server, httpx2.Client() as client:
        response = client.post(server.url + "/v1/embeddings", json={"input": "x"})
    assert response.status_code == 404
    message = response.json()["error"]["message"]
    assert (
        "no recorded exchange matches POST" in message
        and "path /v1/embeddings != /v1/chat/completions" in message
    )


# -- proxy -----------------------------------------------------------------------------------------------


def _proxy(emulator: Emulator, tmp_path: Path, **knobs: Any) -> tuple[Proxy, Path]:
    path = tmp_path / "proxied.tape"
    return Proxy(emulator.url(**knobs), path), path


def test_proxy_records_what_curl_streamed_with_chunk_times(emulator: Emulator, tmp_path: Path) -> None:
    body = json.dumps(
        {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    ).encode()
    direct = curl(emulator.url(events=8, pace_ms=20) + CHAT, body)
    proxy, path = _proxy(emulator, tmp_path, events=8, pace_ms=20)
    with run_in_thread(proxy) as server:
        through = curl(server.url + CHAT, body, "-H", "authorization: Bearer sk-live-secret-0123456789")
    assert through.returncode == 0 and through.stdout == direct.stdout
    (exchange,) = streamtape.open_tape(path).exchanges
    assert exchange.body == through.stdout and exchange.end.outcome == "complete"
    assert len(exchange.chunks) >= 9  # one per event at least: nothing was buffered into one piece
    times = [c.t_ns for c in exchange.chunks]
    assert times == sorted(times) and times[-1] - times[0] >= 7 * 20e6  # the upstream's pace, recorded
    assert dict(exchange.request.headers)["authorization"].startswith("Bearer REDACTED:")
    assert streamtape.diagnose(exchange).text == expected_text(Scenario(events=8))


def test_proxy_passes_an_upstream_reset_on_and_the_tape_says_so(emulator: Emulator, tmp_path: Path) -> None:
    body = json.dumps({"model": "m", "stream": True, "messages": []}).encode()
    proxy, path = _proxy(emulator, tmp_path, events=8, reset_at=4)
    with run_in_thread(proxy) as server:
        result = curl(server.url + CHAT, body)
    assert result.returncode == 56, result.stderr
    (exchange,) = streamtape.open_tape(path).exchanges
    assert exchange.end.error_type == "ReadError" and exchange.body == result.stdout


def test_proxy_serves_concurrent_clients_non_streaming_answers_and_a_502_for_no_upstream(
    emulator: Emulator, tmp_path: Path
) -> None:
    proxy, path = _proxy(emulator, tmp_path, events=5)
    streaming = json.dumps({"model": "m", "stream": True, "messages": []}).encode()
    whole = json.dumps({"model": "m", "stream": False, "messages": []}).encode()
    with run_in_thread(proxy) as server:
        command = ["curl", "-sN", "-X", "POST", server.url + CHAT, "--data-binary", streaming.decode()]
        clients = [subprocess.Popen(command, stdout=subprocess.PIPE) for _ in range(6)]
        outputs = [c.communicate(timeout=30)[0] for c in clients]
        answer = curl(server.url + CHAT, whole)
    assert len(set(outputs)) == 1 and outputs[0].endswith(b"data: [DONE]\n\n")
    assert json.loads(answer.stdout)["object"] == "chat.completion"
    tape = streamtape.open_tape(path)
    assert len(tape.exchanges) == 7 and all(e.end.outcome == "complete" for e in tape.exchanges)
    nowhere = Proxy("http://127.0.0.1:9", tmp_path / "nowhere.tape")  # the discard port: nothing listens
    with run_in_thread(nowhere) as server, httpx2.Client() as client:
        response = client.post(server.url + CHAT, content=streaming)
    assert response.status_code == 502 and "ConnectError" in response.json()["error"]["message"]


# -- Node ---------------------------------------------------------------------------------------------------


def _node(base_url: str) -> dict[str, Any]:
    if shutil.which("npm") is None or shutil.which("node") is None:
        optional_dependency_missing("Node and npm (for the Node `openai` package)")
    assert NODE_OPENAI.is_dir(), f"{NODE_OPENAI} is missing: run `npm install --prefix .ci/node openai@6`"
    env = {**os.environ, "OPENAI_MODULE": str(NODE_OPENAI), "BASE_URL": base_url}
    script = ROOT / "tests" / "node" / "stream_chat.cjs"
    result = subprocess.run(["node", str(script)], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def test_the_node_openai_package_records_through_proxy_and_replays_from_serve(
    emulator: Emulator, tmp_path: Path
) -> None:
    proxy, path = _proxy(emulator, tmp_path)  # no scenario in the URL: the tape's paths are the API's own
    with run_in_thread(proxy) as server:
        live = _node(server.url + "/v1")
    assert live == {"text": expected_text(Scenario()), "finish": "stop", "error": None}
    tape = streamtape.open_tape(path)
    (exchange,) = tape.exchanges
    assert any(v.startswith("OpenAI/JS") for n, v in exchange.request.headers if n.lower() == "user-agent")
    assert streamtape.diagnose(exchange).text == live["text"]
    with run_in_thread(TapeServer(tape, speed=math.inf)) as server:
        assert _node(server.url + "/v1") == live
    with run_in_thread(TapeServer(faults.truncate(tape, after_chunk=3), speed=math.inf)) as server:
        broken = _node(server.url + "/v1")
    assert broken["error"] is not None and live["text"].startswith(broken["text"])
