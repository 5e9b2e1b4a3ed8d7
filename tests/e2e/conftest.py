from __future__ import annotations

import pytest
from playwright.sync_api import sync_playwright

from devtools.processes import RedisServer, redis_available
from devtools.stack import Stack
from tests.support import BROWSER_WAIT_MS, CHROMIUM_ARGS, chromium_path, need


@pytest.fixture
def private_redis(tmp_path):
    """A redis-server only this test uses, so it may be restarted or stopped."""
    need(redis_available(), "redis-server is not installed")
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


@pytest.fixture
def make_stack(tmp_path, private_redis, database_templates):
    """Factory for a stack on a private Redis and a copy of the run's template database.

    The database is on this pass's engine, migrated, and holds the template's
    users; every process dies with the test.
    """
    stacks: list[Stack] = []

    def make(env: dict | None = None, *, redis: bool = True, engine: str | None = None) -> Stack:
        template = database_templates(engine)
        workdir = tmp_path / f"stack{len(stacks)}"
        stack = Stack(workdir, redis=private_redis if redis else None, env=env,
                      database_url=template.copy(f"stack{len(stacks)}", workdir), tokens=template.tokens)
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


def _page(browser, **context_options):
    context = browser.new_context(**context_options)
    page = context.new_page()
    page.set_default_timeout(BROWSER_WAIT_MS)
    page.js_errors = []  # type: ignore[attr-defined]
    page.on("pageerror", lambda exc: page.js_errors.append(str(exc)))
    return context, page


@pytest.fixture
def page(browser):
    context, page = _page(browser, viewport={"width": 1280, "height": 800})
    yield page
    context.close()


@pytest.fixture
def phone(browser):
    """A page on a phone's screen, 390 by 844 CSS pixels, touch and all."""
    context, page = _page(browser, viewport={"width": 390, "height": 844}, device_scale_factor=2,
                          is_mobile=True, has_touch=True)
    yield page
    context.close()
