"""The runs table of an experiment: paging, sorting, filtering, columns, compare, user text."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect

from tests.browser.conftest import UI, screenshot


def _rows(page: Any) -> Any:
    return page.get_by_test_id("runs-table").locator("tbody tr[data-run-id]")


def _api_ids(ui: UI, **query: str) -> list[str]:
    from urllib.parse import urlencode

    page = ui.call("GET", f"/api/v1/experiments/{ui.experiments['resnet-sweep']}/runs?{urlencode(query)}")
    return [r["id"] for r in page["runs"]]


def test_open_an_experiment_page_sort_and_filter(page: Any, ui: UI) -> None:
    page.goto(f"{ui.url}/")
    page.get_by_role("link", name="resnet-sweep", exact=True).click()
    expect(page.get_by_role("heading", name="resnet-sweep")).to_be_visible()
    expect(_rows(page)).to_have_count(50)
    expect(page.get_by_test_id("page-text")).to_contain_text("of 300")
    screenshot(page, "runs-table")

    # sort by name, ascending then descending: the server's order, one page at a time
    header = page.get_by_role("columnheader", name="Name", exact=True)
    page.get_by_role("button", name="Name", exact=True).click()
    expect(header).to_have_attribute("aria-sort", "ascending")
    expected = _api_ids(ui, sort="name", order="asc", limit="50")
    expect(_rows(page).first).to_have_attribute("data-run-id", expected[0])
    page.get_by_role("button", name="Name", exact=True).click()
    expect(header).to_have_attribute("aria-sort", "descending")
    expected = _api_ids(ui, sort="name", order="desc", limit="50")
    expect(_rows(page).first).to_have_attribute("data-run-id", expected[0])
    assert [r.get_attribute("data-run-id") for r in _rows(page).all()] == expected

    # next page
    page.get_by_role("button", name="Next page").click()
    expect(page.get_by_test_id("page-text")).to_contain_text("51–100")

    # filter by status: only failed runs, as many as the server counts
    failed = ui.call(
        "GET", f"/api/v1/experiments/{ui.experiments['resnet-sweep']}/runs?filter=status%3Dfailed&total=true"
    )["total"]
    page.get_by_role("button", name="Status: any").click()
    dialog = page.get_by_role("dialog", name="Filter by status")
    dialog.get_by_role("checkbox", name="failed", exact=True).check()
    page.keyboard.press("Escape")
    expect(page.get_by_test_id("page-text")).to_contain_text(f"of {failed}")
    for status in _rows(page).evaluate_all("rows => rows.map(r => r.dataset.status)"):
        assert status == "failed"
    page.reload()  # the filter lives in the URL
    expect(page.get_by_test_id("page-text")).to_contain_text(f"of {failed}")

    # a param range on top: lr >= 0.03
    page.get_by_role("button", name="Clear all filters").click()
    page.get_by_label("Range filter field").select_option("params.lr")
    page.get_by_label("Range minimum").fill("0.03")
    page.get_by_role("button", name="Add range").click()
    expected_total = ui.call(
        "GET",
        f"/api/v1/experiments/{ui.experiments['resnet-sweep']}/runs?filter=params.lr%3E%3D0.03&total=true",
    )["total"]
    expect(page.get_by_test_id("page-text")).to_contain_text(f"of {expected_total}")

    # a bad advanced filter shows the server's message and keeps the table
    page.get_by_label("Advanced filter").fill("colour=red")
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_test_id("filter-error")).to_contain_text("colour")


def test_user_text_is_never_html(page: Any, ui: UI) -> None:
    evil = '<img src=x onerror="window.__pwned=1">'
    run = ui.call(
        "POST",
        f"/api/v1/experiments/{ui.experiments['tiny']}/runs",
        {"name": evil, "notes": "<script>window.__pwned=2</script>", "tags": ["<b>t</b>"]},
    )
    page.goto(f"{ui.url}/experiments/{ui.experiments['tiny']}")
    row = page.locator(f"tr[data-run-id='{run['id']}']")
    expect(row.get_by_role("link", name=evil)).to_be_visible()
    row.get_by_role("link", name=evil).click()
    expect(page.get_by_test_id("run-notes")).to_contain_text("<script>window.__pwned=2</script>")
    expect(page.get_by_test_id("run-tags")).to_contain_text("<b>t</b>")
    assert page.evaluate("window.__pwned") is None
    assert page.locator("img[src=x]").count() == 0


def test_compare_selected_runs_draws_their_curves(page: Any, ui: UI) -> None:
    page.goto(f"{ui.url}/experiments/{ui.experiments['resnet-sweep']}?sort=created_at&order=asc")
    expect(_rows(page)).to_have_count(50)
    first_two = _rows(page).all()[:2]
    names = [r.locator("td.rt-name a").inner_text() for r in first_two]
    for name in names:
        page.get_by_role("checkbox", name=f"Select run {name}", exact=True).check()
    panel = page.get_by_test_id("compare-panel")
    expect(panel.get_by_role("heading", name=re.compile(r"Compare \(2\)"))).to_be_visible()
    chart = panel.locator("[data-testid=metric-chart][data-key='train/loss']")
    expect(chart).to_be_visible()
    expect(chart).not_to_have_attribute("data-points", "0")
    page.reload()  # the selection lives in the URL
    expect(
        page.get_by_test_id("compare-panel").get_by_role("heading", name=re.compile(r"Compare \(2\)"))
    ).to_be_visible()
