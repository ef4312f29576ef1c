"""Regenerate ``openai-1.x-chat.tape`` in a separate virtual environment holding openai 1.x.

The test suite installs openai 3.x; this tape must come from the older major release, so it is recorded
in a throwaway virtual environment with ``openai>=1.100,<2`` and this checkout of streamtape installed,
by ``record_sdk_upgrade.py``. Needs the package index the project installs from (PyPI or a mirror).

    python tests/tapes/regenerate_sdk_upgrade.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import venv
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
TAPE = HERE / "openai-1.x-chat.tape"
OPENAI_1 = "openai>=1.100,<2"


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="streamtape-openai1-") as tmp:
        venv.create(tmp, with_pip=True)
        python = str(Path(tmp) / "bin" / "python")
        subprocess.run([python, "-m", "pip", "install", "--quiet", OPENAI_1, str(ROOT)], check=True)
        TAPE.unlink(missing_ok=True)
        subprocess.run([python, str(HERE / "record_sdk_upgrade.py"), str(TAPE)], check=True, cwd=tmp)


if __name__ == "__main__":
    sys.exit(main())
