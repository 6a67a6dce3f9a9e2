"""The import direction (tools → service → core) and what a v0 bridge loads."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BRIDGE = ROOT / "bridge"


def _imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.update(f"{node.module}.{a.name}" for a in node.names)  # "from bridge import media"
    return out


def _offenders(files: list[Path], forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{p.relative_to(ROOT)} imports {m}"
        for p in files
        for m in _imports(p)
        if any(m == f or m.startswith(f + ".") for f in forbidden)
    )


def test_the_service_never_imports_the_tools() -> None:
    service = [p for p in BRIDGE.rglob("*.py") if "tools" not in p.relative_to(BRIDGE).parts]
    assert service
    assert _offenders(service, ("bridge.tools",)) == []


def test_the_core_imports_only_the_core_and_the_pure_leaves() -> None:
    """bridge.core may use bridge.errors (codes) and bridge.media (sniffing), nothing of the service."""
    core = list((BRIDGE / "core").rglob("*.py"))
    assert core
    allowed = ("bridge.core.", "bridge.errors.", "bridge.media.")
    offenders = [
        o for o in _offenders(core, ("bridge",)) if not (o.split(" imports ")[1] + ".").startswith(allowed)
    ]
    assert offenders == []


def test_a_v0_bridge_does_not_load_the_v1_adapter_or_pyav() -> None:
    code = (
        "import sys\n"
        "from bridge.app import Bridge\n"
        "from bridge.config import load\n"
        "Bridge(load({'HUME_API_KEY': 'k', 'BRIDGE_HUME_API': 'v0'}))\n"
        "print(sorted(m for m in ('av', 'bridge.upstream.v1.adapter', 'bridge.upstream.v0.adapter')"
        " if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "['bridge.upstream.v0.adapter']"
