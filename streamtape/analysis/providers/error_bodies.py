"""The providers' error JSON: HTTP error bodies and the error events sent in the middle of a stream.

OpenAI wraps errors as `{"error": {"message", "type", "param", "code"}}` (the SDK reads `body["error"]`);
Anthropic as `{"type": "error", "error": {"type", "message"}, "request_id"}` (the SDK picks the exception
class by status, 529 being `OverloadedError`).
"""

from __future__ import annotations

from typing import Any

_OPENAI: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("invalid_request_error", "unsupported_country_region_territory", "Request not allowed."),
    404: ("invalid_request_error", None, "The requested resource does not exist."),
    429: (
        "requests",
        "rate_limit_exceeded",
        "Rate limit reached for requests. Please try again in 1s.",
    ),
    500: ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}

_ANTHROPIC: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", "The requested resource could not be found."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit."),
    500: ("api_error", "Internal server error"),
    503: ("api_error", "Service unavailable"),
    529: ("overloaded_error", "Overloaded"),
}


def openai_error(status: int, message: str | None = None) -> dict[str, Any]:
    """The body of an OpenAI HTTP error response."""
    kind, code, default = _OPENAI.get(status) or (
        ("server_error", None, "The server had an error processing your request.")
        if status >= 500
        else ("invalid_request_error", None, "Invalid request.")
    )
    return {"error": {"message": message or default, "type": kind, "param": None, "code": code}}


def anthropic_error(status: int, request_id: str, message: str | None = None) -> dict[str, Any]:
    """The body of an Anthropic HTTP error response."""
    kind, default = _ANTHROPIC.get(status) or (
        ("api_error", "Internal server error")
        if status >= 500
        else ("invalid_request_error", "Invalid request.")
    )
    return {"type": "error", "error": {"type": kind, "message": message or default}, "request_id": request_id}


def openai_stream_error() -> dict[str, Any]:
    """The Chat Completions mid-stream error: a data event whose JSON has an `error` object."""
    return {
        "error": {
            "message": "The server had an error while processing your request. Sorry about that!",
            "type": "server_error",
            "param": None,
            "code": None,
        }
    }


def anthropic_stream_error() -> dict[str, Any]:
    """The Anthropic mid-stream `error` event (an overload after the 200 was already sent)."""
    return {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
