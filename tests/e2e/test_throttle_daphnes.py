"""The order throttle through two real daphnes sharing one Redis: exact counts and a flat connection count.

Only real daphnes show the connection per request: each request is an
asyncio task, and Django keeps a cache object per task.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from devtools.processes import RedisServer, redis_available
from devtools.stack import Stack
from tests.support import need

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

ORDER = {"amount": "12.50", "nonce": "fake-valid-nonce"}
RATE = 10  # per hour: no test here lasts long enough for a request to leave the window


@pytest.fixture(scope="module")
def stack(tmp_path_factory, database_templates):
    need(redis_available(), "redis-server is not installed")
    workdir = tmp_path_factory.mktemp("throttle-daphnes")
    redis = RedisServer(workdir / "redis").start()
    template = database_templates()
    stack = Stack(workdir / "stack", redis=redis, database_url=template.copy("throttle", workdir),
                  tokens=template.tokens, env={"ORDER_THROTTLE_RATE": f"{RATE}/hour"})
    try:
        stack.start_web()
        stack.start_web()
        yield stack
    finally:
        stack.close()
        redis.stop()


def post_orders(stack: Stack, user: str, count: int, *, clients: int) -> list[requests.Response]:
    """``count`` order POSTs by ``user`` from ``clients`` threads, alternating between the daphnes."""
    api = stack.api(stack.tokens[user])

    def post(index: int) -> requests.Response:
        port = stack.web_ports[index % len(stack.web_ports)]
        return api.post(stack.url("/api/orders/", port), json=ORDER, timeout=60)

    with ThreadPoolExecutor(clients) as pool:
        return list(pool.map(post, range(count)))


def test_concurrent_clients_on_two_daphnes_get_exactly_the_rate(stack):
    responses = post_orders(stack, "alice", 60, clients=24)
    assert sorted(r.status_code for r in responses) == [202] * RATE + [429] * (60 - RATE)
    assert all(int(r.headers["Retry-After"]) > 0 for r in responses if r.status_code == 429)


def test_redis_connections_do_not_grow_with_requests(stack):
    clients = 4
    post_orders(stack, "bob", 20, clients=clients)  # each daphne's pool grows to what it holds at once
    redis = stack.redis.client()
    before = redis.info("stats")["total_connections_received"]
    responses = post_orders(stack, "bob", 200, clients=clients)
    # Every one passed through the throttle (a 429 is its answer).
    assert {r.status_code for r in responses} == {429}
    # At most a few more connections, as a pool meets more requests at once
    # than during the warm-up; one per request before the shared pool.
    assert redis.info("stats")["total_connections_received"] - before <= clients * len(stack.web_ports)
