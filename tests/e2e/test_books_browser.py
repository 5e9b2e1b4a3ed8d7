"""The books section in a real browser, against real daphne, runworker and Redis."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.test_browser import expect_live, log_in
from tests.support import ARTIFACTS

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

UNKNOWN = "9780000000026"
PASTED = ("0-345-41891-3\n9780451524935, 9780451526342\n\n9781101990322\n"
          f"9780143133438\n{UNKNOWN}\n9780451524936\n978-0-451-52493-5\n")


def record_toasts_and_batch_progress(page: Page) -> None:
    """Keep every toast text and every value the batch bar shows, however briefly."""
    page.evaluate(
        """() => {
          window.__toasts = []; window.__batch = [];
          new MutationObserver((ms) => ms.forEach((m) => m.addedNodes.forEach((n) => {
            if (n.classList && n.classList.contains("toast"))
              window.__toasts.push([n.dataset.kind, n.querySelector(".toast-text").textContent]);
          }))).observe(document.querySelector("#toasts"), {childList: true});
          const bar = document.querySelector("#batch-progress");
          new MutationObserver(() => window.__batch.push([Number(bar.getAttribute("aria-valuenow")), bar.dataset.state]))
            .observe(bar, {attributes: true, attributeFilter: ["aria-valuenow", "data-state"]});
        }"""
    )


def book_row(page: Page, isbn: str):
    return page.locator(f'#books tbody tr[data-isbn="{isbn}"]')


def test_paste_isbns_and_watch_the_batch_fill_in_live(page, make_stack):
    stack = make_stack()
    stack.create_users("alice")
    stack.start_web()
    stack.start_worker()

    log_in(page, stack, "alice")
    expect_live(page)
    page.evaluate("window.__marker = 1")
    record_toasts_and_batch_progress(page)

    page.fill("#isbns", PASTED)
    with page.expect_response(lambda r: r.url.endswith("/api/books/bulk/") and r.request.method == "POST") as answer:
        page.click("#register-books")
    assert answer.value.status == 202, answer.value.text()
    batch_id = answer.value.json()["batch"]["id"]
    expect(page.locator("#batch-title")).to_have_text(f"Batch #{batch_id}: 6 books")
    expect(page.locator("#books tbody tr")).to_have_count(6)
    expect(page.locator(".batch-note-invalid")).to_have_text(re.compile(r"^9780451524936: Wrong check digit"))
    expect(page.locator(".batch-note-duplicate")).to_have_text("978-0-451-52493-5: Repeated in this request.")
    expect(page.locator("#isbns")).to_have_value("")

    bar = page.locator("#batch-progress")
    expect(bar).to_have_attribute("aria-valuenow", "100")
    expect(bar).to_have_attribute("data-state", "ok")
    expect(page.locator("#batch-message")).to_have_text("5 of 6 books found; 1 not at OpenLibrary")

    nineteen = book_row(page, "9780451524935")
    expect(nineteen.locator("td.status")).to_have_attribute("data-status", "found")
    expect(nineteen.locator("td.title")).to_have_text("Nineteen Eighty-Four")
    expect(nineteen.locator("td.authors")).to_have_text("George Orwell")
    expect(nineteen.locator("td.pages")).to_have_text("328")
    expect(nineteen.locator("td.published")).to_have_text("1961")
    expect(book_row(page, "9780345418913").locator("td.title")).to_have_text("The Hitchhiker's Guide to the Galaxy")
    expect(book_row(page, "9780143133438").locator("td.authors")).to_have_text("")
    missing = book_row(page, UNKNOWN)
    expect(missing.locator("td.status")).to_have_attribute("data-status", "not_found")
    expect(missing.locator("td.status")).to_have_text("Not found")

    # One toast per book found, one per book not found, and the batch's summary.
    toasts = page.evaluate("window.__toasts")
    found = [text for kind, text in toasts if kind == "success" and text.startswith("Found ")]
    assert len(found) == 5 and "Found “Nineteen Eighty-Four” (ISBN 9780451524935)" in found, toasts
    assert ["error", f"No book with ISBN {UNKNOWN} at OpenLibrary"] in toasts, toasts
    assert ["success", "5 of 6 books found; 1 not at OpenLibrary"] in toasts, toasts
    assert not [t for t in toasts if t[0] == "info"], "no toast per queued or started book"
    # The bar only moved forward, to 100 and ok.
    values = [v for v, _ in page.evaluate("window.__batch")]
    assert values == sorted(values) and page.evaluate("window.__batch")[-1] == [100, "ok"]

    assert page.evaluate("window.__marker") == 1, "the page reloaded"
    # The orders table beside it is untouched, and its empty state sits in its cell.
    expect(page.locator("#orders-empty td")).to_have_text("No orders yet. Make a payment to see it here.")
    expect(page.locator("#orders tbody tr")).to_have_count(1)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "books.png"), full_page=True)
    assert page.js_errors == []


def test_a_bad_request_shows_the_servers_message(page, make_stack):
    stack = make_stack({"BOOKS_BULK_MAX": "2"})
    stack.create_users("bob")
    stack.start_web()
    log_in(page, stack, "bob")
    page.click("#register-books")
    expect(page.locator("#books-error")).to_have_text("Scan or paste at least one ISBN.")
    page.fill("#isbns", "9780345418913, 9780451524935, 9780451526342")
    page.click("#register-books")
    expect(page.locator("#books-error")).to_have_text("isbn: At most 2 ISBNs per request; send the rest in another.")
    expect(page.locator("#isbns")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#batch")).to_be_hidden()
    assert page.js_errors == []
