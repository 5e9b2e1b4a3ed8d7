"""The API throttle against a real Redis, in this process: atomic counts, one pool, failing open.

The throttle is driven directly, as DRF drives it (a fresh throttle object
per request), from many threads at once.  The same rule through two real
daphnes is in test_throttle_daphnes.py.
"""

from __future__ import annotations

import contextvars
import threading
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest
import redis
from django.core.cache import caches
from rest_framework.throttling import SimpleRateThrottle

from devtools.processes import RedisServer, redis_available
from project.throttling import ScopedThrottle
from tests.support import need, settings_under

pytestmark = pytest.mark.timeout(120)

VIEW = SimpleNamespace(throttle_scope="orders")


def request_of(user_id: int) -> SimpleNamespace:
    """What ScopedRateThrottle reads from a request: the user, and META for anonymous ones."""
    return SimpleNamespace(user=SimpleNamespace(is_authenticated=True, pk=user_id), META={})


def redis_caches(url: str) -> dict:
    """CACHES exactly as project/settings.py makes it for a deployment with REDIS_URL=url."""
    with pytest.MonkeyPatch.context() as env:  # settings_under rewrites os.environ for the read only
        return settings_under(env, {"REDIS_URL": url, "DEBUG": "1"})["CACHES"]


@pytest.fixture
def rate(monkeypatch):
    """Set the orders scope's rate for one test (DRF reads the rates into the class at import)."""

    def set_rate(value: str) -> None:
        monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"orders": value})

    return set_rate


@pytest.fixture(scope="module")
def module_redis(tmp_path_factory):
    """A redis-server of this module's own, so its connection counts are this module's alone."""
    need(redis_available(), "redis-server is not installed")
    server = RedisServer(tmp_path_factory.mktemp("throttle-redis")).start()
    yield server
    server.stop()


@pytest.fixture
def redis_cache(module_redis, settings):
    """The default cache on Redis (database 9), configured as in production, and empty; a client to look inside."""
    url = module_redis.url.removesuffix("/0") + "/9"
    settings.CACHES = redis_caches(url)
    caches["default"].clear()
    yield redis.Redis.from_url(url)
    caches["default"].clear()


def admit_concurrently(requests: int, *, user_id: int, threads: int = 32) -> list[bool]:
    """``requests`` throttle checks for one user, the first ``threads`` of them released together."""
    start = threading.Barrier(threads)

    def check(index: int) -> bool:
        if index < threads:
            start.wait()
        return ScopedThrottle().allow_request(request_of(user_id), VIEW)

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(check, range(requests)))


def test_concurrent_requests_of_one_user_admit_exactly_the_rate(redis_cache, rate):
    # DRF's read-append-write lets threads that read the same history all in.
    rate("10/hour")
    admitted = admit_concurrently(64, user_id=1)
    assert admitted.count(True) == 10
    # The window is full: the next one is refused, and told how long to wait.
    throttle = ScopedThrottle()
    assert throttle.allow_request(request_of(1), VIEW) is False
    assert 0 < throttle.wait() <= 3600
    # Per user: another user has the whole rate.
    assert admit_concurrently(12, user_id=2, threads=12).count(True) == 10


def test_two_processes_pools_count_against_one_window(redis_cache, rate, settings):
    # Another web process is another pool; the count lives in Redis.
    rate("6/hour")
    first = caches["default"]
    other = type(first)(settings.CACHES["default"]["LOCATION"], {})  # with a pool of Django's own
    allowed = []
    for cache in (first, other) * 4:
        throttle = ScopedThrottle()
        throttle.cache = cache
        allowed.append(throttle.allow_request(request_of(3), VIEW))
    assert allowed == [True] * 6 + [False] * 2


def test_requests_in_new_tasks_reuse_the_process_pool(redis_cache, rate):
    """Under daphne each request is a new asyncio task, so Django gives it a new cache object.

    A fresh ``contextvars.Context`` per check is what daphne's task is to
    ``django.core.cache.caches``; with Django's own pool each of these opened
    a connection of its own.
    """
    rate("1000/hour")
    ScopedThrottle().allow_request(request_of(4), VIEW)  # the pool's first connection
    before = redis_cache.info("stats")["total_connections_received"]
    for _ in range(200):
        assert contextvars.Context().run(ScopedThrottle().allow_request, request_of(4), VIEW)
    assert redis_cache.info("stats")["total_connections_received"] == before


def test_a_redis_outage_lets_requests_through_and_the_count_resumes_after(tmp_path, settings, rate, caplog):
    need(redis_available(), "redis-server is not installed")
    server = RedisServer(tmp_path / "redis").start()
    try:
        settings.CACHES = redis_caches(server.url)
        rate("2/hour")
        assert [ScopedThrottle().allow_request(request_of(5), VIEW) for _ in range(3)] == [True, True, False]
        server.stop()
        # Orders are durable; refusing them all while Redis is away would hurt every user.
        assert [ScopedThrottle().allow_request(request_of(5), VIEW) for _ in range(3)] == [True] * 3
        assert "Throttle cache unavailable (ConnectionError)" in caplog.text
        # The same pool reconnects once Redis is back.  Its data went with it
        # (no persistence here), so the window starts again.
        server = RedisServer(tmp_path / "redis", port=server.port).start()
        assert [ScopedThrottle().allow_request(request_of(5), VIEW) for _ in range(3)] == [True, True, False]
    finally:
        server.stop()


def test_without_redis_the_in_process_count_is_exact_under_threads(rate, settings):
    # `make run`: one process, locmem.
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                                   "LOCATION": "throttle-test"}}
    rate("10/hour")
    try:
        assert admit_concurrently(64, user_id=6).count(True) == 10
    finally:
        caches["default"].clear()

