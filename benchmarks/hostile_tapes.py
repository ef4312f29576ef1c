"""Hostile tapes: the time and peak memory of reading the record-count bomb and friends.

The bomb is the issue's: a 32 KB tape of three frames holding 23.6 million tiny chunk records (about 400 MB
of record content). Each reading runs in a child process of its own, so its peak resident memory
(``ru_maxrss``) is its own; a child still running after ``--guard`` seconds is killed and shown as such.

    python benchmarks/hostile_tapes.py                       # this checkout
    python benchmarks/hostile_tapes.py --source /tmp/before  # another streamtape tree (e.g. `git archive`)

Readings: ``iter_records`` (count the records), ``open_tape``, and the CLI verbs ``info``, ``cat`` (to
/dev/null), ``diagnose``; on the bomb, then on a 1.7-million-record tape of unknown-tag records, then the same
bomb framed in frames of 1,000,000 records (under the per-frame cap) to show ``iter_records`` streaming.
Peak memory is the child's ``ru_maxrss`` as ``wait4`` reports it (it includes the few MiB the child shared
with this process when it was forked).

Measured on a 2-CPU container (Python 3.11), before (the tree of commit 7cc3540) and after issue 9:

    bomb, 3 frames, 23.6M records    before                        after
      iter_records                   28.0 s  1904 MiB (all read)     0.7 s   24 MiB  TapeLimitError (frame cap)
      open_tape                      38.5 s  1904 MiB (opened)       0.9 s   95 MiB  TapeLimitError
      info                           38.1 s  1905 MiB                0.9 s   97 MiB  one line, exit 2
      diagnose                       killed at 100 s, 3.3 GiB        0.9 s   97 MiB  one line, exit 2
      cat                            killed at 100 s                 5.3 s   25 MiB  one line, exit 2
    unknown-tag bomb, 1.7M records   1.4 s   46 MiB (read)           1.5 s   23 MiB  TapeLimitError (frame cap)
    bomb in 24 frames of 1M records
      iter_records                   23.4 s  1710 MiB                13.1 s  24 MiB  24M records, streamed
      open_tape, info, diagnose      34.2 s  1894 MiB / killed       5.7 s  574 MiB  TapeLimitError (8M held)
      cat                            killed at 100 s                 killed at 100 s, 20 MiB (24M JSON lines)
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import hostile  # noqa: E402

ITER = """
import sys, streamtape
n = 0
stream = streamtape.iter_records(sys.argv[1]{kw})
try:
    for _ in stream:
        n += 1
    print(f"{{n}} records, incomplete={{stream.incomplete}}")
except streamtape.TapeError as exc:
    print(f"{{type(exc).__name__}} after {{n}} records: {{exc.reason}}")
"""

OPEN = """
import sys, streamtape
try:
    tape = streamtape.open_tape(sys.argv[1]{kw})
    print(f"{{len(tape.exchanges)}} exchanges, {{sum(len(e.chunks) for e in tape.exchanges)}} chunks")
except streamtape.TapeError as exc:
    print(f"{{type(exc).__name__}}: {{exc.reason}}")
"""


def run(argv: list[str], env: dict[str, str], guard: float) -> tuple[float, float, str]:
    """Run ``argv``; return (seconds, peak RSS in MiB, last line of its output, or what stopped it)."""
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = start + guard
        status, usage = 0, None
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                os.killpg(proc.pid, signal.SIGKILL)
                _, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.02)
        elapsed = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        lines = out.read().decode(errors="replace").strip().splitlines()
    last = lines[-1][:110] if lines else ""
    if elapsed > guard:
        last = f"killed after {guard:.0f} s (still running)"
    elif proc.returncode not in (0, 1, 2):
        last = f"exit {proc.returncode}: {last}"
    return elapsed, usage.ru_maxrss / 1024 if usage else float("nan"), last


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--source", type=Path, default=ROOT, help="a streamtape source tree to measure")
    parser.add_argument("--guard", type=float, default=120.0, help="kill a reading after this many seconds")
    parser.add_argument("--only", help="only readings whose name contains this")
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(args.source.resolve())}
    cli = [sys.executable, "-c", "import sys; from streamtape.cli import main; sys.exit(main())"]
    with tempfile.TemporaryDirectory() as tmp:
        files = {
            "bomb (3 frames, 23.6M records, ~37 KB)": hostile.record_bomb(),
            "unknown-tag bomb (1 frame, 1.7M records)": hostile.unknown_bomb(),
            "bomb in 24 frames of 1M records": hostile.record_bomb(24, 1_000_000),
        }
        for title, data in files.items():
            path = Path(tmp) / "t.tape"
            path.write_bytes(data)
            print(f"\n{title}: {len(data)} bytes")
            readings = {
                "iter_records": [sys.executable, "-c", ITER.format(kw=""), str(path)],
                "open_tape": [sys.executable, "-c", OPEN.format(kw=""), str(path)],
                "cli info": [*cli, "info", str(path)],
                "cli cat": [*cli, "cat", str(path)],
                "cli diagnose": [*cli, "diagnose", str(path)],
            }
            for name, argv in readings.items():
                if args.only and args.only not in name:
                    continue
                if name == "cli cat":
                    argv = ["sh", "-c", " ".join(f"'{a}'" for a in argv) + " >/dev/null"]
                seconds, mib, last = run(argv, env, args.guard)
                print(f"  {name:<14} {seconds:7.2f} s  {mib:8.1f} MiB peak  {last}")


if __name__ == "__main__":
    main()
