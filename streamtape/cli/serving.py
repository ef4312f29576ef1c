"""Verbs that run servers: ``serve`` (answer from a tape) and ``proxy`` (record what passes through).

Both listen on 127.0.0.1 by default and print the URL to use as the client's base URL on the first line of
standard output, then run until interrupted (Ctrl-C: exit 130).
"""

from __future__ import annotations

import logging
import math
import sys
from typing import Any

import anyio
import click

from ..servers import Proxy, TapeServer, serve_forever
from ..storage.reader import open_tape
from .analysis import max_gap_option, speed_option

_host = click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
_port = click.option(
    "-p", "--port", type=click.IntRange(0, 65535), default=0, help="Port (default: any free one)."
)


def _run(handler: Any, host: str, port: int, what: str) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)

    def started(bound: int) -> None:
        click.echo(f"http://{host}:{bound}")
        click.echo(f"streamtape: {what} at http://{host}:{bound} (Ctrl-C to stop)", err=True)
        sys.stdout.flush()

    async def main() -> None:
        await serve_forever(handler, host, port, started=started)

    anyio.run(main)


@click.command()
@click.argument("tape", type=click.Path(dir_okay=False))
@_host
@_port
@speed_option
@max_gap_option
def serve(tape: str, host: str, port: int, speed: float, max_gap: float | None) -> None:
    """Answer HTTP requests from TAPE: point any client's base URL at the printed address.

    Method, path, query and body pick the exchange (not scheme, host or port); the answer comes chunk by
    chunk at the recorded pace divided by --speed, and ends as recorded: a reset resets the connection, a
    dropped connection drops it, a stall stalls. A request the tape cannot answer gets a 404 saying why.
    """
    if not (speed > 0 and not math.isnan(speed)):
        raise click.BadParameter(f"must be > 0 (inf for no waiting), not {speed}", param_hint="--speed")
    opened = open_tape(tape)
    count = len(opened.exchanges)
    _run(TapeServer(opened, speed=speed, max_gap=max_gap), host, port, f"serving {tape} ({count} exchanges)")


@click.command()
@click.argument("target", metavar="TAPE_OR_DIR")
@click.option("--upstream", required=True, help="Where requests go, e.g. https://api.openai.com")
@_host
@_port
@click.option(
    "--no-redact", is_flag=True, help="Keep secret headers and query values (default: fingerprints)."
)
@click.option("--keep", type=click.Choice(["all", "failed"]), default="all", show_default=True)
@click.option("--sample", type=click.FloatRange(0.0, 1.0), default=1.0, show_default=True)
@click.option("--max-bytes", type=int, default=None, help="Delete the oldest tapes past this size.")
@click.option("--max-age", type=float, default=None, help="Delete tapes older than this many seconds.")
def proxy(
    target: str,
    upstream: str,
    host: str,
    port: int,
    no_redact: bool,
    keep: str,
    sample: float,
    max_bytes: int | None,
    max_age: float | None,
) -> None:
    """Forward requests to --upstream and record every exchange into TAPE_OR_DIR (a directory: one tape per
    exchange), with the recording transports' recorder; each chunk goes to the client as it arrives."""
    if not upstream.startswith(("http://", "https://")):
        raise click.BadParameter(
            f"must be an http:// or https:// URL, not {upstream!r}", param_hint="--upstream"
        )
    handler = Proxy(
        upstream,
        target,
        redact=not no_redact,
        keep="failed" if keep == "failed" else "all",
        sample=sample,
        max_bytes=max_bytes,
        max_age=max_age,
    )
    _run(handler, host, port, f"proxying {upstream}, recording into {target}")
