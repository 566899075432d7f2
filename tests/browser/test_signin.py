"""Signing in and out, the session cookie, the projects page, themes and error pages."""

from __future__ import annotations

import urllib.request
from typing import Any

from playwright.sync_api import expect

from tests.browser.conftest import UI


def _cookie(context: Any) -> dict[str, Any]:
    cookies = [c for c in context.cookies() if c["name"] == "runyard_session"]
    assert len(cookies) == 1, context.cookies()
    return dict(cookies[0])


def test_sign_in_with_a_key_sets_an_http_only_cookie(context: Any, ui: UI) -> None:
    page = context.new_page()
    page.goto(f"{ui.url}/")
    expect(page.get_by_role("heading", name="Sign in to Runyard")).to_be_visible()
    page.get_by_label("API key").fill("ry_wrong_key_that_does_not_exist_000000000000000")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("key")  # the server's message, in the page
    assert not [c for c in context.cookies() if c["name"] == "runyard_session"]

    page.get_by_label("API key").fill(ui.key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_test_id("whoami")).to_have_text("admin")
    cookie = _cookie(context)
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert page.evaluate("document.cookie") == ""  # scripts never see the session

    page.reload()  # the cookie keeps the session
    expect(page.get_by_test_id("whoami")).to_have_text("admin")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in to Runyard")).to_be_visible()
    page.reload()
    expect(page.get_by_role("heading", name="Sign in to Runyard")).to_be_visible()


def test_sign_in_with_username_and_password(context: Any, ui: UI) -> None:
    page = context.new_page()
    page.goto(f"{ui.url}/")
    page.get_by_role("tab", name="Username and password").click()
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_be_visible()
    page.get_by_label("Password").fill("runyard-alice")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_test_id("whoami")).to_have_text("alice")


def test_projects_list_experiments_with_counts(page: Any, ui: UI) -> None:
    page.goto(f"{ui.url}/")
    expect(page.get_by_role("heading", name="vision")).to_be_visible()
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name="resnet-sweep", exact=True))
    expect(row).to_contain_text("300")
    page.get_by_role("link", name="tiny", exact=True).click()
    expect(page).to_have_url(f"{ui.url}/experiments/{ui.experiments['tiny']}")


def test_an_expired_session_asks_to_sign_in_again(context: Any, page: Any, ui: UI) -> None:
    page.goto(f"{ui.url}/cluster")
    expect(page.get_by_test_id("whoami")).to_have_text("admin")
    # the session ends behind the page's back (signed out elsewhere, or expired); the browser
    # keeps its cookie
    token = _cookie(context)["value"]
    req = urllib.request.Request(
        f"{ui.url}/api/v1/session",
        method="DELETE",
        headers={"Cookie": f"runyard_session={token}", "X-Requested-With": "runyard"},
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        assert r.status == 204
    # the page's next request gets 401 (a refresh of this page may come first): go to Projects
    page.evaluate("() => { history.pushState(null, '', '/'); dispatchEvent(new PopStateEvent('popstate')); }")
    expect(page.get_by_role("status").filter(has_text="session has expired")).to_be_visible()
    expect(page.get_by_role("heading", name="Sign in to Runyard")).to_be_visible()


def test_theme_toggle_and_keyboard_skip_link(page: Any, ui: UI) -> None:
    page.goto(f"{ui.url}/")
    expect(page.get_by_role("heading", name="Projects")).to_be_visible()
    before = page.evaluate("document.documentElement.dataset.theme")
    page.get_by_role("button", name="Switch to").click()
    after = page.evaluate("document.documentElement.dataset.theme")
    assert {before, after} == {"light", "dark"}
    bg = page.evaluate("getComputedStyle(document.body).backgroundColor")
    page.reload()  # remembered
    expect(page.get_by_role("heading", name="Projects")).to_be_visible()
    assert page.evaluate("document.documentElement.dataset.theme") == after
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == bg
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()


def test_unknown_page_and_server_errors_show_messages(page: Any, ui: UI) -> None:
    page.goto(f"{ui.url}/runs/0000000000000000000000000000dead")
    expect(page.get_by_role("alert")).to_contain_text("0000000000000000000000000000dead")
    page.goto(f"{ui.url}/experiments/nope")
    expect(page.get_by_role("alert")).to_be_visible()
