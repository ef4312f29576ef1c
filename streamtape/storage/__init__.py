"""Tapes on disk: reading them (``reader``), writing one whole and atomically (``atomic``), and appending
to one while recording (``writer``). The only package besides the shells that touches files."""

from .atomic import write_tape
from .reader import RecordStream, iter_records, open_tape

__all__ = ["RecordStream", "iter_records", "open_tape", "write_tape"]
