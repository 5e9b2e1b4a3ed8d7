"""Take the README's screenshot (docs/screenshot.png) of the finished page.

    .venv/bin/python -m devtools.screenshot [PATH]

Starts the product as ``make run`` does (SQLite, workers inside daphne, the
sandbox third parties) on a free port of its own, in a temporary directory;
pays three ways and registers a few books as a user with an email address;
and photographs the page in Debian's Chromium with a payment's live toast
on screen.  Every wait is for something the page shows.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

from devtools.processes import ROOT
from devtools.stack import Stack

OUT = ROOT / "docs" / "screenshot.png"
USER, PASSWORD = "demo", "pw-Secret-123"
CHROMIUM = "/usr/bin/chromium"
WAIT_MS = 30_000


def main(out: Path = OUT) -> None:
    with tempfile.TemporaryDirectory(prefix="screenshot-") as tmp:
        stack = Stack(Path(tmp), redis=None)
        try:
            stack.create_users(USER, password=PASSWORD)
            stack.manage("shell", "-c", "from django.contrib.auth import get_user_model; "
                         f"get_user_model().objects.filter(username={USER!r}).update(email='demo@example.com')")
            stack.start_web()
            photograph(stack, out)
        finally:
            stack.close()
    print(f"wrote {out}")


def photograph(stack: Stack, out: Path) -> None:
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"], headless=True)
        # Reduced motion: no bar caught half-way through its transition.
        page = browser.new_page(viewport={"width": 1280, "height": 860}, reduced_motion="reduce")
        page.set_default_timeout(WAIT_MS)
        expect.set_options(timeout=WAIT_MS)
        page.goto(stack.url("/"))
        page.fill("#id_username", USER)
        page.fill("#id_password", PASSWORD)
        page.click("#login-submit")
        expect(page.locator("#connection")).to_have_attribute("data-state", "open")

        page.fill("#isbns", "0-345-41891-3\n9780451524935\n9780451526342\n9781101990322\n9780000000026")
        page.click("#register-books")
        expect(page.locator(".batch .job-bar")).to_have_attribute("data-status", "ok")
        outcomes = (("30.00", "fake-authorizing-nonce", "paid"), ("5.00", "fake-processor-hard-declined-visa-nonce",
                    "declined"), ("12.50", "fake-valid-nonce", "paid"))
        for amount, nonce, status in outcomes:
            order = pay(page, amount, nonce)
            expect(page.locator(f"#order-{order} td.status")).to_have_attribute("data-status", status)
        last = page.locator(".job-toast", has=page.locator(".job-toast-title", has_text=f"Order #{order}"))
        expect(last.locator(".job-toast-line")).to_contain_text("sent to demo@example.com")
        page.mouse.move(0, 0)
        page.screenshot(path=str(out))
        browser.close()


def pay(page, amount: str, nonce: str) -> int:
    """Pay with the form; the new order's id."""
    page.fill("#amount", amount)
    page.select_option("#nonce", nonce)
    with page.expect_response(lambda r: r.url.endswith("/api/orders/") and r.request.method == "POST") as answer:
        page.click("#pay")
    return answer.value.json()["id"]


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT)
