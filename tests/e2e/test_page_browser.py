"""The page as a whole in a real browser: one toast per job, a reload mid-batch,
paging, the catalogue, a phone's screen and the dark scheme.

Against real daphne, runworker and Redis; every wait is for a condition, never a time.
"""

from __future__ import annotations

import os
import re
import signal

import pytest
from playwright.sync_api import Page, expect

from project import names
from tests.e2e.test_books_flow import synthetic
from tests.e2e.test_browser import (
    expect_live,
    expect_paid,
    job_toast,
    log_in,
    order_row,
    pay,
    record_toasts,
    sentences_said,
    toast,
    toasts_opened,
)
from tests.support import ARTIFACTS

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


def shot(page: Page, name: str, **options) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), **options)


def api_job(stack, token: str, job_id: int) -> dict:
    return stack.api(token).get(stack.url(f"/api/jobs/{job_id}/")).json()


# --- toasts --------------------------------------------------------------------------


def test_each_payment_has_one_toast_and_a_receipt_not_sent_is_one_plain_line(page, make_stack):
    stack = make_stack()
    stack.create_users("dave")  # no email address on file
    stack.start_web()
    stack.start_worker()
    log_in(page, stack, "dave")
    expect_live(page)
    record_toasts(page)

    first = pay(page, "12.50", "fake-valid-nonce")
    page.locator(".job-toasts .job-toast").first.hover()  # reading it holds it open
    expect_paid(page, first, "12.50")
    [job_id] = toasts_opened(page)
    payment = job_toast(page, job_id)
    no_address = f"No receipt for order #{first}: there is no email address on your account"
    line = payment.locator(".job-toast-line")
    expect(line).to_have_text(no_address)
    # A line in the payment's toast, neither a toast of its own nor a success.
    expect(line).to_have_attribute("data-tone", "note")
    assert toasts_opened(page) == [job_id]
    said = sentences_said(page)
    assert not [text for text in said if re.search(r"\bsent\b", text) and "no email" not in text], said

    # Another payment: a toast of its own, beside the first.
    page.mouse.move(0, 0)
    second = pay(page, "8.00", "fake-processor-hard-declined-visa-nonce")
    expect(toast(page, "error", re.compile(r"^Payment declined: Expired Card$"))).to_be_visible()
    opened = toasts_opened(page)
    assert len(opened) == 2 and opened[0] == job_id and len(set(opened)) == 2, opened
    expect(job_toast(page, opened[1]).locator(".job-toast-title a")).to_have_text(f"Order #{second}")
    # The vendor's words stay in the API; the page says it plainly.
    expect(order_row(page, second).locator("td.note")).to_have_text("Declined by the card issuer: Expired Card.")

    # The toast's link goes to its order on the page.
    job_toast(page, opened[1]).locator(".job-toast-title a").click()
    expect(page).to_have_url(stack.url(f"/#order-{second}"))
    expect(order_row(page, second)).to_be_focused()
    shot(page, "toasts.png")
    assert page.js_errors == []


def test_the_pay_form_explains_a_bad_amount_in_plain_words(page, make_stack):
    stack = make_stack()
    stack.create_users("erin")
    stack.start_web()
    log_in(page, stack, "erin")
    expect(page.locator("#pay")).to_be_enabled()
    for amount in ("12.505", "-3", "1e3", "0"):
        page.fill("#amount", amount)
        page.click("#pay")
        expect(page.locator("#pay-error")).to_have_text(
            "Enter an amount above zero, such as 12.50, with at most two decimals.")
        expect(page.locator("#amount")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#orders tbody tr[data-order-id]")).to_have_count(0)
    # "12,50" is understood as 12.50.
    order_id = pay(page, "12,50", "fake-valid-nonce")
    expect(order_row(page, order_id).locator("td.amount")).to_have_text("12.50")
    expect(page.locator("#pay-error")).to_be_hidden()
    assert page.js_errors == []


def test_the_tags_bar_for_one_job_follows_it_live(page, make_stack):
    """``{% job_progress job_id %}``'s markup, put on a page, goes live when its job does."""
    from django.template.loader import render_to_string

    stack = make_stack()
    token = stack.create_users("frank")["frank"]
    stack.start_web()
    log_in(page, stack, "frank")
    expect_live(page)
    order = stack.api(token).post(stack.url("/api/orders/"), json={"amount": "4.20", "nonce": "fake-valid-nonce"})
    job_id = order.json()["job"]
    # What the tag renders for a job that has not started (no worker runs yet).
    markup = render_to_string("jobs/progress.html", {
        "signed_in": True, "mode": "job", "ws_path": "/ws/status/", "job_id": job_id,
        "job_url": f"/api/jobs/{job_id}/", "label": "Payment progress", "status": "pending", "progress": 0,
        "text": "Payment of 4.20 queued",
    })
    page.evaluate("""async (markup) => {
      const holder = document.createElement("div");
      holder.id = "tag-holder";
      holder.innerHTML = markup;  // the test's own markup, not server data
      document.querySelector("main").prepend(holder);
      (await import("/static/jobs/progress.js")).init(holder);
    }""", markup)
    bar = page.locator("#tag-holder .job-bar")
    expect(bar).to_have_attribute("aria-valuenow", "0")
    expect(page.get_by_role("progressbar", name="Payment progress")).to_be_visible()

    stack.start_worker()
    expect(bar).to_have_attribute("aria-valuenow", "100")
    expect(bar).to_have_attribute("data-status", "ok")
    expect(page.locator("#tag-holder .job-progress-text")).to_have_text(
        re.compile(r"^Payment of 4\.20 paid \(transaction \w+\)$"))
    assert page.js_errors == []


# Run in the stack's own environment (its database and Redis), as a worker
# running the task would: the real services write the row and publish.
TASK_RUN = """
from django.contrib.auth import get_user_model
from jobs.models import Job, JobStatus
from jobs.services import job_notify, job_progress, job_succeed
from project.names import EMAILS, TASKS

user = get_user_model().objects.get(username={username!r})
# A task with a title, about nothing in particular: a toast of its own.  Its
# function is not importable here, so its title is its name in words.
job = Job.objects.create(kind="catalogue.tasks.import_catalogue", channel=TASKS, backend="default", user=user,
                         message="Queued")
job_notify(job=job, message=job.message)
job.status = JobStatus.RUNNING
job.save(update_fields=["status"])
job_progress(job=job, progress=40, message="40 of 100 rows imported", at_once=True)
# A task declared with title="", about nothing either: not shown, not even
# as a line in the toast above (whose subject is none, like its own).
quiet = Job.objects.create(kind="orders.tasks.send_receipt", channel=EMAILS, backend="default", user=user)
job_succeed(job=quiet, message="Nobody reads this")
print(quiet.pk, job.pk)
"""

TASK_DONE = """
from jobs.models import Job
from jobs.services import job_succeed

job_succeed(job=Job.objects.get(pk={job_id}), message="100 rows imported")
"""


def test_a_task_with_a_title_gets_a_toast_of_its_own_with_its_progress(page, make_stack):
    stack = make_stack()
    stack.create_users("gina")
    stack.start_web()
    log_in(page, stack, "gina")
    expect_live(page)
    record_toasts(page)

    run = stack.manage("shell", "-v0", "-c", TASK_RUN.format(username="gina"))
    _quiet_id, job_id = run.stdout.splitlines()[-1].split()
    task = job_toast(page, job_id)
    expect(task.locator(".job-toast-title")).to_have_text("Import catalogue")
    expect(task.locator(".job-toast-text")).to_have_text("40 of 100 rows imported")
    bar = task.get_by_role("progressbar", name="Import catalogue progress")
    expect(bar).to_have_attribute("aria-valuenow", "40")
    expect(bar).to_have_attribute("data-status", "running")
    expect(task).to_have_attribute("data-tone", "info")

    stack.manage("shell", "-c", TASK_DONE.format(job_id=job_id))
    expect(task.locator(".job-toast-text")).to_have_text("100 rows imported")
    expect(task).to_have_attribute("data-tone", "success")
    expect(task.locator(".job-toast-progress")).to_be_hidden()
    # The untitled task, whose events came before this one's last, opened no toast and added no line.
    assert task.locator(".job-toast-line").count() == 0
    assert toasts_opened(page) == [job_id]
    assert "Nobody reads this" not in sentences_said(page)
    assert page.js_errors == []


# --- a reload mid-batch --------------------------------------------------------------------


def test_a_reload_mid_batch_restores_the_batch_with_its_progress(page, make_stack):
    # OpenLibrary takes 3 s a call and the worker makes two at once: a
    # 100-book batch (four calls of 25) is mid-way for seconds after its
    # first books are in, and the worker is stopped there.
    stack = make_stack({"SANDBOX_LATENCY_MS": "3000"})
    token = stack.create_users("alice")["alice"]
    stack.start_web()
    worker = stack.start_worker("--only-channels", names.BOOKS, names.BOOK_BATCHES, "--concurrency", "2")
    log_in(page, stack, "alice")
    expect_live(page)

    isbns = synthetic(100)
    page.fill("#isbns", "\n".join(isbns))
    with page.expect_response(lambda r: r.url.endswith("/api/books/bulk/")) as answer:
        page.click("#register-books")
    body = answer.value.json()
    batch_id, job_id = body["batch"]["id"], body["job"]["id"]
    bar = page.locator(f"#batch-{batch_id} .job-bar")
    expect(bar).not_to_have_attribute("aria-valuenow", "0")

    os.kill(worker.pid, signal.SIGSTOP)
    try:
        job = api_job(stack, token, job_id)
        assert job["status"] in ("running", "retrying", "pending") and 0 < job["progress"] < 100, job
        page.reload()
        expect_live(page)
        panel = page.locator(f"#batch-{batch_id}")
        expect(panel).to_be_visible()
        expect(bar).to_have_attribute("aria-valuenow", str(job["progress"]))
        expect(bar).to_have_attribute("data-status", job["status"])
        expect(panel.locator(".job-bar-note")).to_have_text(f"{job['progress']}%")
        expect(panel.locator("details.batch-books")).to_have_attribute("open", "")
        expect(panel.locator("tbody tr")).to_have_count(100)
        expect(panel.locator(".batch-count")).to_have_text("100 books")
        shot(page, "reload-mid-batch.png", full_page=True)
    finally:
        os.kill(worker.pid, signal.SIGCONT)

    # The rest arrives live on the reloaded page.
    expect(bar).to_have_attribute("aria-valuenow", "100", timeout=60_000)
    expect(bar).to_have_attribute("data-status", "ok")
    expect(panel.locator(".job-progress-text")).to_have_text("100 of 100 books found")
    expect(panel.locator('tbody tr[data-status="found"]')).to_have_count(100)
    # The batch's toast opens with the first event after the reload, and ends with it.
    expect(job_toast(page, job_id).locator(".job-toast-text")).to_have_text("100 of 100 books found")
    assert page.js_errors == []


# --- paging and the catalogue -----------------------------------------------------------------


def test_orders_batches_and_the_catalogue_load_more_on_scroll(page, make_stack):
    stack = make_stack()
    token = stack.create_users("bob")["bob"]
    stack.start_web()
    api = stack.api(token)
    for i in range(60):
        response = api.post(stack.url("/api/orders/"), json={"amount": f"{i + 1}.00", "nonce": "fake-valid-nonce"})
        assert response.status_code == 202, response.text
    isbns = synthetic(36)
    for i in range(12):
        response = api.post(stack.url("/api/books/bulk/"), json={"isbn": isbns[i * 3:i * 3 + 3]})
        assert response.status_code == 202, response.text
    stack.start_worker()
    # The job list's filters say when all of it is done.
    stack.wait_until(
        lambda: api.get(stack.url("/api/jobs/?kind=book_batch&status=ok")).json()["count"] == 12
        and api.get(stack.url("/api/jobs/?kind=payment&status=ok")).json()["count"] == 60,
        timeout=120, interval=0.5, what="60 payments and 12 batches",
    )

    log_in(page, stack, "bob")
    expect_live(page)
    rows = page.locator("#orders tbody tr[data-order-id]")
    expect(rows).to_have_count(50)
    expect(page.locator("#orders-count")).to_have_text("Showing 50 of 60 orders")
    expect(rows.first).to_have_attribute("data-order-id", re.compile(r"^\d+$"))
    newest = int(rows.first.get_attribute("data-order-id"))
    # Scrolling to the end of the list loads the older ones.
    page.locator("#orders-more").scroll_into_view_if_needed()
    expect(rows).to_have_count(60)
    expect(page.locator("#orders-count")).to_have_text("60 orders")
    expect(page.locator("#orders-more")).to_be_hidden()
    ids = [int(i) for i in page.eval_on_selector_all("#orders tbody tr[data-order-id]", "rs => rs.map(r => r.dataset.orderId)")]
    assert ids == sorted(ids, reverse=True) and ids[0] == newest and len(set(ids)) == 60

    batches = page.locator("#batches .batch")
    expect(batches).to_have_count(10)
    expect(page.locator("#batches-count")).to_have_text("Showing 10 of 12 batches")
    page.locator("#batches-more").click()
    expect(batches).to_have_count(12)
    expect(page.locator("#batches-count")).to_have_text("12 batches")
    # A finished batch's books are read when it is opened.
    oldest = batches.last
    oldest.locator("summary").click()
    expect(oldest.locator('tbody tr[data-status="found"]')).to_have_count(3)
    shot(page, "paging.png", full_page=True)

    # The catalogue: every book with its authors, 25 at a time, searchable.
    page.click("nav >> text=Catalogue")
    expect(page).to_have_url(stack.url("/catalogue/"))
    books = page.locator("#catalogue tbody tr[data-book-id]")
    expect(books).to_have_count(25)
    expect(page.locator("#catalogue-count")).to_have_text("Showing 25 of 36 books")
    page.locator("#catalogue-more").scroll_into_view_if_needed()
    expect(books).to_have_count(36)
    first = books.first
    expect(first.locator("td.title")).to_have_text(re.compile(r"^Sandbox Book \d+"))
    author = first.locator("td.authors .author-link").first
    name = author.inner_text()
    author.click()
    expect(page.locator("#catalogue-filters .chip")).to_contain_text(f"By {name}")
    expect(page).to_have_url(re.compile(r"/catalogue/\?author=\d+$"))
    by_author = api.get(stack.url("/api/books/?" + page.url.split("?")[1])).json()["count"]
    expect(books).to_have_count(by_author)
    for row in books.all():
        expect(row.locator("td.authors")).to_contain_text(name)
    page.fill("#search", isbns[0])
    page.click("#search-submit")
    expect(books).to_have_count(1)
    expect(books.first.locator("td.isbn")).to_have_text(isbns[0])
    shot(page, "catalogue.png", full_page=True)
    assert page.js_errors == []


# --- a phone, and the dark scheme --------------------------------------------------------------


def in_view(page: Page, locator) -> bool:
    box = locator.bounding_box()
    width = page.viewport_size["width"]
    return box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width


def test_on_a_phone_status_progress_and_details_are_on_screen(phone, make_stack):
    page = phone
    stack = make_stack()
    stack.create_users("carol")
    stack.start_web()
    stack.start_worker()
    log_in(page, stack, "carol")
    expect_live(page)
    declined = pay(page, "5.00", "fake-processor-declined-visa-nonce")
    expect(toast(page, "error", "Payment declined: Do Not Honor")).to_be_visible()
    paid = pay(page, "12.50", "fake-valid-nonce")
    expect(order_row(page, paid).locator("td.status")).to_have_attribute("data-status", "paid")
    row = order_row(page, declined)
    expect(row.locator("td.status")).to_have_attribute("data-status", "declined")
    expect(row.locator("td.note")).to_have_text("Declined by the card issuer: Do Not Honor.")

    # Nothing scrolls sideways: each order is a card of label and value lines.
    assert page.evaluate("document.scrollingElement.scrollWidth") <= 390
    for part in ("td.status", ".progress", "td.note", "td.transaction"):
        target = row.locator(part)
        target.scroll_into_view_if_needed()
        assert in_view(page, target), part
    expect(row.locator("td.note")).to_have_css("display", "grid")
    label = page.evaluate(
        "(el) => getComputedStyle(el, '::before').content", row.locator("td.note").element_handle())
    assert label == '"Details"'
    for toast_node in page.locator(".job-toasts .job-toast").all():
        assert in_view(page, toast_node)
    page.evaluate("window.scrollTo(0, 0)")
    shot(page, "phone.png", full_page=True)
    assert page.js_errors == []


def test_the_page_follows_a_dark_system_scheme(page, make_stack):
    stack = make_stack()
    stack.create_users("alice")
    stack.start_web()
    log_in(page, stack, "alice")
    light = page.evaluate("getComputedStyle(document.body).backgroundColor")
    page.emulate_media(color_scheme="dark")
    expect(page.locator("body")).not_to_have_css("background-color", light)
    dark = page.evaluate("getComputedStyle(document.body).backgroundColor")
    channels = [int(c) for c in re.findall(r"\d+", dark)[:3]]
    assert max(channels) < 60, dark
    shot(page, "dark.png")
    assert page.js_errors == []
