"""The run page: a chart with data, live metric points and log lines (through the event stream,
also after the connection dropped), notes, and the sections a researcher reads."""

from __future__ import annotations

import uuid
from typing import Any

from playwright.sync_api import expect

from tests.browser.conftest import UI, screenshot


def _batch(ui: UI, run_id: str, seq: int, **body: Any) -> None:
    ui.call("POST", f"/api/v1/runs/{run_id}/batches", {"writer": WRITER, "seq": seq, **body})


WRITER = f"browser-{uuid.uuid4().hex[:12]}"


def _lines(text: str) -> dict[str, Any]:
    return {"lines": [text], "streams": ["stdout"], "hosts": ["n1"], "ranks": [0]}


def _points(chart: Any) -> int:
    return int(chart.get_attribute("data-points") or 0)


def test_run_page_shows_charts_logs_and_details(page: Any, ui: UI) -> None:
    run_id = ui.runs["live"]
    page.goto(f"{ui.url}/runs/{run_id}")
    expect(page.get_by_role("heading", name="tiny-live")).to_be_visible()
    chart = page.locator("[data-testid=metric-chart][data-key='train/loss']").first
    expect(chart).to_be_visible()
    expect(chart).not_to_have_attribute("data-points", "0")
    # system charts from the sampler's keys, the console lines, artifacts with the checkpoint
    expect(page.get_by_role("heading", name="System")).to_be_visible()
    gpu_util = page.locator("[data-testid=system-chart][data-key=gpu-util]")
    expect(gpu_util).to_be_visible()
    expect(gpu_util).not_to_have_attribute("data-points", "0")
    lines = page.get_by_test_id("log-lines")
    expect(lines).to_contain_text("<b>not html</b>")  # a log line is text, never markup
    assert lines.locator("b").count() == 0
    expect(page.get_by_test_id("artifacts").locator("tr[data-kind=checkpoint]")).to_be_visible()
    expect(page.get_by_test_id("config-tree").locator("[data-key='model.depth']")).to_contain_text("18")
    expect(page.get_by_test_id("slurm-facts")).to_contain_text("60004242")
    screenshot(page, "run-page")

    # search the log
    page.get_by_label("Search logs").fill("warning")
    expect(page.get_by_test_id("log-match-count")).not_to_have_text("0")

    # notes: edit, save, still there after a reload
    note = f"lr too high? {uuid.uuid4().hex[:6]}"
    page.get_by_role("button", name="Edit notes").click()
    page.get_by_label("Notes", exact=True).fill(note)
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_test_id("run-notes")).to_contain_text(note)
    page.reload()
    expect(page.get_by_test_id("run-notes")).to_contain_text(note)
    assert ui.call("GET", f"/api/v1/runs/{run_id}")["notes"] == note


def test_live_metric_points_and_log_lines_arrive_without_reload(page: Any, ui: UI) -> None:
    run_id = ui.runs["live"]
    page.goto(f"{ui.url}/runs/{run_id}")
    chart = page.locator("[data-testid=metric-chart][data-key='train/loss']").first
    expect(chart).not_to_have_attribute("data-points", "0")
    expect(page.get_by_test_id("log-lines")).to_be_visible()
    expect(page.get_by_role("status", name="live updates: live")).to_be_visible()
    before = _points(chart)
    count_cell = page.locator("tr[data-metric='train/loss'] [data-col=count]")
    count_before = int(count_cell.inner_text().replace(",", ""))

    marker = f"live line {uuid.uuid4().hex[:8]}"
    _batch(
        ui,
        run_id,
        1,
        metrics={"train/loss": {"steps": [1_000_000], "values": [0.01]}},
        logs=_lines(marker),
    )
    expect(page.get_by_test_id("log-lines")).to_contain_text(marker, timeout=5_000)
    expect(count_cell).to_have_text(f"{count_before + 1:,}", timeout=5_000)
    page.wait_for_function(
        "([el, n]) => Number(el.dataset.points) > n", arg=[chart.element_handle(), before], timeout=5_000
    )

    # the connection drops (the server restarts): what was written meanwhile arrives once the
    # stream is back (another process: the page is told to refetch), nothing lost or doubled
    ui.server.kill()
    expect(page.get_by_role("status", name="live updates: live")).not_to_be_visible(timeout=15_000)
    ui.server.start()
    missed = f"after the drop {uuid.uuid4().hex[:8]}"
    _batch(
        ui, run_id, 2, logs=_lines(missed), metrics={"train/loss": {"steps": [1_000_001], "values": [0.02]}}
    )
    expect(page.get_by_role("status", name="live updates: live")).to_be_visible(timeout=20_000)
    expect(page.get_by_test_id("log-lines")).to_contain_text(missed, timeout=20_000)
    expect(count_cell).to_have_text(f"{count_before + 2:,}", timeout=20_000)
    assert page.get_by_test_id("log-lines").get_by_text(marker).count() == 1
