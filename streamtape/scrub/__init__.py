"""Secrets left in a recorded tape: finding them (``streamtape scan``) and removing them (``streamtape redact``).

The recorder redacts known header and query names as it records (``record.redact``); this package works on
a tape afterwards, on everything it holds, bodies and streams included, so that a tape can be attached to a
bug report. Sans-IO: tapes and bytes in, findings or a new tape out; the verbs are ``cli.scrub``.

- ``patterns``: the secret kinds, regular expressions over bytes, and how a secret is masked for printing;
- ``jsontext``: a JSON document's values with their byte spans, so one value can be replaced in place;
- ``encoding``: a gzip/deflate/zstd body decoded chunk by chunk;
- ``edits``: byte edits on one string, or across chunks without moving them in time;
- ``scan``: the places of an exchange and the findings in them;
- ``rewrite``: the redacted copy of a tape, and the header that says what was redacted.
"""

from .patterns import KIND_NAMES
from .rewrite import RedactOptions, RedactResult, redact_tape
from .scan import Finding, ScanResult, scan_tape

__all__ = ["KIND_NAMES", "Finding", "RedactOptions", "RedactResult", "ScanResult", "redact_tape", "scan_tape"]
