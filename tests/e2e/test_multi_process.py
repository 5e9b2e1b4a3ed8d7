"""Outgrowing one machine, on one machine: PostgreSQL, a Redis layer sharded
over two servers, two daphne processes and two workers.  200 payments and a
50-book batch; one daphne and one worker are killed mid-run; nothing is lost
and nothing is charged twice."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import websockets

from devtools.processes import RedisServer, free_port, redis_available
from devtools.stack import Stack, all_pages
from tests.e2e.faults import assert_nothing_lost_nothing_twice, wait_all_final
from tests.support import need

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.timeout(600)]

USERS = [f"user{i}" for i in range(10)]
ORDERS_PER_USER = 20
FIXTURE_ISBNS = ["9780345418913", "9780451524935", "9780451526342", "9781101990322", "9780143133438"]


def batch_of_50() -> list[str]:
    """The sandbox's five known books and 45 valid ISBNs it has never heard of."""
    from books.isbn import isbn13_check_digit

    unknown = [f"979{n:09d}" for n in range(1000, 1045)]
    return FIXTURE_ISBNS + [body + isbn13_check_digit(body) for body in unknown]


def own_orders(stack: Stack, token: str) -> list[dict]:
    return all_pages(stack.api(token), stack.url("/api/orders/?page_size=500"))


class Client:
    """One user's websocket, moving to the other daphne when its own dies."""

    def __init__(self, name: str, token: str, ports: list[int]):
        self.name, self.token, self.ports = name, token, ports
        self.events: list[dict] = []
        self.snapshots: list[tuple[int, list]] = []
        self.reconnected_at: float | None = None
        self.events_before_move = 0

    async def run(self, stop: asyncio.Event) -> None:
        for port in self.ports:
            try:
                async with websockets.connect(f"ws://127.0.0.1:{port}/ws/status/",
                                              additional_headers={"Authorization": f"Token {self.token}"}) as ws:
                    while not stop.is_set():
                        try:
                            frame = json.loads(await asyncio.wait_for(ws.recv(), 0.5))
                        except TimeoutError:
                            continue
                        if frame["type"] == "snapshot":
                            self.snapshots.append((port, frame["jobs"]))
                        elif frame["type"] == "job":
                            self.events.append(frame["job"])
                    return
            except (websockets.ConnectionClosed, OSError):
                self.reconnected_at = time.monotonic()
                self.events_before_move = len(self.events)
                await asyncio.sleep(0.5)  # the page backs off and reconnects; so do we


def test_two_webs_two_workers_sharded_redis_postgres_survive_a_kill_each(tmp_path, database_templates):
    need(redis_available(), "redis-server is not installed")
    # PostgreSQL whatever the pass: `make test` runs it once, in its PostgreSQL pass.
    template = database_templates("postgres")
    shards = [RedisServer(tmp_path / f"redis{i}").start() for i in range(2)]
    web_a, web_b = free_port(), free_port()
    stack = Stack(tmp_path / "stack", redis=None, database_url=template.copy("multi"), tokens=template.tokens, env={
        "REDIS_URL": ",".join(shard.url for shard in shards),
        "SANDBOX_LATENCY_MS": "50",
        # The gateway lives on the daphne that survives.
        "PAYMENT_GATEWAY_URL": f"http://127.0.0.1:{web_b}/sandbox/gateway/",
    })
    try:
        tokens = stack.create_users(*USERS)
        first_web = stack.start_web(port=web_a)
        stack.start_web(port=web_b)
        first_worker = stack.start_worker("--concurrency", "10")
        stack.start_worker("--concurrency", "10")
        clients = {name: Client(name, tokens[name], [web_a, web_b] if i % 2 == 0 else [web_b])
                   for i, name in enumerate(USERS)}

        async def until(predicate, what: str, timeout: float = 60) -> None:
            deadline = time.monotonic() + timeout
            while not predicate():
                assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
                await asyncio.sleep(0.1)

        placed_so_far: list[int] = []

        async def scenario():
            stop = asyncio.Event()
            listeners = [asyncio.create_task(c.run(stop)) for c in clients.values()]
            await until(lambda: all(c.snapshots for c in clients.values()), "every client's snapshot")

            def place(args):
                name, n = args
                port = web_a if n % 2 == 0 else web_b
                for _ in range(20):  # web A may be dead by now: a client retries elsewhere
                    try:
                        r = requests.post(f"http://127.0.0.1:{port}/api/orders/", timeout=10,
                                          json={"amount": "5.00", "nonce": "fake-valid-nonce"},
                                          headers={"Authorization": f"Token {tokens[name]}"})
                        assert r.status_code == 202, r.text
                        placed_so_far.append(1)
                        return name, r.json()
                    except requests.ConnectionError:
                        port = web_b
                raise AssertionError("could not place an order")

            work = [(name, n) for n in range(ORDERS_PER_USER) for name in USERS]
            bulk = await asyncio.to_thread(
                requests.post, f"http://127.0.0.1:{web_b}/api/books/bulk/", json={"isbn": batch_of_50()},
                headers={"Authorization": f"Token {tokens[USERS[1]]}"}, timeout=30,
            )
            assert bulk.status_code == 202, bulk.text
            with ThreadPoolExecutor(8) as pool:
                placing = asyncio.get_running_loop().run_in_executor(None, lambda: list(pool.map(place, work)))
                await until(lambda: len(placed_so_far) >= len(work) // 5, "a fifth of the orders")
                first_web.send_signal(signal.SIGKILL)  # web A dies mid-run
                stack.web_ports.remove(web_a)  # from now on, ask web B
                await until(lambda: len(placed_so_far) >= len(work) * 2 // 5, "two fifths of the orders")
                first_worker.send_signal(signal.SIGKILL)  # and so does a worker
                placed = await placing
            for name in USERS:
                ids = [o["id"] for n, o in placed if n == name]
                await asyncio.to_thread(wait_all_final, stack, tokens[name], ids, timeout=240,
                                        requeue_every=4, older_than="4s")
            batch_job = bulk.json()["job"]["id"]
            await asyncio.to_thread(
                stack.wait_until,
                lambda: stack.api(tokens[USERS[1]]).get(stack.url(f"/api/jobs/{batch_job}/")).json()["status"] == "ok"
                or stack.manage("requeue", "--older-than", "4s", check=False) and False,
                timeout=240, interval=4, what="the book batch",
            )
            # The clients that never moved hear every final event; give them a bounded moment.
            final = {name: {o["job"] for n, o in placed if n == name} for name in USERS}

            def heard_all(client: Client) -> bool:
                return final[client.name] <= {e["id"] for e in client.events if e["status"] == "ok"}

            try:
                await until(lambda: all(heard_all(c) for i, c in enumerate(clients.values()) if i % 2), "final events", 30)
            except AssertionError:
                pass  # the assertions below say who missed what
            stop.set()
            await asyncio.gather(*listeners)
            return placed, bulk.json()

        placed, bulk = asyncio.run(scenario())
        assert len(bulk["accepted"]) == 50
        books = [stack.api(tokens[USERS[1]]).get(a["url"]).json() for a in bulk["accepted"]]
        assert sorted(b["status"] for b in books) == ["found"] * 5 + ["not_found"] * 45
        assert {b["isbn"] for b in books if b["status"] == "found"} == set(FIXTURE_ISBNS)
        assert len(placed) == len(USERS) * ORDERS_PER_USER
        for i, name in enumerate(USERS):
            # From the API, not from what we placed: a POST whose answer died
            # with web A may have created an order the client then placed again.
            orders = own_orders(stack, tokens[name])
            assert len(orders) >= ORDERS_PER_USER
            assert_nothing_lost_nothing_twice(stack, tokens[name], [o["id"] for o in orders])
            mine = {o["job"] for o in orders}
            client = clients[name]
            seen = {e["id"] for e in client.events if e["kind"] == "payment"}
            assert seen <= mine, f"{name} saw another user's job"
            if i % 2:
                # Never disconnected: every one of its jobs reached it as "ok".
                done = {e["id"] for e in client.events if e["kind"] == "payment" and e["status"] == "ok"}
                assert done == mine, f"{name} missed {len(mine - done)} final events"
            else:
                assert client.reconnected_at is not None, f"{name} never lost web A"
                assert [port for port, _ in client.snapshots][-1] == web_b, "snapshot from the surviving web"
                after = client.events[client.events_before_move:]
                assert any(e["kind"] == "payment" and e["status"] == "ok" for e in after), "events flow after the move"
    finally:
        stack.close()
        for shard in shards:
            shard.stop()
