"""streamtape: record streaming HTTP responses byte for byte, with timing, and replay them.

>>> import streamtape
>>> tape = streamtape.open_tape("bug-1234.tape")
>>> tape.exchanges[0].end.outcome
'error'

The transports live in ``streamtape.httpx`` and ``streamtape.httpx2``; ``use_tape`` routes every client
through a tape without changing the code that makes them (the pytest plugin's ``@pytest.mark.tape``).
"""

from ._version import __version__
from .analysis.compare import Comparison, Difference, compare
from .analysis.diagnose import Diagnostics, diagnose
from .errors import (
    CorruptTapeError,
    NotATapeError,
    TapeError,
    TapeLimitError,
    TapeMismatch,
    TapeMissingError,
    TapeVersionError,
)
from .format.records import Chunk, End, Header, Redaction, Request, Response
from .model import Chunks, Exchange, Tape
from .record.recorder import not_recorded
from .record.redact import Redactor
from .record.stats import RecorderStats
from .replay.matching import Match, ReplayRequest
from .storage.reader import iter_records, open_tape
from .transports.library import WrongLibraryError
from .transports.routing import TapeSession, use_tape

__all__ = [
    "Chunk",
    "Chunks",
    "Comparison",
    "CorruptTapeError",
    "Diagnostics",
    "Difference",
    "End",
    "Exchange",
    "Header",
    "Match",
    "NotATapeError",
    "RecorderStats",
    "Redaction",
    "Redactor",
    "ReplayRequest",
    "Request",
    "Response",
    "Tape",
    "TapeError",
    "TapeLimitError",
    "TapeMismatch",
    "TapeMissingError",
    "TapeSession",
    "TapeVersionError",
    "WrongLibraryError",
    "__version__",
    "compare",
    "diagnose",
    "iter_records",
    "not_recorded",
    "open_tape",
    "use_tape",
]
