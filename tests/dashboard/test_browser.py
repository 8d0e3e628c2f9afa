"""The dashboard in headless Chromium, against a running worker and a real Redis."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from dashboard.conftest import Site
from support.waiting import wait_for

PAGES = [
    ("overview", "/ui/"),
    ("queues", "/ui/queues"),
    ("jobs", "/ui/jobs"),
    ("workers", "/ui/workers"),
    ("dlq", "/ui/dlq"),
    ("cron", "/ui/cron"),
]


def submit(site: Site, **body: object) -> str:
    response = site.api.post("/jobs", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def state_of(site: Site, job_id: str) -> str:
    return str(site.api.get(f"/jobs/{job_id}").json()["state"])


def test_every_page_loads(site: Site, page: Page) -> None:
    job_id = submit(site, function="add", args=[1, 2])
    wait_for(lambda: state_of(site, job_id) == "succeeded")
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    for name, path in PAGES:
        response = page.goto(site.url + path)
        assert response is not None and response.status == 200, name
        expect(page.locator("h1")).to_be_visible()
    page.goto(f"{site.url}/ui/jobs/{job_id}")
    expect(page.locator("h1")).to_contain_text(job_id)
    expect(page.locator("body")).to_contain_text("succeeded")
    page.goto(f"{site.url}/ui/cron")
    expect(page.locator("body")).to_contain_text("every-five")
    assert errors == []


def test_progress_bar_moves_live(site: Site, page: Page) -> None:
    job_id = submit(site, function="crawl", args=[40, 0.1])
    wait_for(lambda: state_of(site, job_id) == "active")
    page.goto(f"{site.url}/ui/jobs/{job_id}")
    page.evaluate("window.__loaded = true")  # gone if the page reloaded
    expect(page.locator(".live.on")).to_be_visible(timeout=10_000)  # the event stream is open
    first = wait_for(lambda: page.eval_on_selector("#progress", "e => e.value") or None)
    wait_for(lambda: page.eval_on_selector("#progress", "e => e.value") > first + 3, timeout=15)
    assert page.evaluate("window.__loaded") is True  # moved by events, not by reloading
    expect(page.locator("#progress-text")).to_contain_text("page")


def test_requeue_a_dead_letter_job_with_a_click(site: Site, page: Page, tmp_path: Path) -> None:
    job_id = submit(site, function="fail_until", args=[str(tmp_path / "marker")])
    wait_for(lambda: state_of(site, job_id) == "failed")
    page.goto(f"{site.url}/ui/dlq")
    page.get_by_label(f"select {job_id}").check()
    page.get_by_role("button", name="Requeue selected").click()
    expect(page.locator(".flash")).to_contain_text("1 jobs requeued")
    wait_for(lambda: state_of(site, job_id) == "succeeded")
    page.goto(f"{site.url}/ui/jobs/{job_id}")
    expect(page.locator("body")).to_contain_text("succeeded")


def test_pause_a_queue_and_fetching_stops(site: Site, page: Page) -> None:
    submit(site, function="add", args=[0, 0], queue="slow")  # the queue exists, and is served
    page.goto(f"{site.url}/ui/queues")
    row = page.locator("tr", has_text="slow")
    row.get_by_role("button", name="Pause").click()
    expect(page.locator(".flash")).to_contain_text("queue slow paused")
    held = submit(site, function="add", args=[1, 1], queue="slow")
    control = submit(site, function="add", args=[2, 2])
    wait_for(lambda: state_of(site, control) == "succeeded")  # the worker is fetching...
    assert state_of(site, held) == "queued"  # ...but not from the paused queue
    expect(page.locator("tr", has_text="slow")).to_contain_text("paused")
    page.locator("tr", has_text="slow").get_by_role("button", name="Resume").click()
    expect(page.locator(".flash")).to_contain_text("queue slow resumed")
    wait_for(lambda: state_of(site, held) == "succeeded")


@pytest.mark.skipif(not os.environ.get("CONVEYOR_SCREENSHOTS"), reason="make screenshots")
def test_screenshots(site: Site, browser: Browser, tmp_path: Path) -> None:
    """`make screenshots`: every page, light and dark, into docs/screenshots/."""
    out = Path(os.environ["CONVEYOR_SCREENSHOTS"])
    out.mkdir(parents=True, exist_ok=True)
    for i in range(30):
        submit(site, function="add", args=[i, i])
    submit(site, function="fail_until", args=[str(tmp_path / "m1")])
    submit(site, function="add", args=[1, 1], delay=600, queue="slow")
    running = submit(site, function="crawl", args=[100, 0.2])
    wait_for(lambda: state_of(site, running) == "active")
    wait_for(lambda: site.api.get("/dlq").json()["jobs"])
    for scheme in ("light", "dark"):
        context = browser.new_context(viewport={"width": 1280, "height": 800}, color_scheme=scheme)
        page = context.new_page()
        for name, path in [*PAGES, ("job", f"/ui/jobs/{running}")]:
            page.goto(site.url + path)
            page.wait_for_timeout(400)  # allowed-sleep: the screenshot waits for fonts and the bar
            page.screenshot(path=str(out / f"{name}-{scheme}.png"), full_page=True)
        context.close()
