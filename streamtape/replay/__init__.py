"""Replay's sans-IO core: which recorded exchange answers a live request (``matching``) and when each
of its bytes is due (``schedule``). The transports in ``streamtape.transports`` only wait and act."""
