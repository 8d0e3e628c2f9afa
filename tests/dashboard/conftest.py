"""A running API with its dashboard, a worker thread, the private Redis, and headless Chromium
(Debian's, started by Playwright; no browser download)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from api.conftest import Server
from conveyor import Conveyor
from conveyor.api import create_app
from conveyor.worker import WorkerThread
from dashboard.apps import build

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@dataclass
class Site:
    app: Conveyor
    url: str
    api: httpx.Client
    worker: WorkerThread


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Module-scoped: Playwright's sync API keeps an event loop running in this thread while it
    is open, which later tests calling asyncio.run must not inherit."""
    if not os.path.exists(CHROMIUM):
        raise RuntimeError("chromium not found: run `make test` (it installs Debian's package)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        yield launched
        launched.close()


@pytest.fixture
def site(redis_url: str) -> Iterator[Site]:
    app = build(redis_url)
    server = Server(create_app(app))
    url = server.__enter__()
    worker = app.start_worker(concurrency=4, queues=["default", "slow"])
    client = httpx.Client(base_url=url, timeout=30)
    yield Site(app, url, client, worker)
    client.close()
    worker.stop(15)
    server.__exit__()
    app.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    opened = context.new_page()
    yield opened
    context.close()
