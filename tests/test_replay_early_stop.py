"""A client that stops reading a replayed stream early: it closes cleanly, the next request is served, a
second pass over the stream goes on where the first stopped, and a paced replay does not wait for the rest.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest
from helpers import CHAT_BODY, CHAT_PATH, Call, fetch, fetch_all
from replay_cases import CASE_BY_NAME, Recorded, Recordings, assert_same_view, duration
from shells import SHELLS, Shell

from streamtape.emulator import Emulator

pytestmark = pytest.mark.timeout(30)


# -- a client that stops reading early ----------------------------------------------------------------


@SHELLS
@pytest.mark.parametrize("how", ["close", "break"])
def test_client_stopping_after_one_chunk_closes_cleanly_and_the_next_request_is_served(
    shell: Shell, how: str, recordings: Recordings
) -> None:
    rec = recordings.get(shell, "complete")
    transport = shell.replay(rec.path, speed=math.inf, allow_repeats=True)
    stopped, after = fetch_all(shell, transport, Call(rec.url, stop=how), Call(rec.url))
    assert stopped.error is None
    assert stopped.pieces == rec.seen.pieces[:1]
    assert_same_view(shell, after, rec.seen)


def read_in_two_passes(
    shell: Shell, transport: Any, url: str, first: int = 2
) -> tuple[list[bytes], list[bytes]]:
    """``first`` pieces from ``iter_raw``, its iterator left open, then a second pass over ``response.stream``.

    That second pass is how the OpenAI SDK's async stream drains an HTTP/1.1 body after ``[DONE]``
    (``openai._streaming_cleanup.drain_response_async``).
    """
    lib = shell.lib
    if shell.is_async:

        async def run() -> tuple[list[bytes], list[bytes]]:
            async with (
                lib.AsyncClient(transport=transport, timeout=5) as client,
                client.stream("POST", url, content=CHAT_BODY) as response,
            ):
                pieces = response.aiter_raw()
                head = [await pieces.__anext__() for _ in range(first)]
                rest = [piece async for piece in response.stream]
                await pieces.aclose()
                return head, rest

        return asyncio.run(run())
    with (
        lib.Client(transport=transport, timeout=5) as client,
        client.stream("POST", url, content=CHAT_BODY) as response,
    ):
        pieces = response.iter_raw()
        head = [next(pieces) for _ in range(first)]
        rest = list(response.stream)
        pieces.close()
        return head, rest


@SHELLS
def test_a_second_pass_over_the_stream_continues_where_the_first_stopped(
    shell: Shell, emulator: Emulator, recordings: Recordings
) -> None:
    """A network stream read in two passes gives each byte once; so must a replayed one."""
    rec = recordings.get(shell, "complete")
    live_transport = shell.lib.AsyncHTTPTransport() if shell.is_async else shell.lib.HTTPTransport()
    live = read_in_two_passes(
        shell, live_transport, emulator.url(**CASE_BY_NAME["complete"].knobs) + CHAT_PATH
    )
    assert live[0] + live[1] == rec.seen.pieces  # what the network does: the rest, not the whole again

    served_before = len(emulator.requests)
    head, rest = read_in_two_passes(shell, shell.replay(rec.path, speed=math.inf), rec.url)
    assert head == rec.seen.pieces[:2]
    assert rest == rec.seen.pieces[2:], (
        f"the second pass gave {len(rest)} pieces, not the {len(rec.seen.pieces) - 2} left"
    )
    assert len(emulator.requests) == served_before


@SHELLS
def test_closing_a_paced_replay_early_does_not_wait_for_the_rest(shell: Shell, paced: Recorded) -> None:
    replayed = fetch(shell, shell.replay(paced.path, speed=1), paced.url, stop="close")
    assert replayed.error is None and replayed.pieces == paced.seen.pieces[:1]
    assert replayed.elapsed < 0.5 * duration(paced.exchange)
