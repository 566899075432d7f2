"""The sweep and pipeline pages in Chromium, on a real sweep and a real pipeline run by the
local Slurm cluster: progress that moves live, the parallel-coordinates plot drawn from the
trials' params and values, the best trial, parameter importance, and a pipeline's DAG showing
the step that will never run."""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import UI, screenshot
from tests.slurm.conftest import dev_cluster  # noqa: F401  (brings the cluster up)

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
TRAIN = ROOT / "examples" / "sweeps" / "train.py"
STEPS = ROOT / "examples" / "sweeps" / "steps.py"
LRS = (0.3, 0.03, 0.01, 0.001)

SWEEP = f"""\
name: browser-grid
project: browser
experiment: sweeps
command: [{PY}, {TRAIN}, --epochs, "4", --step-time, "0.5"]
method: grid
parameters:
  lr: {list(LRS)}
  batch_size: [32, 128]
concurrency: 4
metric: {{name: val/loss, goal: minimize}}
resources: {{partition: debug, mem: 200M, time: "00:05:00"}}
"""

PIPELINE = f"""\
name: browser-pipeline
project: browser
experiment: sweeps
env: {{DATA_DIR: data}}
resources: {{partition: debug, mem: 200M, time: "00:05:00"}}
steps:
  prepare:
    command: [{PY}, {STEPS}, prep]
  train:
    command: [{PY}, {STEPS}, train, --fail]
    after: prepare
  evaluate:
    command: [{PY}, {STEPS}, evaluate]
    after: train
"""


@pytest.fixture(scope="module")
def submitted(
    dev_cluster: None,  # noqa: F811
    ui: UI,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Any]]:
    folder = tmp_path_factory.mktemp("browser-sweeps")
    sweep = ui.call(
        "POST", "/api/v1/sweeps", {"spec": SWEEP, "source": "sweep.yaml", "base_dir": str(folder)}
    )
    body = {"spec": PIPELINE, "source": "pipeline.yaml", "base_dir": str(folder)}
    pipeline = ui.call("POST", "/api/v1/pipelines", body)
    yield {"sweep": sweep, "pipeline": pipeline}
    ui.call("POST", f"/api/v1/sweeps/{sweep['id']}/cancel")


def _ended(ui: UI, path: str, timeout_s: float = 240) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    found: dict[str, Any] = ui.call("GET", path)
    while found["state"] == "running":
        assert time.monotonic() < deadline, f"{path} still running after {timeout_s:.0f} s: {found}"
        time.sleep(1)
        found = ui.call("GET", path)
    return found


def test_sweep_page_progress_parallel_coordinates_and_best_trial(
    page: Any, ui: UI, submitted: dict[str, Any]
) -> None:
    sweep_id = submitted["sweep"]["id"]
    page.goto(f"{ui.url}/sweeps/{sweep_id}")
    expect(page.get_by_role("heading", name="browser-grid")).to_be_visible()
    # opened while it runs: the page follows it live to all 8 done
    done = page.get_by_test_id("sweep-counts").locator("li[data-count=done] strong")
    expect(done).to_have_text("8", timeout=240_000)
    sweep = _ended(ui, f"/api/v1/sweeps/{sweep_id}")
    assert sweep["counts"]["finished"] == 8, sweep["counts"]

    plot = page.get_by_role("img", name="Parallel coordinates")
    expect(plot).to_be_visible()
    # one axis per parameter and one for the metric
    for param in ("lr", "batch_size"):
        expect(plot.locator(f"[data-testid=pc-axis][data-param={param}]")).to_have_count(1)
    expect(plot.locator('[data-testid=pc-axis][data-metric="true"]')).to_have_attribute(
        "data-param", "val/loss"
    )
    # a line per trial with a value: the real trials, by their index
    lines = plot.locator('[data-testid=pc-line][data-has-value="true"]')
    expect(lines).to_have_count(8)
    indexes = sorted(int(lines.nth(i).get_attribute("data-trial")) for i in range(8))
    assert indexes == [t["index"] for t in sweep["trials"]]

    # the best trial is the server's, with its value and a link to its run
    best = sweep["best"]
    box = page.get_by_test_id("best-trial")
    expect(box).to_contain_text("Trial #" + str(best["index"]))
    expect(box.locator(f'a[href="/runs/{best["run_id"]}"]')).to_have_count(1)
    # lr drives the loss, batch size barely: lr ranks first
    importance = page.get_by_test_id("importance")
    expect(importance).to_contain_text("lr")
    ranked = [p["param"] for p in sweep["importance"]]
    assert ranked[0] == "lr", sweep["importance"]
    screenshot(page, "sweep")

    # hovering a line names its trial; clicking it opens the run
    # (a point near the metric's end of its line, where each trial's line is its own)
    points = plot.locator(f'[data-testid=pc-line][data-trial="{best["index"]}"]').get_attribute("points")
    (x1, y1), (x2, y2) = [tuple(float(v) for v in p.split(",")) for p in points.split()[-2:]]
    spot = {"x": x1 + 0.9 * (x2 - x1), "y": y1 + 0.9 * (y2 - y1)}
    plot.hover(position=spot)
    expect(page.get_by_test_id("pc-tooltip")).to_contain_text(f"#{best['index']}")
    plot.click(position=spot)
    expect(page).to_have_url(f"{ui.url}/runs/{best['run_id']}")


def test_pipeline_page_shows_the_step_that_will_never_run(
    page: Any, ui: UI, submitted: dict[str, Any]
) -> None:
    pipeline_id = submitted["pipeline"]["id"]
    page.goto(f"{ui.url}/pipelines/{pipeline_id}")
    expect(page.get_by_role("heading", name="browser-pipeline")).to_be_visible()
    node = page.locator("[data-testid=dag-node][data-step=evaluate]")
    # live: it turns "never" once train has failed, without a reload
    expect(node).to_have_attribute("data-state", "never", timeout=240_000)
    expect(page.locator("[data-testid=dag-node][data-step=train]")).to_have_attribute("data-state", "failed")
    expect(page.locator("[data-testid=dag-node][data-step=prepare]")).to_have_attribute(
        "data-state", "finished"
    )
    expect(node.get_by_test_id("step-reason")).to_contain_text("never runs: train failed")
    screenshot(page, "pipeline")


def test_launch_form_submits_a_grid_as_a_sweep(page: Any, ui: UI, tmp_path: Path) -> None:
    page.goto(f"{ui.url}/launch")
    page.get_by_label("Project").fill("browser")
    page.get_by_label("Experiment", exact=True).fill("form-sweep")
    page.get_by_label("Run name").fill("form-grid")
    page.get_by_label("Command", exact=True).fill(f"{PY} {TRAIN} --epochs 2 --step-time 0.2")
    page.get_by_label("Working directory").fill(str(tmp_path))
    page.locator("select#lf-partition").select_option("debug", timeout=30_000)
    page.get_by_label("Memory (GB)").fill("0.2")
    page.get_by_label("Time limit").fill("5")
    page.get_by_label("Sweep parameters").fill("lr = 0.1, 0.01\nbatch_size = 32, 64")
    page.get_by_label("Tasks at once").fill("2")
    page.get_by_label("Metric to optimise").fill("val/loss")
    expect(page.get_by_test_id("launch-summary")).to_contain_text("A sweep of 4 trials")
    page.get_by_role("button", name="Launch", exact=True).click()
    page.wait_for_url(re.compile(r"/sweeps/[0-9a-f]+$"), timeout=30_000)
    sweep_id = page.url.rsplit("/", 1)[1]
    sweep = ui.call("GET", f"/api/v1/sweeps/{sweep_id}")
    assert (sweep["method"], sweep["trial_count"], sweep["concurrency"]) == ("grid", 4, 2)
    assert [t["params"] for t in sweep["trials"]] == [
        {"lr": 0.1, "batch_size": 32},
        {"lr": 0.1, "batch_size": 64},
        {"lr": 0.01, "batch_size": 32},
        {"lr": 0.01, "batch_size": 64},
    ]
    done = page.get_by_test_id("sweep-counts").locator("li[data-count=done] strong")
    expect(done).to_have_text("4", timeout=240_000)
    expect(page.get_by_test_id("best-trial")).to_contain_text("val/loss")
