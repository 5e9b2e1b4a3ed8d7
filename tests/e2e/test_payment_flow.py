"""A payment from the API to its final websocket event, across real processes."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets

pytestmark = [pytest.mark.e2e, pytest.mark.engine]


def test_payment_reaches_paid_with_live_events_and_one_sale(make_stack):
    stack = make_stack()
    tokens = stack.create_users("alice")
    stack.start_web()
    worker = stack.start_worker("--only-channels", "payments")
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
            events = []
            async with asyncio.timeout(30):
                while not events or events[-1]["job"]["status"] not in ("ok", "failed"):
                    frame = json.loads(await ws.recv())
                    if frame["type"] == "job" and frame["job"]["id"] == order["job"]:
                        events.append(frame)
            return order, events

    order, events = asyncio.run(run())
    statuses = [e["job"]["status"] for e in events]
    assert statuses[-1] == "ok", events
    assert "running" in statuses
    assert events[-1]["job"]["progress"] == 100
    assert all(e["message"] for e in events)
    assert events[-1]["job"]["subject"] == {"type": "orders.order", "id": str(order["id"])}

    final = api.get(stack.url(f"/api/orders/{order['id']}/")).json()
    assert final["status"] == "paid"
    assert final["transaction_status"] == "submitted_for_settlement"
    sales = [t for t in stack.ledger() if t["order_id"] == str(order["id"])]
    assert len(sales) == 1
    assert sales[0]["id"] == final["transaction_id"]
    assert "consuming payments" in stack.log_of(worker)


def test_declined_payment_is_declined_with_the_processors_reason(make_stack):
    stack = make_stack()
    tokens = stack.create_users("bob")
    stack.start_web()
    stack.start_worker()
    api = stack.api(tokens["bob"])
    order = api.post(stack.url("/api/orders/"),
                     json={"amount": "5.00", "nonce": "fake-processor-declined-visa-nonce"}).json()
    final = stack.wait_until(
        lambda: (o := api.get(stack.url(f"/api/orders/{order['id']}/")).json())["status"] in ("declined", "failed") and o,
        timeout=30, what="a final order",
    )
    assert final["status"] == "declined"
    assert final["error"] == "Do Not Honor"
    job = api.get(stack.url(f"/api/jobs/{order['job']}/")).json()
    assert job["status"] == "failed"
    assert job["error"] == "Do Not Honor"
    assert len([t for t in stack.ledger() if t["order_id"] == str(order["id"])]) == 1
