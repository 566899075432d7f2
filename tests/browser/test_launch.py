"""Launching from the form onto the real local Slurm cluster, watching the run go queued →
running → finished in the page, cancelling a job, and the cluster page."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import UI, screenshot
from tests.slurm.conftest import dev_cluster  # noqa: F401  (brings the cluster up)

PY = sys.executable


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path


def _launch(page: Any, ui: UI, workdir: Path, name: str, command: str, after: str = "") -> str:
    page.goto(f"{ui.url}/launch")
    page.get_by_label("Project").fill("browser")
    page.get_by_label("Experiment", exact=True).fill("launch")
    page.get_by_label("Run name").fill(name)
    page.get_by_label("Command", exact=True).fill(command)
    page.get_by_label("Working directory").fill(str(workdir))
    # a select once the cluster's partitions are read (a text box until then)
    page.locator("select#lf-partition").select_option("debug", timeout=30_000)
    page.get_by_label("Time limit").fill("5")
    if after:
        page.get_by_label("Start after").fill(after)
    page.get_by_role("button", name="Launch", exact=True).click()
    page.wait_for_url(re.compile(r"/runs/[0-9a-f]+$"), timeout=30_000)
    return str(page.url.rsplit("/", 1)[1])


def _status(page: Any) -> Any:
    return page.locator(".run-title [data-status]")


def test_launch_from_the_form_queued_running_finished_and_cancel(
    dev_cluster: None,  # noqa: F811
    page: Any,
    ui: UI,
    workdir: Path,
) -> None:
    blocker = _launch(page, ui, workdir, "blocker", f'{PY} -c "import time; time.sleep(300)"')
    expect(_status(page)).to_have_attribute("data-status", "running", timeout=60_000)

    # the follower waits for the blocker: queued with Slurm's reason, in the page
    follower = _launch(
        page,
        ui,
        workdir,
        "follower",
        f"{PY} -c \"import time; print('hello from slurm'); time.sleep(4)\"",
        after=f"{blocker}:any",
    )
    expect(_status(page)).to_have_attribute("data-status", "queued", timeout=30_000)
    expect(page.locator(".run-title")).to_contain_text("Dependency", timeout=30_000)

    # the cluster page lists both jobs, the follower pending on its dependency
    page.goto(f"{ui.url}/cluster")
    expect(page.locator("[data-testid=cluster-node]")).to_have_count(3)
    queue = page.get_by_test_id("queue-table")
    expect(queue.locator(f"a[href='/runs/{follower}']")).to_be_visible()
    expect(queue.locator(f"a[href='/runs/{blocker}']")).to_be_visible()
    screenshot(page, "cluster")

    # cancel the blocker from its page: it ends cancelled, live
    page.goto(f"{ui.url}/runs/{blocker}")
    page.get_by_role("button", name="Cancel job").click()
    page.get_by_role("alertdialog").get_by_role("button", name="Yes, cancel").click()
    expect(_status(page)).to_have_attribute("data-status", "cancelled", timeout=60_000)

    # the follower starts and finishes while its page is open (no reload)
    page.goto(f"{ui.url}/runs/{follower}")
    expect(_status(page)).to_have_attribute("data-status", "running", timeout=60_000)
    expect(_status(page)).to_have_attribute("data-status", "finished", timeout=60_000)
    expect(page.get_by_test_id("history")).to_contain_text("finished")


def test_launch_form_warns_and_shows_server_errors(page: Any, ui: UI, workdir: Path) -> None:
    page.goto(f"{ui.url}/launch")
    page.get_by_label("Command", exact=True).fill("python 'unterminated")
    expect(page.get_by_test_id("error-lf-command")).to_be_visible()
    page.get_by_label("Command", exact=True).fill("python train.py --lr 0.1")
    expect(page.get_by_test_id("argv-preview")).to_contain_text("--lr")
    page.get_by_label("Project").fill("browser")
    page.get_by_label("Experiment", exact=True).fill("launch")
    page.get_by_label("Working directory").fill(str(workdir / "does-not-exist"))
    page.get_by_role("button", name="Launch", exact=True).click()
    expect(page.get_by_test_id("error-lf-workdir")).to_contain_text("workdir")
