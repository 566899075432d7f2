"""The public surface: what ``import runyard`` costs and gives, and what happens at exit."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import runyard
from tests.fakes.server import FakeServer

HEAVY = ("fastapi", "sqlalchemy", "numpy", "uvicorn", "orjson", "pydantic", "starlette", "alembic", "httpx")


def run_python(code: str, env: dict[str, str] | None = None, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *flags, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def test_public_api_is_pinned() -> None:
    assert sorted(runyard.__all__) == [
        "FinishResult",
        "Run",
        "SyncResult",
        "__version__",
        "errors",
        "init",
        "sync",
    ]
    for name in runyard.__all__:
        assert getattr(runyard, name) is not None
    assert runyard.errors.Unauthorized.status == 401


def test_import_runyard_is_light_and_never_loads_server_dependencies(tmp_path: Path) -> None:
    r = run_python(
        """
        import sys
        import runyard
        after_import = sorted(m for m in sys.modules if m.split(".")[0] in HEAVY)
        run = runyard.init(mode="offline", project="p", experiment="e")
        run.log({"a": 1.0})
        run.finish()
        after_use = sorted(m for m in sys.modules if m.split(".")[0] in HEAVY)
        print(after_import, after_use, "http.client" in sys.modules)
        """.replace("HEAVY", repr(HEAVY)),
        {"RUNYARD_SPOOL_DIR": str(tmp_path), "RUNYARD_CONFIG": str(tmp_path / "none.toml")},
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["[]", "[]", "False"]  # offline never even loads http.client


def test_import_runyard_takes_well_under_100_ms() -> None:
    r = run_python("import runyard", None, "-X", "importtime")
    assert r.returncode == 0, r.stderr
    # "import time: self [us] | cumulative | name"; the package line is the last one named runyard
    rows = [line.split("|") for line in r.stderr.splitlines() if line.startswith("import time:")]
    cumulative_us = next(int(row[1]) for row in reversed(rows) if row[2].strip() == "runyard")
    assert cumulative_us < 100_000, f"import runyard took {cumulative_us / 1000:.1f} ms"


SCRIPT = """
import sys
import runyard
run = runyard.init(project="p", experiment="e", run_id=sys.argv[1], flush_interval_s=0.01)
for step in range(100):
    run.log({"a": float(step)})
if sys.argv[2] == "crash":
    raise RuntimeError("boom")
"""


def test_atexit_finishes_a_run_the_script_forgot(fake: FakeServer, tmp_path: Path) -> None:
    with fake.serve_http() as url:
        env = {
            **os.environ,
            "RUNYARD_URL": url,
            "RUNYARD_API_KEY": "good-key",
            "RUNYARD_SPOOL_DIR": str(tmp_path),
            "RUNYARD_CONFIG": str(tmp_path / "none.toml"),
        }
        for run_id, how in (("forgot-finish", "normal"), ("crashed", "crash")):
            r = subprocess.run(
                [sys.executable, "-c", SCRIPT, run_id, how],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert r.returncode == (0 if how == "normal" else 1), r.stderr
            assert f"runyard: run {run_id} synced: 100 points" in r.stderr
    assert fake.runs["forgot-finish"].status == "finished"
    assert fake.runs["forgot-finish"].values("a") == [float(s) for s in range(100)]
    assert (fake.runs["crashed"].status, fake.runs["crashed"].exit_code) == ("failed", 1)
    assert len(fake.runs["crashed"].values("a")) == 100
