"""Reading at scale: compact chunk storage behind ``Chunks``, and tapes read in one pass holding no body.

The memory figures are measured with ``tracemalloc`` (what Python allocates, deterministic), never with
wall-clock time.
"""

from __future__ import annotations

import gc
import itertools
import json
import tracemalloc
from array import array
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from msgspec.structs import replace

import streamtape
import streamtape.model as model
from streamtape.analysis.diagnose import _gaps_ms
from streamtape.analysis.outline import Outline, TapeOutline
from streamtape.cli import main
from streamtape.cli._numbering import exchange_from_file, outline_file
from streamtape.format.records import Chunk, End, Header, Request, Response
from streamtape.model import Chunks, Exchange, Tape
from streamtape.report.summary import exchange_summary

ROOT = Path(__file__).resolve().parents[1]
TAPES = sorted((ROOT / "samples").glob("*.tape")) + sorted((ROOT / "spec" / "vectors").glob("*.tape"))

# -- Chunks: one Sequence[Chunk], whatever the storage ---------------------------------------------------

chunk_lists = st.lists(st.tuples(st.integers(0, 10**9), st.binary(max_size=40)), max_size=60).map(
    lambda pairs: [Chunk(3, t, data) for t, data in sorted(pairs, key=lambda p: p[0])]
)


@pytest.mark.parametrize(("whole", "page"), [(4096, 1 << 20), (0, 1), (0, 64), (5, 16)])
@settings(max_examples=60, deadline=None)
@given(chunks=chunk_lists)
def test_chunks_behave_as_the_list_they_were_built_from(chunks: list[Chunk], whole: int, page: int) -> None:
    """Whole chunks, one per page, or pages of many chunks: the same sequence through every accessor."""
    with pytest.MonkeyPatch.context() as m:
        m.setattr(model, "WHOLE_CHUNKS", whole)
        m.setattr(model, "PAGE_BYTES", page)
        built = Chunks(chunks)
    assert list(built) == chunks and built == chunks and len(built) == len(chunks)
    assert [built[i] for i in range(len(chunks))] == chunks
    assert [built[-i] for i in range(1, len(chunks) + 1)] == [chunks[-i] for i in range(1, len(chunks) + 1)]
    assert list(built.datas()) == [c.data for c in chunks]
    assert list(built.times) == [c.t_ns for c in chunks]
    assert built.joined() == b"".join(c.data for c in chunks)
    assert built.nbytes == sum(len(c.data) for c in chunks)
    waits = [b.t_ns - a.t_ns for a, b in itertools.pairwise(chunks)]
    assert built.longest_wait_ns == max(waits, default=0)
    assert list(built[1:-1:2]) == chunks[1:-1:2]
    assert built == Chunks(chunks)  # storage differs (default sizes), content the same
    with pytest.raises(IndexError):
        built[len(chunks)]


def test_chunks_of_several_exchange_ids_keep_each_id() -> None:
    chunks = [Chunk(1, 10, b"a"), Chunk(2, 20, b"b"), Chunk(1, 30, b"c")]
    assert list(Chunks(chunks)) == chunks and Chunks(chunks)[1].x == 2


def _long_stream_tape(path: Path, chunks: int, size: int, text: int | None = None) -> Tape:
    """One streamed exchange of ``chunks`` SSE events of about ``size`` bytes each: an OpenAI chat stream,
    each delta ``text`` characters (by default nearly all of the event), padded as OpenAI pads events."""
    request = Request(0, 0, "POST", "https://api.openai.com/v1/chat/completions", [], b'{"stream": true}')
    head = Response(0, 1_000_000, 200, "HTTP/1.1", [("content-type", "text/event-stream")], "OK")
    filler = "x" * (max(1, size - 120) if text is None else text - 1)
    padding = "p" * max(0, size - 120 - len(filler))
    pieces = []
    for i in range(chunks - 1):
        delta = {"index": 0, "delta": {"content": f"{i % 10}{filler}"}}
        delta = json.dumps({"choices": [delta], "obfuscation": padding} if padding else {"choices": [delta]})
        pieces.append(Chunk(0, 2_000_000 + i * 1000, f"data: {delta}\n\n".encode()))
    done = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    pieces.append(
        Chunk(0, 2_000_000 + chunks * 1000, f"data: {json.dumps(done)}\n\ndata: [DONE]\n\n".encode())
    )
    end = End(0, 3_000_000 + chunks * 1000, "complete")
    header = Header("streamtape", (1, 1), "test", 1_700_000_000 * 10**9)
    tape = Tape(header, [Exchange(0, 0, request, head, Chunks(pieces), end)])
    tape.save(path)
    return tape


def _held_after(load: object) -> tuple[int, object]:
    """Bytes Python still holds for what ``load()`` returns, and the result (kept alive)."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        result = load()  # type: ignore[operator]
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before, result
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("chunks", [3000, 40_000])
def test_an_opened_tape_costs_its_body_plus_at_most_24_bytes_a_chunk(tmp_path: Path, chunks: int) -> None:
    """40,000 chunks are stored in pages (20 bytes a chunk); 3,000 keep each chunk's bytes object, which a
    replay hands out as it is, at a bounded cost for the exchange (WHOLE_CHUNKS)."""
    path = tmp_path / "long.tape"
    body = _long_stream_tape(path, chunks, 200).exchanges[0].chunks.nbytes
    held, tape = _held_after(lambda: streamtape.open_tape(path))
    assert isinstance(tape, Tape) and tape.exchanges[0].chunks.nbytes == body
    per_chunk = (held - body - 64 * 1024) / chunks  # 64 KiB for the header, request, objects of any tape
    if chunks > model.WHOLE_CHUNKS:
        assert per_chunk <= 24, f"{per_chunk:.1f} bytes a chunk"
    else:
        assert per_chunk <= 64, f"{per_chunk:.1f} bytes a chunk"


def _diagnosed_in_one_pass(path: Path) -> tuple[int, TapeOutline]:
    """The peak of what Python allocates while ``diagnose`` reads the tape in one pass, and the outline."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        outline = outline_file(str(path), diagnose=True)
        return tracemalloc.get_traced_memory()[1] - before, outline
    finally:
        tracemalloc.stop()


def test_diagnosing_in_one_pass_holds_the_text_not_the_body(tmp_path: Path) -> None:
    """The peak while diagnosing a 12 MB stream in one pass stays far below its body: the assembled text,
    8 bytes a chunk and a window of the stream, not the chunks."""
    path = tmp_path / "big.tape"
    tape = _long_stream_tape(path, 60_000, 200)
    body = tape.exchanges[0].chunks.nbytes
    expected = streamtape.diagnose(tape.exchanges[0])
    text = expected.total_content_length
    del tape
    peak, outline = _diagnosed_in_one_pass(path)
    d = outline.exchanges[0].diagnostics
    assert d is not None and d.as_dict() == expected.as_dict()
    # the text is held about twice while being joined; the rest must not grow with the body
    assert peak <= 2 * text + 24 * 60_000 + 8 * 1024 * 1024, f"peak {peak:,} for a body of {body:,}"
    assert peak < body, f"peak {peak:,} for a body of {body:,}"


def test_a_tape_of_many_exchanges_is_diagnosed_one_exchange_at_a_time(tmp_path: Path) -> None:
    """Each exchange is diagnosed when its end record arrives and its body let go: 300 exchanges of 60 KB
    (a few characters of text an event, the rest JSON and padding) are read at a peak near their text, not
    near the 18 MB of bodies they hold together."""
    one = _long_stream_tape(tmp_path / "one.tape", 300, 200, text=4).exchanges[0]
    exchanges = [
        Exchange(
            0,
            x,
            replace(one.request, x=x, t_ns=x * 10**9),
            replace(one.response, x=x),
            Chunks(Chunk(x, c.t_ns, c.data) for c in one.chunks),
            replace(one.end, x=x),
        )
        for x in range(300)
    ]
    path = tmp_path / "many.tape"
    Tape(Header("streamtape", (1, 1), "test", 1_700_000_000 * 10**9), exchanges).save(path)
    body = 300 * one.chunks.nbytes
    peak, outline = _diagnosed_in_one_pass(path)
    found = [o.diagnostics for o in outline.exchanges if o.diagnostics is not None]
    assert [d.verdict for d in found] == ["complete"] * 300
    assert sum(d.total_content_length for d in found) == 300 * 299 * 4
    # the reader's buffers, an outline and a diagnosis an exchange, the text: not the bodies
    text = sum(d.total_content_length for d in found)
    bound = (1 << 20) + 300 * 6 * 1024 + 2 * text
    assert bound < body / 3 and peak < bound, f"peak {peak:,} for {body:,} bytes of bodies"


@pytest.mark.parametrize("path", TAPES, ids=lambda p: p.name)
def test_the_one_pass_outline_says_what_the_opened_tape_says(path: Path) -> None:
    try:
        tape = streamtape.open_tape(path)
    except streamtape.TapeError as exc:
        with pytest.raises(type(exc)) as raised:
            outline_file(str(path), diagnose=True)
        assert str(raised.value) == str(exc)
        return
    outline = outline_file(str(path), diagnose=True)
    assert (outline.incomplete, outline.problem, outline.damage) == (
        tape.incomplete,
        tape.problem,
        tape.damage,
    )
    assert outline.segments == tape.segments and len(outline.exchanges) == len(tape.exchanges)
    for o, e in zip(outline.exchanges, tape.exchanges, strict=True):
        assert exchange_summary(o) == exchange_summary(e)
        assert o.diagnostics is not None
        assert o.diagnostics.as_dict() == streamtape.diagnose(e).as_dict()
        assert Outline.of(e, o.diagnostics) == o
    for n, e in enumerate(tape.exchanges):
        assert exchange_from_file(str(path), n) == e


def test_the_cli_reads_in_one_pass_and_says_the_same(tmp_path: Path) -> None:
    """``info`` and ``diagnose`` on a tape give the numbers the library gives for it opened whole."""
    path = tmp_path / "big.tape"
    tape = _long_stream_tape(path, 5000, 100)
    runner = CliRunner()
    shown = json.loads(runner.invoke(main, ["info", "--json", str(path)]).output)
    assert shown["exchanges"][0]["chunks"] == 5000
    assert shown["exchanges"][0]["bytes"] == tape.exchanges[0].chunks.nbytes
    diagnosed = json.loads(runner.invoke(main, ["diagnose", "--json", str(path)]).output)
    assert diagnosed[0] == streamtape.diagnose(tape.exchanges[0]).as_dict()
    played = runner.invoke(main, ["play", "--speed", "inf", str(path)])
    assert played.exit_code == 0 and played.output == f"{diagnosed[0]['text']}\n[complete]\n"


@settings(max_examples=200, deadline=None)
@given(
    waits=st.lists(
        st.one_of(
            st.integers(-5000, 5000),
            st.integers(0, 2**56),
            st.integers(0, 10**7).map(lambda k: k * 1000 + 500),  # exact halves: round-half-even's case
        ),
        max_size=200,
    )
)
def test_the_integer_gap_rounding_is_rounds_own(waits: list[int]) -> None:
    """The C-level gaps equal ``round(ns / 1e6, 3)`` chunk by chunk, -0.0 and halves included."""
    times = list(itertools.accumulate(waits))
    expected = [round((b - a) / 1e6, 3) for a, b in zip([0, *times], times, strict=False)]
    got = _gaps_ms(array("q", times))
    assert json.dumps(list(got)) == json.dumps(expected)
