"""An SSE emulator: a real HTTP/1.1 server on 127.0.0.1 speaking the streaming wire formats of
OpenAI Chat Completions, the OpenAI Responses API and Anthropic Messages, able to misbehave on purpose
(stalls, resets, truncated bodies, mid-stream errors, split UTF-8, retryable error statuses).
"""

from .content import expected_text, expected_tool_calls
from .scenario import Scenario
from .server import Emulator, RecordedRequest

__all__ = ["Emulator", "RecordedRequest", "Scenario", "expected_text", "expected_tool_calls"]
