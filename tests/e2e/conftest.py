from __future__ import annotations

import pytest
from playwright.sync_api import sync_playwright

from tests.e2e.stack import Stack
from tests.support import BROWSER_WAIT_MS, CHROMIUM_ARGS, RedisServer, chromium_path, need, redis_available


@pytest.fixture
def private_redis(tmp_path):
    """A redis-server only this test uses, so it may be restarted or stopped."""
    need(redis_available(), "redis-server is not installed")
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


@pytest.fixture
def make_stack(tmp_path, private_redis):
    """Factory for a migrated stack on a private Redis; processes die with the test."""
    stacks: list[Stack] = []

    def make(env: dict | None = None, *, redis: bool = True) -> Stack:
        stack = Stack(tmp_path / f"stack{len(stacks)}", redis=private_redis if redis else None, env=env)
        stack.workdir.mkdir(parents=True, exist_ok=True)
        stack.migrate()
        stacks.append(stack)
        return stack

    yield make
    for stack in stacks:
        stack.close()


@pytest.fixture
def browser():
    """Debian's Chromium, driven by Playwright; never a downloaded browser."""
    need(chromium_path() is not None, "Debian chromium is not installed")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(BROWSER_WAIT_MS)
    page.js_errors = []  # type: ignore[attr-defined]
    page.on("pageerror", lambda exc: page.js_errors.append(str(exc)))
    yield page
    context.close()
