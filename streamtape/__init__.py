"""streamtape: record streaming HTTP responses byte for byte, with timing, and replay them.

>>> import streamtape
>>> tape = streamtape.open_tape("bug-1234.tape")
>>> tape.exchanges[0].end.outcome
'error'
"""

from ._version import __version__
from .compare import Comparison, compare
from .diagnose import Diagnostics, diagnose
from .errors import CorruptTapeError, NotATapeError, TapeError, TapeLimitError, TapeVersionError
from .matching import TapeMismatch
from .records import Chunk, End, Header, Request, Response
from .tape import Exchange, Tape, iter_records, open_tape

__all__ = [
    "Chunk",
    "Comparison",
    "CorruptTapeError",
    "Diagnostics",
    "End",
    "Exchange",
    "Header",
    "NotATapeError",
    "Request",
    "Response",
    "Tape",
    "TapeError",
    "TapeLimitError",
    "TapeMismatch",
    "TapeVersionError",
    "__version__",
    "compare",
    "diagnose",
    "iter_records",
    "open_tape",
]
