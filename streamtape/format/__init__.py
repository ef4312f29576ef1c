"""The tape format, sans-IO: the record types, their encoding into zstd frames, and back.

No files and no clocks live here. ``records`` is the single source of the format (the JSON Schema in
``spec/`` is generated from it), ``codec`` turns records into frames and bytes back into records,
``lifecycle`` is the order records of one exchange must follow, and ``jsonform`` is their JSON form.
"""

from .codec import TapeDecoder, compress_frame, decode_record, encode_frame, encode_record, new_compressor
from .lifecycle import LifecycleError, Phase
from .records import (
    FORMAT_MAJOR,
    FORMAT_MINOR,
    MAGIC,
    Chunk,
    End,
    Header,
    Headers,
    Outcome,
    Record,
    Redaction,
    Request,
    Response,
)

__all__ = [
    "FORMAT_MAJOR",
    "FORMAT_MINOR",
    "MAGIC",
    "Chunk",
    "End",
    "Header",
    "Headers",
    "LifecycleError",
    "Outcome",
    "Phase",
    "Record",
    "Redaction",
    "Request",
    "Response",
    "TapeDecoder",
    "compress_frame",
    "decode_record",
    "encode_frame",
    "encode_record",
    "new_compressor",
]
