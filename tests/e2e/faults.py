"""Shared steps of the fault tests: place orders, recover, and the two checks."""

from __future__ import annotations

from collections import Counter

from devtools.stack import Stack, all_pages, order_statuses

# Sandbox statuses in which the customer's money is held or taken.
MONEY = {"authorized", "authorizing", "submitted_for_settlement", "settling", "settled"}

# Where no job will move an order again (orders.models.FINAL_STATUSES): the
# wait ends there, and the checks that follow say whether it is the right one.
FINAL = {"paid", "declined", "failed", "review", "settlement_declined"}


def place_orders(stack: Stack, token: str, count: int, *, nonce: str = "fake-valid-nonce") -> list[dict]:
    api = stack.api(token)
    orders = []
    for i in range(count):
        response = api.post(stack.url("/api/orders/"), json={"amount": f"{10 + i}.00", "nonce": nonce}, timeout=30)
        # The durable record exists, so the request succeeds whatever the layer did.
        assert response.status_code == 202, response.text
        orders.append(response.json())
    return orders


def wait_all_final(stack: Stack, token: str, ids: list[int], *, timeout: float, requeue_every: float | None = None,
                   older_than: str = "2s", interval: float = 0.5) -> dict[int, str]:
    """Wait for every order to be final, running requeue periodically if asked."""
    import time

    last_requeue = time.monotonic()
    requeued = None

    def done():
        nonlocal last_requeue, requeued
        statuses = order_statuses(stack, token)
        if all(statuses.get(i) in FINAL for i in ids):
            return statuses
        if requeue_every is not None and time.monotonic() - last_requeue > requeue_every:
            requeued = stack.manage("requeue", "--older-than", older_than, check=False)
            last_requeue = time.monotonic()
        return None

    try:
        return stack.wait_until(done, timeout=timeout, interval=interval, what="every order to be final")
    except AssertionError as exc:
        # What a person would look at next: the orders still open, and what the last requeue said.
        orders = {o["id"]: o for o in all_pages(stack.api(token), stack.url("/api/orders/?page_size=500"))}
        waiting = [orders.get(i, {"id": i, "status": "missing"}) for i in ids if orders.get(i, {}).get("status") not in FINAL]
        last = f"requeue exited {requeued.returncode}: {(requeued.stdout + requeued.stderr)[-1500:]}" if requeued else ""
        raise AssertionError(f"{exc}; {len(waiting)} not final, e.g. {waiting[:3]}; {last}") from None


def charges(stack: Stack) -> Counter:
    """How many transactions hold money at the sandbox, per order reference."""
    return Counter(t["order_id"] for t in stack.ledger() if t["status"] in MONEY)


def assert_nothing_lost_nothing_twice(stack: Stack, token: str, ids: list[int], *, expect: str = "paid") -> None:
    """The two checks every fault test ends with."""
    orders = {o["id"]: o for o in all_pages(stack.api(token), stack.url("/api/orders/?page_size=500"))}
    wrong = {i: (orders[i]["status"], orders[i].get("error")) for i in ids if orders[i]["status"] != expect}
    assert not wrong, f"every order is {expect}; these are not (status, error): {wrong}"
    charged = charges(stack)
    paid = [i for i in ids if orders[i]["status"] == "paid"]
    assert {i: charged[orders[i]["reference"]] for i in paid} == {i: 1 for i in paid}, "exactly one charge per paid order"
