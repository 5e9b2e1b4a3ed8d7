"""A payment from the API to its final websocket event, across real processes."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets
from orders.tasks import send_receipt

RECEIPT = send_receipt.module_path

pytestmark = [pytest.mark.e2e, pytest.mark.engine]


def test_payment_reaches_paid_with_live_events_and_one_sale(make_stack):
    # Updates of a running job at most once per 30 s: whatever this machine's
    # pace, each job shows its run at most once.
    stack = make_stack({"JOBS_EVENT_INTERVAL": "30"})
    tokens = stack.create_users("alice")
    stack.start_web()
    worker = stack.start_worker("--only-channels", "payments", "emails")
    api = stack.api(tokens["alice"])

    # Open the websocket first, so no event can be missed, then pay.
    async def run():
        async with websockets.connect(
            stack.ws_url(), additional_headers={"Authorization": f"Token {tokens['alice']}"}
        ) as ws:
            snapshot = json.loads(await ws.recv())
            assert snapshot == {"type": "snapshot", "jobs": []}
            response = await asyncio.to_thread(
                api.post, stack.url("/api/orders/"), json={"amount": "12.50", "nonce": "fake-valid-nonce"}
            )
            assert response.status_code == 202, response.text
            order = response.json()
            assert order["status"] == "pending"
            assert response.headers["Location"].endswith(f"/api/orders/{order['id']}/")
            frames = []
            async with asyncio.timeout(30):
                # Until the receipt, the order's last job, has ended.
                while not frames or frames[-1]["job"]["kind"] != RECEIPT or \
                        frames[-1]["job"]["status"] not in ("ok", "failed"):
                    frame = json.loads(await ws.recv())
                    assert frame["type"] == "job", frame
                    frames.append(frame)
            return order, frames

    order, frames = asyncio.run(run())
    payment = [f for f in frames if f["job"]["id"] == order["job"]]
    receipt = [f for f in frames if f["job"]["kind"] == RECEIPT]
    assert payment + receipt == frames
    # Every frame says something new: queued, running (only when it lasted
    # long enough to see), done.  The receipt's queueing is no news.
    assert [f["job"]["status"] for f in payment] in (["pending", "ok"], ["pending", "running", "ok"]), payment
    assert [f["job"]["status"] for f in receipt] in (["ok"], ["running", "ok"]), receipt
    assert payment[-1]["job"]["progress"] == 100
    assert all(f["message"] for f in frames)
    assert payment[-1]["job"]["subject"] == {"type": "orders.order", "id": str(order["id"])}

    final = api.get(stack.url(f"/api/orders/{order['id']}/")).json()
    assert final["status"] == "paid"
    assert final["transaction_status"] == "submitted_for_settlement"
    sales = [t for t in stack.ledger() if t["order_id"] == order["reference"]]
    assert len(sales) == 1
    assert sales[0]["id"] == final["transaction_id"]
    assert "consuming payments" in stack.log_of(worker)


def test_declined_payment_is_declined_with_the_processors_reason(make_stack):
    stack = make_stack({"PAYMENT_DECLINE_ATTEMPTS": "2"})
    tokens = stack.create_users("bob")
    stack.start_web()
    stack.start_worker()
    api = stack.api(tokens["bob"])
    # 2000 Do Not Honor is a soft decline: tried again once, then declined.
    order = api.post(stack.url("/api/orders/"),
                     json={"amount": "5.00", "nonce": "fake-processor-declined-visa-nonce"}).json()
    final = stack.wait_until(
        lambda: (o := api.get(stack.url(f"/api/orders/{order['id']}/")).json())["status"] in ("declined", "failed") and o,
        timeout=30, what="a final order",
    )
    assert final["status"] == "declined"
    assert final["error"] == "Do Not Honor (2000)"
    job = api.get(stack.url(f"/api/jobs/{order['job']}/")).json()
    assert job["status"] == "failed" and job["attempts"] == 2
    assert job["error"] == "Do Not Honor (2000)"
    tries = [t["status"] for t in stack.ledger() if t["order_id"] == final["reference"]]
    assert tries == ["processor_declined", "processor_declined"]  # two tries, nothing charged


def test_a_settlement_declined_later_reaches_the_users_socket(make_stack):
    stack = make_stack()
    tokens = stack.create_users("carol")
    stack.start_web()
    stack.start_worker("--only-channels", "payments")
    api = stack.api(tokens["carol"])

    async def run():
        async with websockets.connect(
            stack.ws_url(), additional_headers={"Authorization": f"Token {tokens['carol']}"}
        ) as ws:
            assert json.loads(await ws.recv())["type"] == "snapshot"
            # Braintree's test amount 4001.00: approved, then not settled.
            response = await asyncio.to_thread(
                api.post, stack.url("/api/orders/"), json={"amount": "4001.00", "nonce": "fake-valid-nonce"}
            )
            order = response.json()
            frames = []
            async with asyncio.timeout(30):
                while not frames or frames[-1]["type"] != "order":
                    frame = json.loads(await ws.recv())
                    if frame["type"] in ("job", "order"):
                        frames.append(frame)
            return order, frames

    order, frames = asyncio.run(run())
    paid = [f for f in frames if f["type"] == "job" and f["job"]["kind"] == "payment" and f["job"]["status"] == "ok"]
    assert paid, "paid first"
    last = frames[-1]
    assert last["order"]["id"] == order["id"] and last["order"]["status"] == "settlement_declined"
    assert "was not settled" in last["message"]
    final = api.get(stack.url(f"/api/orders/{order['id']}/")).json()
    assert final["status"] == "settlement_declined" and "Settlement Declined (4001)" in final["error"]
