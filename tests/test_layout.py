"""The layout keeps its promises: the sans-IO packages import no HTTP library, socket, file layer or shell."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "streamtape"
SANS_IO = [
    *sorted((PACKAGE / "format").rglob("*.py")),
    PACKAGE / "model.py",
    *sorted((PACKAGE / "replay").rglob("*.py")),
    *sorted((PACKAGE / "analysis").rglob("*.py")),
    *sorted((PACKAGE / "faults").rglob("*.py")),
    *sorted((PACKAGE / "scrub").rglob("*.py")),
    PACKAGE / "fleet" / "rows.py",
    PACKAGE / "fleet" / "manifest.py",
]
FORBIDDEN = ("httpx", "httpx2", "anyio", "asyncio", "socket", "subprocess")
FORBIDDEN_INSIDE = ("storage", "transports", "cli", "record.pipeline", "record.registry", "emulator")


def _module_level_imports(path: Path) -> list[str]:
    """Absolute names of what the module imports at its top level (imports inside functions are lazy)."""
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    names = []
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[: len(base) - node.level + 1]
                names.append(".".join([*base, *([node.module] if node.module else [])]))
            else:
                names.append(node.module or "")
    return names


@pytest.mark.parametrize("path", SANS_IO, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_sans_io_module_imports_no_io_layer(path: Path) -> None:
    for name in _module_level_imports(path):
        top = name.split(".")[0]
        assert top not in FORBIDDEN, f"{path.name} imports {name}"
        inside = name.removeprefix("streamtape.")
        assert not inside.startswith(FORBIDDEN_INSIDE), f"{path.name} imports {name}"


def test_the_scan_sees_relative_imports() -> None:
    """A check that finds nothing must be able to find something."""
    names = _module_level_imports(PACKAGE / "storage" / "reader.py")
    assert "streamtape.format.codec" in names and "streamtape.model" in names
