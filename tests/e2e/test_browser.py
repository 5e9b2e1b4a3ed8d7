"""The payments page in a real browser, against real daphne, runworker and Redis.

Everything is asserted the way a user would see it: the login form, the pay
form, the order row, the toasts and the connection indicator.  Waits are
Playwright expectations with a deadline, never sleeps.
"""

from __future__ import annotations

import re
import signal

import pytest
from playwright.sync_api import Page, expect

from tests.support import ARTIFACTS, BROWSER_WAIT_MS as WAIT_MS

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

PASSWORD = "pw-Secret-123"
expect.set_options(timeout=WAIT_MS)


# --- what a user does ------------------------------------------------------------


def log_in(page: Page, stack, username: str) -> None:
    page.goto(stack.url("/"))
    # Not signed in: the app sends us to its login form.
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("#login-submit")
    expect(page).to_have_url(stack.url("/"))
    expect(page.locator("#username")).to_have_text(username)


def expect_live(page: Page) -> None:
    connection = page.locator("#connection")
    expect(connection).to_have_attribute("data-state", "open")
    expect(connection).to_have_text("Live")


def pay(page: Page, amount: str, nonce: str) -> str:
    """Fill in and submit the pay form; return the new order's id."""
    page.fill("#amount", amount)
    page.select_option("#nonce", nonce)
    with page.expect_response(
        lambda r: r.url.endswith("/api/orders/") and r.request.method == "POST"
    ) as answer:
        page.click("#pay")
    assert answer.value.status == 202, answer.value.text()
    order_id = str(answer.value.json()["id"])
    # The row appears at once, before any outcome.
    expect(order_row(page, order_id)).to_be_visible()
    return order_id


def order_row(page: Page, order_id: str):
    return page.locator(f'#orders tbody tr[data-order-id="{order_id}"]')


def toast(page: Page, tone: str, text: str | re.Pattern):
    """The text of a toast in ``tone`` (info, warn, success, error) that says ``text``."""
    return page.locator(f'.job-toasts .job-toast[data-tone="{tone}"] .job-toast-text', has_text=text)


def job_toast(page: Page, job_id: int | str):
    return page.locator(f'.job-toasts .job-toast[data-job-id="{job_id}"]')


def record_toasts(page: Page) -> None:
    """Keep every toast ever opened (its job id) and every sentence ever shown in one, however briefly."""
    page.evaluate(
        """() => {
          window.__toasts = []; window.__said = [];
          const region = document.querySelector(".job-toasts");
          const say = () => region.querySelectorAll(".job-toast-text, .job-toast-line").forEach((n) => {
            const text = n.textContent;
            if (text && window.__said[window.__said.length - 1] !== text && !window.__said.includes(text)) window.__said.push(text);
          });
          new MutationObserver((ms) => {
            ms.forEach((m) => m.addedNodes.forEach((n) => {
              if (n.classList && n.classList.contains("job-toast")) window.__toasts.push(n.dataset.jobId || "note");
            }));
            say();
          }).observe(region, {childList: true, subtree: true, characterData: true});
        }"""
    )


def toasts_opened(page: Page) -> list[str]:
    return page.evaluate("window.__toasts")


def sentences_said(page: Page) -> list[str]:
    return page.evaluate("window.__said")


def expect_paid(page: Page, order_id: str, amount: str) -> str:
    """The user sees the order paid; returns the transaction id shown."""
    row = order_row(page, order_id)
    # The "paid" toast is transient, so look for it first.
    paid_toast = toast(page, "success", re.compile(rf"^Payment of {re.escape(amount)} paid \(transaction \w+\)$"))
    expect(paid_toast).to_be_visible()
    expect(row.locator("td.status")).to_have_attribute("data-status", "paid")
    expect(row.locator("td.status")).to_have_text("Paid")
    transaction = row.locator("td.transaction")
    expect(transaction).to_have_text(re.compile(r"^\w+$"))
    transaction_id = transaction.inner_text().strip()
    assert f"(transaction {transaction_id})" in paid_toast.inner_text()
    bar = row.locator(".progress")
    expect(bar).to_have_attribute("aria-valuenow", "100")
    expect(bar).to_have_attribute("data-state", "ok")
    expect(row.locator("td.note")).to_have_text("")
    return transaction_id


def watch_progress(page: Page) -> None:
    """Record every value each order's progress bar shows from now on."""
    page.evaluate(
        """() => {
          window.__progress = {};
          const record = (bar) => {
            const row = bar.closest("tr[data-order-id]");
            if (!row) return;
            const seen = (window.__progress[row.dataset.orderId] ||= []);
            const value = [Number(bar.getAttribute("aria-valuenow")), bar.dataset.state];
            const last = seen[seen.length - 1];
            if (!last || last[0] !== value[0] || last[1] !== value[1]) seen.push(value);
          };
          new MutationObserver((mutations) => {
            for (const m of mutations) {
              if (m.type === "attributes") record(m.target);
              else m.addedNodes.forEach((n) => n.querySelectorAll && n.querySelectorAll(".progress").forEach(record));
            }
          }).observe(document.querySelector("#orders tbody"), {
            subtree: true, childList: true, attributes: true, attributeFilter: ["aria-valuenow", "data-state"],
          });
        }"""
    )


def progress_seen(page: Page, order_id: str) -> list[tuple[int, str]]:
    return [tuple(v) for v in page.evaluate("(id) => window.__progress[id] || []", order_id)]


def assert_progress_only_moved_forward(page: Page, order_id: str) -> None:
    seen = progress_seen(page, order_id)
    values = [v for v, _ in seen]
    assert values == sorted(values), f"order #{order_id}'s bar moved backwards: {seen}"
    assert seen[-1] == (100, "ok"), seen


def set_email(stack, username: str, email: str) -> None:
    stack.manage(
        "shell", "-c",
        "from django.contrib.auth import get_user_model; "
        f"get_user_model().objects.filter(username={username!r}).update(email={email!r})",
    )


def web_process(stack):
    [proc] = [p for p in stack.procs if p.name.startswith("daphne") and p.poll() is None]
    return proc


# --- tests ------------------------------------------------------------------------


def test_pay_and_watch_the_order_turn_paid_without_a_reload(page, make_stack):
    stack = make_stack()
    stack.create_users("alice")
    set_email(stack, "alice", "alice@example.com")
    stack.start_web()
    stack.start_worker()

    log_in(page, stack, "alice")
    expect_live(page)
    expect(page.locator("#orders tbody")).to_contain_text("No orders yet")
    page.evaluate("window.__marker = 1")
    watch_progress(page)
    record_toasts(page)

    order_id = pay(page, "12.50", "fake-valid-nonce")
    # Reading a toast holds it open, however long the receipt takes.
    page.locator(".job-toasts .job-toast").first.hover()
    expect_paid(page, order_id, "12.50")

    # One toast for the payment, updated in place, titled and linked to its
    # order; the receipt it queued is one line in it, and never moves the bar.
    [opened] = toasts_opened(page)
    payment = job_toast(page, opened)
    expect(payment).to_have_count(1)
    expect(payment).to_have_attribute("data-status", "ok")
    expect(payment.locator(".job-toast-title a")).to_have_text(f"Order #{order_id}")
    expect(payment.locator(".job-toast-title a")).to_have_attribute("href", f"/#order-{order_id}")
    expect(payment.locator(".job-toast-line")).to_have_text(f"Receipt for order #{order_id} sent to alice@example.com")
    assert toasts_opened(page) == [opened], "the receipt opened a toast of its own"
    said = sentences_said(page)
    paid = next(text for text in said if text.startswith("Payment of 12.50 paid"))
    receipt = f"Receipt for order #{order_id} sent to alice@example.com"
    assert said[0] == "Payment of 12.50 queued" and said.index(paid) < said.index(receipt), said
    row = order_row(page, order_id)
    expect(row.locator("td.status")).to_have_attribute("data-status", "paid")
    expect(row.locator(".progress")).to_have_attribute("aria-valuenow", "100")
    expect(row.locator(".progress")).to_have_attribute("data-state", "ok")
    expect(page.locator("#orders-count")).to_have_text("1 order")
    assert_progress_only_moved_forward(page, order_id)

    assert page.evaluate("window.__marker") == 1, "the page reloaded"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "payment.png"))
    assert page.js_errors == []


def test_declined_payment_shows_the_processors_reason(page, make_stack):
    stack = make_stack()
    stack.create_users("bob")
    stack.start_web()
    stack.start_worker()

    log_in(page, stack, "bob")
    expect_live(page)
    order_id = pay(page, "5.00", "fake-processor-declined-visa-nonce")

    # The card issuer's reason, in plain words: no code, no gateway terms.
    expect(toast(page, "error", re.compile(r"^Payment declined: Do Not Honor$"))).to_be_visible()
    row = order_row(page, order_id)
    expect(row.locator("td.status")).to_have_attribute("data-status", "declined")
    expect(row.locator("td.status")).to_have_text("Declined")
    expect(row.locator("td.note")).to_have_text("Declined by the card issuer: Do Not Honor.")
    expect(row.locator(".progress")).to_have_attribute("data-state", "failed")
    # A declined payment queues no receipt.
    expect(page.locator(".job-toasts .job-toast-line")).to_have_count(0)
    expect(page.locator(".job-toasts", has_text="Receipt")).to_have_count(0)
    assert page.js_errors == []


def test_live_updates_come_back_by_themselves_after_the_server_restarts(page, make_stack):
    stack = make_stack()
    stack.create_users("carol")
    stack.start_web()
    stack.start_worker()

    log_in(page, stack, "carol")
    expect_live(page)
    page.evaluate("window.__marker = 1")
    first = pay(page, "7.00", "fake-valid-nonce")
    expect_paid(page, first, "7.00")

    # The web server dies; the worker and Redis stay up.
    daphne = web_process(stack)
    port = stack.web_ports[0]
    assert daphne.name == f"daphne-{port}"
    stack.stop(daphne, sig=signal.SIGKILL)
    connection = page.locator("#connection")
    expect(connection).to_have_attribute("data-state", "closed")
    expect(connection).to_have_text("Reconnecting…")

    # A new server on the same address: the page finds it on its own.
    stack.start_web(port=port)
    expect_live(page)

    second = pay(page, "8.00", "fake-valid-nonce")
    expect_paid(page, second, "8.00")
    expect(order_row(page, first).locator("td.status")).to_have_attribute("data-status", "paid")
    expect(page.locator("#orders-count")).to_have_text("2 orders")
    assert page.evaluate("window.__marker") == 1, "the page reloaded"
    assert page.js_errors == []
