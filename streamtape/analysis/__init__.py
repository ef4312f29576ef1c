"""What a recorded exchange says, sans-IO: SSE decoding (``sse``), the providers' stream assemblers
(``providers``), the diagnosis (``diagnose``) and the comparison of two exchanges (``compare``).
Works on the tape model only; never on files, sockets or clocks."""
