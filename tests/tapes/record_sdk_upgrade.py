"""Record the SDK-upgrade tape: one streamed chat completion through whatever ``openai`` is installed.

Run by ``regenerate_sdk_upgrade.py`` inside a virtual environment holding openai 1.x, so the tape holds the
request exactly as openai 1.x sends it (its JSON key order, its headers). The test suite, which installs
openai 3.x, replays it (``tests/test_sdk_upgrade.py``). The same call is made there: keep them in step.

    python tests/tapes/record_sdk_upgrade.py OUT.tape
"""

from __future__ import annotations

import sys

import httpx
import openai

import streamtape.httpx
from streamtape.emulator import Emulator

#: The call, as the test makes it too.
CALL = {
    "model": "gpt-4o-mini",
    "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello"}],
    "stream": True,
    "stream_options": {"include_usage": True},
    "temperature": 0.2,
    "max_tokens": 50,
    "user": "alice",
}
#: Fixed, so the tape is the same from one regeneration to the next but for its times.
PORT = 47811


def main(out: str) -> None:
    with Emulator(port=PORT) as emulator:
        transport = streamtape.httpx.RecordingTransport(out, meta={"openai": openai.__version__})
        client = openai.OpenAI(
            base_url=emulator.url(events=6) + "/v1",
            api_key="sk-test-sdk-upgrade",
            http_client=httpx.Client(transport=transport),
        )
        stream = client.chat.completions.create(**CALL)  # type: ignore[call-overload]
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        client.close()
    print(f"{out}: openai {openai.__version__}, answer {text!r}")


if __name__ == "__main__":
    main(sys.argv[1])
