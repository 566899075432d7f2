"""Browser tests: Playwright drives Debian's Chromium (headless) against a real ``runyard server``
that serves the built web UI, on data written by ``scripts/seed_ui.py``.

Chromium comes from ``scripts/chromium.sh`` (Debian's package; Playwright's own download does
not work offline) and the UI from ``make web``. Without either, these tests fail on CI
(``CI=true``) and skip elsewhere, with the reason.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import LiveServer, free_port

REPO = Path(__file__).resolve().parents[2]
WEBUI_INDEX = REPO / "src" / "runyard" / "server" / "webui" / "index.html"
CHROMIUM_ARGS = [
    "--no-sandbox",  # as root
    "--disable-gpu",
    "--disable-background-networking",  # nothing outside answers here
    "--disable-component-update",
    "--no-first-run",
]
SCREENSHOTS = os.environ.get("RUNYARD_SCREENSHOTS")  # `make screenshots` sets it: where to save

sys.path.insert(0, str(REPO / "scripts"))


def unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium() -> str:
    done = subprocess.run(
        ["bash", str(REPO / "scripts" / "chromium.sh")], capture_output=True, text=True, timeout=900
    )
    if done.returncode != 0:
        unavailable(f"Chromium unavailable: {done.stderr.strip()[-500:]}")
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[Any]:
    """Per module: Playwright's sync API runs an event loop in this thread while it is open,
    and tests after the browser modules (asyncio.run in tests/server) need none running."""
    if not WEBUI_INDEX.is_file():
        unavailable(f"the web UI is not built ({WEBUI_INDEX} missing): run `make web`")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@dataclass
class UI:
    """The server under test, the seeded ids and a key for API calls made beside the browser."""

    server: LiveServer
    key: str
    experiments: dict[str, str]
    runs: dict[str, str]

    @property
    def url(self) -> str:
        return self.server.url

    def call(self, method: str, path: str, body: Any = None, key: str | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json", "X-API-Key": key or self.key}
        req = urllib.request.Request(f"{self.url}{path}", data=data, method=method, headers=headers)
        with urllib.request.urlopen(req, timeout=60) as r:
            raw = r.read()
            return json.loads(raw) if raw else None


@pytest.fixture(scope="session")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UI]:
    from seed_ui import seed

    from runyard.store.sql import SqlStore

    data = tmp_path_factory.mktemp("browser") / "data"
    data.mkdir()
    store = SqlStore(f"sqlite:///{data / 'runyard.db'}")
    store.upgrade()
    try:
        seeded = seed(store, runs=300, steps=2000)
    finally:
        store.close()
    (data / "admin.key").write_text(str(seeded["api_key"]))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNYARD_", "SLURM_", "TRACKER_"))}
    env.update(
        RUNYARD_CONFIG=str(data / "client-config.toml"),
        RUNYARD_EXECUTOR="slurm",
        RUNYARD_SLURM_POLL_S="1",
        RUNYARD_SLURM_POLL_MAX_S="2",
        RUNYARD_SLURM_MAX_CALLS_PER_MIN="300",
        RUNYARD_JOB_PYTHON=sys.executable,
        PYTHONUNBUFFERED="1",
    )
    server = LiveServer(data, free_port(), env)
    server.start()
    yield UI(server, str(seeded["api_key"]), dict(seeded["experiments"]), dict(seeded["runs"]))  # type: ignore[arg-type]
    server.stop()


class PageErrors(list[str]):
    """Uncaught errors in the page: a test fails when any happened (never a blank screen)."""


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context(viewport={"width": 1400, "height": 900})
    ctx.set_default_timeout(15_000)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: Any, ui: UI) -> Iterator[Any]:
    """A page signed in as the seeded admin (the session cookie set through the API)."""
    signed = context.request.post(f"{ui.url}/api/v1/session", data={"api_key": ui.key})
    assert signed.ok, signed.text()
    p = context.new_page()
    errors = PageErrors()
    p.on("pageerror", lambda exc: errors.append(str(exc)))
    yield p
    assert not errors, f"uncaught errors in the page: {errors}"


def screenshot(page: Any, name: str) -> None:
    """Save a README screenshot when `make screenshots` asked for them."""
    if SCREENSHOTS:
        target = REPO / SCREENSHOTS
        target.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(target / f"{name}.png"), full_page=False)
