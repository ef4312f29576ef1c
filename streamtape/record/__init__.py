"""Recording's library-independent core: one state machine per exchange (``recorder``) and the removal
of secrets before anything reaches a tape (``redact``). The transports feed it; ``storage`` writes."""
