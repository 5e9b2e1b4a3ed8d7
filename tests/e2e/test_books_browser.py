"""The books section in a real browser, against real daphne, runworker and Redis."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.test_browser import expect_live, log_in, record_toasts, sentences_said, toasts_opened
from tests.support import ARTIFACTS

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

UNKNOWN = "9780000000026"
PASTED = ("0-345-41891-3\n9780451524935, 9780451526342\n\n9781101990322\n"
          f"9780143133438\n{UNKNOWN}\n9780451524936\n978-0-451-52493-5\n")


def record_batch_progress(page: Page) -> None:
    """Keep every value any batch's bar shows, however briefly."""
    page.evaluate(
        """() => {
          window.__batch = [];
          new MutationObserver((ms) => ms.forEach((m) => {
            const bar = m.target;
            if (bar.classList && bar.classList.contains("job-bar"))
              window.__batch.push([Number(bar.getAttribute("aria-valuenow")), bar.dataset.status]);
          })).observe(document.querySelector("#batches"),
                      {subtree: true, attributes: true, attributeFilter: ["aria-valuenow", "data-status"]});
        }"""
    )


def batch_panel(page: Page, batch_id: int | str):
    return page.locator(f"#batch-{batch_id}")


def book_row(panel, isbn: str):
    return panel.locator(f'tbody tr[data-isbn="{isbn}"]')


def register(page: Page, text: str):
    page.fill("#isbns", text)
    with page.expect_response(lambda r: r.url.endswith("/api/books/bulk/") and r.request.method == "POST") as answer:
        page.click("#register-books")
    return answer.value


def test_paste_isbns_and_watch_the_batch_fill_in_live(page, make_stack):
    stack = make_stack()
    stack.create_users("alice")
    stack.start_web()
    stack.start_worker()

    log_in(page, stack, "alice")
    expect_live(page)
    page.evaluate("window.__marker = 1")
    record_toasts(page)
    record_batch_progress(page)

    answer = register(page, PASTED)
    assert answer.status == 202, answer.text()
    body = answer.json()
    batch_id, job_id = body["batch"]["id"], body["job"]["id"]
    panel = batch_panel(page, batch_id)
    expect(panel.locator(".batch-title")).to_have_text(f"Batch #{batch_id}")
    expect(panel.locator(".batch-count")).to_have_text("6 books")
    expect(panel.locator("tbody tr")).to_have_count(6)
    expect(page.locator("#register-summary")).to_have_text(f"Batch #{batch_id}: 6 new books to look up.")
    expect(page.locator(".batch-note-invalid")).to_have_text(re.compile(r"^9780451524936: Wrong check digit"))
    expect(page.locator(".batch-note-duplicate")).to_have_text("978-0-451-52493-5: Repeated in this request.")
    expect(page.locator("#isbns")).to_have_value("")

    bar = panel.locator(".job-bar")
    expect(bar).to_have_attribute("aria-valuenow", "100")
    expect(bar).to_have_attribute("data-status", "ok")
    expect(panel.locator(".job-progress-text")).to_have_text("5 of 6 books found; 1 not at OpenLibrary")

    nineteen = book_row(panel, "9780451524935")
    expect(nineteen.locator("td.status")).to_have_attribute("data-status", "found")
    expect(nineteen.locator("td.title")).to_have_text("Nineteen Eighty-Four")
    expect(nineteen.locator("td.authors")).to_have_text("George Orwell")
    expect(nineteen.locator("td.pages")).to_have_text("328")
    expect(nineteen.locator("td.published")).to_have_text("1961")
    expect(book_row(panel, "9780345418913").locator("td.title")).to_have_text("The Hitchhiker's Guide to the Galaxy")
    expect(book_row(panel, "9780143133438").locator("td.authors")).to_have_text("")
    missing = book_row(panel, UNKNOWN)
    expect(missing.locator("td.status")).to_have_attribute("data-status", "not_found")
    expect(missing.locator("td.status")).to_have_text("Not found")

    # One toast for the batch, updated in place to its summary and linked to
    # it; the six lookups are rows of its table, never toasts of their own.
    toast = page.locator(f'.job-toasts .job-toast[data-job-id="{job_id}"]')
    expect(toast.locator(".job-toast-text")).to_have_text("5 of 6 books found; 1 not at OpenLibrary")
    expect(toast).to_have_attribute("data-tone", "success")
    expect(toast.locator(".job-toast-title a")).to_have_text(f"Batch #{batch_id}")
    expect(toast.locator(".job-toast-title a")).to_have_attribute("href", f"/#batch-{batch_id}")
    assert toasts_opened(page) == [str(job_id)], toasts_opened(page)
    said = sentences_said(page)
    assert said[0] == "Looking up 6 books at OpenLibrary" and said[-1] == "5 of 6 books found; 1 not at OpenLibrary", said
    # The bar only moved forward, to 100 and ok.
    seen = page.evaluate("window.__batch")
    values = [v for v, _ in seen]
    assert values == sorted(values) and seen[-1] == [100, "ok"], seen

    assert page.evaluate("window.__marker") == 1, "the page reloaded"
    # The orders table beside it is untouched, and its empty state sits in its cell.
    expect(page.locator("#orders-empty td")).to_have_text("No orders yet. Make a payment to see it here.")
    expect(page.locator("#orders tbody tr")).to_have_count(1)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "books.png"), full_page=True)
    assert page.js_errors == []


def test_nothing_new_shows_no_bar_and_points_at_the_catalogue(page, make_stack):
    stack = make_stack()
    stack.create_users("carol")
    stack.start_web()
    stack.start_worker()
    log_in(page, stack, "carol")
    expect_live(page)
    assert register(page, "9780451524935").status == 202
    expect(page.locator(".batch .job-bar")).to_have_attribute("data-status", "ok")

    answer = register(page, "9780451524935\n9780451524936")
    assert answer.status == 200, answer.text()
    expect(page.locator("#register-summary")).to_have_text("Nothing new to look up.")
    duplicate = page.locator(".batch-note-duplicate")
    expect(duplicate).to_have_text("9780451524935: Already registered.See it")
    expect(duplicate.locator("a")).to_have_attribute("href", "/catalogue/?search=9780451524935")
    expect(page.locator(".batch-note-invalid")).to_have_text(re.compile(r"^9780451524936: Wrong check digit"))
    # No second batch, and no bar beside "Nothing new": the one batch there is, is the first.
    expect(page.locator(".batch")).to_have_count(1)
    expect(page.locator("#register-result .job-bar, #register-result [role=progressbar]")).to_have_count(0)
    assert page.js_errors == []


def test_a_bad_request_is_explained_in_plain_words(page, make_stack):
    stack = make_stack({"BOOKS_BULK_MAX": "2"})
    stack.create_users("bob")
    stack.start_web()
    log_in(page, stack, "bob")
    page.click("#register-books")
    expect(page.locator("#books-error")).to_have_text("Scan or paste at least one ISBN.")
    page.fill("#isbns", "9780345418913, 9780451524935, 9780451526342")
    page.click("#register-books")
    expect(page.locator("#books-error")).to_have_text(
        "That is 3 ISBNs; up to 2 can be looked up at once. Send the rest in another batch.")
    expect(page.locator("#isbns")).to_have_attribute("aria-invalid", "true")
    # The API refuses what the page cannot check (an ISBN over 40 characters)
    # in words for developers; the page says it plainly.
    answer = register(page, "9" * 41)
    assert answer.status == 400 and answer.json()["message"].startswith("isbn"), answer.text()
    expect(page.locator("#books-error")).to_have_text(
        "The ISBNs could not be read. Paste them one per line, or separated by commas.")
    expect(page.locator("#register-result")).to_be_hidden()
    expect(page.locator(".batch")).to_have_count(0)
    assert page.js_errors == []
