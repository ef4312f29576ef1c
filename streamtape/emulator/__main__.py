"""`python -m streamtape.emulator --port N`: run the emulator in the foreground for manual poking."""

from __future__ import annotations

import argparse
import contextlib

from .server import Emulator


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m streamtape.emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    args = parser.parse_args(argv)
    emulator = Emulator(host=args.host, port=args.port).start()
    print(emulator.url(), flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        emulator.serve_forever()


if __name__ == "__main__":
    main()
