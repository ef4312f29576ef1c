"""Plausible provider response headers (request ids, rate-limit counters, processing time).

Deterministic from the seed and the attempt number, so a retried request gets a new request id, as it
would from the real API, while a replayed scenario gets the same ones.
"""

from __future__ import annotations

import uuid

from .content import random_id, rng
from .scenario import Scenario


def openai_headers(scenario: Scenario, attempt: int) -> list[tuple[str, str]]:
    r = rng(scenario, f"openai-headers:{attempt}")
    return [
        ("x-request-id", "req_" + random_id(r, 32, "0123456789abcdef")),
        ("openai-organization", "user-" + random_id(r, 24).lower()),
        ("openai-processing-ms", str(r.randint(80, 900))),
        ("openai-project", "proj_" + random_id(r, 24)),
        ("openai-version", "2020-10-01"),
        ("x-ratelimit-limit-requests", "10000"),
        ("x-ratelimit-remaining-requests", str(9999 - attempt)),
        ("x-ratelimit-limit-tokens", "2000000"),
        ("x-ratelimit-remaining-tokens", str(2000000 - r.randint(20, 4000))),
        ("x-ratelimit-reset-requests", "6ms"),
        ("x-ratelimit-reset-tokens", "0s"),
    ]


def anthropic_request_id(scenario: Scenario, attempt: int) -> str:
    r = rng(scenario, f"anthropic-request-id:{attempt}")
    return "req_011C" + random_id(r, 20)


def anthropic_headers(scenario: Scenario, attempt: int) -> list[tuple[str, str]]:
    r = rng(scenario, f"anthropic-headers:{attempt}")
    org = uuid.UUID(int=r.getrandbits(128), version=4)
    return [
        ("request-id", anthropic_request_id(scenario, attempt)),
        ("anthropic-organization-id", str(org)),
        ("anthropic-ratelimit-requests-limit", "4000"),
        ("anthropic-ratelimit-requests-remaining", str(3999 - attempt)),
        ("anthropic-ratelimit-requests-reset", "2025-01-01T00:00:01Z"),
        ("anthropic-ratelimit-input-tokens-limit", "400000"),
        ("anthropic-ratelimit-input-tokens-remaining", "400000"),
        ("anthropic-ratelimit-output-tokens-limit", "80000"),
        ("anthropic-ratelimit-output-tokens-remaining", "80000"),
        ("via", "1.1 google"),
    ]
