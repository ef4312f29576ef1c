"""The ``streamtape`` command: the click group, and the one way every verb fails.

A shell over the library: each verb is a few lines around a library call and a view from
``streamtape.report``; the verbs live in one module per group (``reading``: info, cat; ``export``: export; ``report``: report; ``analysis``:
diagnose, compare, play; ``writing``: compact, fault; ``scrub``: scan, redact; ``serving``: serve, proxy; ``fleet``: upload, index; ``demo``).

Exit status, for every verb: 0 success; 1 a finding (``compare`` differs, ``diagnose --check`` sees a
verdict other than ``complete``, ``scan`` finds a secret); 2 bad input or usage (click's own convention
for usage). Bad input is one line on stderr, ``streamtape: error: <file>: <what>``, never a traceback.
"""

from __future__ import annotations

import os
import sys
from typing import Any, NoReturn

import click

from .._version import __version__
from ..errors import TapeError
from .analysis import compare, diagnose, play
from .demo import demo
from .export import export
from .fleet import index, upload
from .reading import cat, info
from .report import report
from .scrub import redact, scan
from .serving import proxy, serve
from .writing import compact, fault

#: The exit status for bad input (a file that is not a usable tape, an exchange number it does not hold).
BAD_INPUT = 2


def _fail(message: str) -> NoReturn:
    click.echo(f"streamtape: error: {message}", err=True)
    sys.exit(BAD_INPUT)


class _OneLineErrors(click.Group):
    """A group whose verbs report library and file errors on one line (exit 2) instead of a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            result = super().invoke(ctx)
            sys.stdout.flush()  # a reader that left (`streamtape cat t | head`) shows up here, not at exit
            return result
        except BrokenPipeError:  # the reader left, which is not an error
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(0)
        except TapeError as exc:
            _fail(str(exc))
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            _fail(f"{where}{exc.strerror or exc}")
        except KeyboardInterrupt:
            click.echo("streamtape: interrupted", err=True)
            sys.exit(130)


@click.group(cls=_OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="streamtape")
def main() -> None:
    """Record streaming HTTP responses into tapes, look inside them, replay them.

    Exit status: 0 success, 1 a finding (compare differs, diagnose --check sees a verdict other than
    complete, scan finds a secret), 2 bad input or usage. `-x N` is exchange number N as `info` numbers
    them, in every verb.
    """


for _command in (
    info,
    cat,
    diagnose,
    compare,
    play,
    compact,
    fault,
    scan,
    redact,
    export,
    report,
    serve,
    proxy,
    upload,
    index,
    demo,
):
    main.add_command(_command)
