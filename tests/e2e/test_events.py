"""Group events on the layer built for broadcast (Redis pub/sub), with a real
daphne and a real Redis: a client that stops reading is dropped at its cap,
and a Redis restart costs at most the events in flight, made good by a
snapshot."""

from __future__ import annotations

import asyncio
import json
import re
import socket

import pytest
import websockets

from project.layers import EventsChannelLayer
from project.names import JOB_UPDATE, user_group

pytestmark = [pytest.mark.e2e, pytest.mark.engine, pytest.mark.timeout(180)]

USER = "user0"


def user_id(stack, name: str) -> int:
    [(pk,)] = stack.query("SELECT id FROM auth_user WHERE username = %s", (name,))
    return pk


def events_layer(redis) -> EventsChannelLayer:
    """The events layer as every process of the stack configures it."""
    return EventsChannelLayer(hosts=[{"address": redis.url}], prefix="asgi.events")


def fat_event(n: int) -> dict:
    """A job event of about 1 KB, as a busy batch would push."""
    return {"type": JOB_UPDATE, "message": f"event {n} " + "x" * 900,
            "job": {"id": 10_000_000 + n, "kind": "book", "status": "running", "progress": n % 100,
                    "updated_at": None, "subject": {"type": "books.book", "id": str(n)}}}


def test_a_client_that_stops_reading_is_dropped_at_its_cap_and_comes_back_to_a_snapshot(make_stack, private_redis):
    cap = 64 * 1024
    stack = make_stack({"WS_SEND_BUFFER_MAX": str(cap)})
    web = stack.start_web()
    token = stack.tokens[USER]
    group = user_group(user_id(stack, USER))

    async def run():
        # A client that reads nothing after its snapshot, with the smallest
        # receive buffer the kernel allows, so the backlog piles up in daphne.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", stack.port))
        slow = await websockets.connect(stack.ws_url(), sock=sock, max_queue=1, max_size=2**20,
                                        additional_headers={"Authorization": f"Token {token}"})
        assert json.loads(await slow.recv())["type"] == "snapshot"
        # A second client of the same user reads everything.
        async with websockets.connect(stack.ws_url(), additional_headers={"Authorization": f"Token {token}"}) as fast:
            assert json.loads(await fast.recv())["type"] == "snapshot"
            layer = events_layer(private_redis)
            sent = 0
            # Publish until daphne gives up on the slow client (bounded: 20 MB).
            while "over WS_SEND_BUFFER_MAX" not in stack.log_of(web) and sent < 20_000:
                for _ in range(200):
                    await layer.group_send(group, fat_event(sent))
                    sent += 1
                await asyncio.sleep(0.05)
            await layer.flush()
            assert "over WS_SEND_BUFFER_MAX" in stack.log_of(web), f"{sent} events and the slow client is still on"
            # The reading client got every event, in order, slow neighbour or not.
            got = []
            while len(got) < sent:
                frame = json.loads(await asyncio.wait_for(fast.recv(), 30))
                got.append(int(frame["message"].split()[1]))
            assert got == list(range(sent))
        # The slow client now reads: part of the events, then its socket ends
        # with "too slow" (or is cut, when it kept the close frame waiting too).
        received = 0
        with pytest.raises(websockets.ConnectionClosed) as closed:
            while True:
                await asyncio.wait_for(slow.recv(), 30)
                received += 1
        assert received < sent
        code = closed.value.rcvd.code if closed.value.rcvd else None
        assert code in (4008, None), code
        # Its reconnect starts from a snapshot, as the page's does.
        async with websockets.connect(stack.ws_url(), additional_headers={"Authorization": f"Token {token}"}) as again:
            assert json.loads(await again.recv())["type"] == "snapshot"
        return sent

    sent = asyncio.run(run())
    # What daphne held for the slow client stayed near the cap: it was
    # dropped the first time its backlog passed it.
    [line] = [ln for ln in stack.log_of(web).splitlines() if "over WS_SEND_BUFFER_MAX" in ln]
    held = int(re.search(r"(\d+) bytes unread", line).group(1))
    assert cap < held < cap + 2 * 1024 * 1024, (held, sent)


def test_a_redis_restart_costs_only_events_in_flight_and_the_socket_gets_a_snapshot(make_stack, private_redis):
    stack = make_stack()
    stack.start_web()
    token = stack.tokens[USER]
    api = stack.api(token)

    async def run():
        async with websockets.connect(stack.ws_url(), additional_headers={"Authorization": f"Token {token}"}) as ws:
            first = json.loads(await ws.recv())
            assert first["type"] == "snapshot"
            private_redis.stop()
            # While Redis is away an order is placed: its "queued" event and
            # its job message are both lost (requeue sends the message later).
            answer = await asyncio.to_thread(api.post, stack.url("/api/orders/"),
                                             json={"amount": "4.20", "nonce": "fake-valid-nonce"})
            assert answer.status_code == 202, answer.text
            job_id = answer.json()["job"]
            private_redis.start()
            # The events layer notices it is back and the socket resyncs.
            while True:
                frame = json.loads(await asyncio.wait_for(ws.recv(), 30))
                if frame["type"] == "snapshot":
                    return job_id, frame["jobs"]

    job_id, jobs = asyncio.run(run())
    [job] = [j for j in jobs if j["id"] == job_id]
    assert job["kind"] == "payment" and job["status"] == "pending"
