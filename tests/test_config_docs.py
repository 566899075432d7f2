"""Every environment variable the code reads is declared once and documented."""

from __future__ import annotations

import re
from pathlib import Path

from runyard.config import ENV_VARS

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "configuration.md"
# Variables other programs set that the client reads to learn where it runs (not settings).
JOB_CONTEXT = re.compile(r"^(SLURM_\w+|SLURMD_NODENAME|RANK|LOCAL_RANK|WORLD_SIZE|CI|HOME|USER|TMPDIR)$")


def test_every_declared_variable_is_documented() -> None:
    text = DOC.read_text()
    for var in ENV_VARS:
        assert f"`{var.name}`" in text, (
            f"{var.name} is declared in runyard.config but missing from {DOC.name}"
        )


def test_code_reads_only_declared_variables() -> None:
    declared = {v.name for v in ENV_VARS}
    pattern = re.compile(r"""(?:environ(?:\.get)?\(|environ\[|getenv\(|env\()\s*["']([A-Z][A-Z0-9_]+)["']""")
    for path in (ROOT / "src" / "runyard").rglob("*.py"):
        for name in pattern.findall(path.read_text()):
            assert name in declared or JOB_CONTEXT.match(name), f"{path}: reads undeclared variable {name}"


def test_generated_docs_are_current() -> None:
    import subprocess
    import sys

    r = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_docs.py"), "--check"], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
