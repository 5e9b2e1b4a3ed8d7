"""Throttles that count atomically, share one Redis pool per process, and never turn a Redis outage into a 500.

The rule is DRF's own: at most N requests in any rolling window of the rate's
duration (``DEFAULT_THROTTLE_RATES``), answered with 429 and ``Retry-After``.
Only the counting differs.  DRF's ``SimpleRateThrottle`` reads its history
from the cache, appends and writes it back: two clients in that gap (two
daphnes, or two threads) both see room and both get in.  Here one Lua script
in Redis does the read, the check and the write, so concurrent requests are
admitted one at a time whichever process they reach.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import uuid

import redis
from redis.exceptions import NoScriptError, RedisError
from rest_framework.throttling import ScopedRateThrottle, SimpleRateThrottle

logger = logging.getLogger(__name__)


class SharedConnectionPool(redis.ConnectionPool):
    """One Redis connection pool per process for each URL and options (``CACHES[...]["OPTIONS"]["pool_class"]``).

    Django keeps a cache object per thread *and per asyncio task*
    (``caches`` is an ``asgiref.local.Local``), and each ``RedisCache`` object
    builds its own pool.  Under daphne every request is a new task, so every
    request built a pool and opened a new connection, left for the garbage
    collector to close: 200 throttled POSTs made 200 connections (Django
    tickets #33625 and #35651).  Sharing the pool keeps one connection per
    concurrently running request, reused from one request to the next.
    """

    _shared: dict[tuple[str, str], SharedConnectionPool] = {}
    _lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str, **kwargs) -> SharedConnectionPool:
        # The options are the cache's OPTIONS (plain values and classes), so
        # their repr tells two configurations apart.
        key = (url, repr(sorted(kwargs.items())))
        with cls._lock:
            pool = cls._shared.get(key)
            if pool is None:
                pool = cls._shared[key] = super().from_url(url, **kwargs)
            return pool


# The history of one throttle key is a sorted set of request times (scores).
# Returns -1 when the request is admitted (and recorded), otherwise how many
# milliseconds until the oldest recorded request leaves the window.
_ADMIT = """
local now, duration, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - duration)
if redis.call('ZCARD', KEYS[1]) < limit then
    redis.call('ZADD', KEYS[1], now, ARGV[4])
    redis.call('PEXPIRE', KEYS[1], math.ceil(duration * 1000))
    return -1
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2]
if not oldest then
    return math.ceil(duration * 1000)
end
return math.ceil((tonumber(oldest) + duration - now) * 1000)
"""
_ADMIT_SHA = hashlib.sha1(_ADMIT.encode()).hexdigest()

# Without Redis the cache is in this process's memory (locmem), so a process
# lock makes its read-check-write atomic.
_process_lock = threading.Lock()


def _redis_client(cache) -> redis.Redis | None:
    """The redis-py client behind a Django ``RedisCache`` (or the ``cache`` proxy to one); None for other caches.

    Django has no public accessor; ``RedisCache._cache.get_client()`` is the
    one its forum and django-stubs point to, and it uses the cache's pool.
    """
    get_client = getattr(getattr(cache, "_cache", None), "get_client", None)
    return get_client(write=True) if get_client is not None else None


def _admit_in_redis(client: redis.Redis, key: str, *, now: float, duration: int, limit: int) -> float | None:
    """Record one request under ``key`` if it fits; None if it did, else the seconds to wait. One round trip."""
    args = (now, duration, limit, f"{now!r}:{uuid.uuid4().hex}")  # a member of its own, even at the same instant
    try:
        wait_ms = client.evalsha(_ADMIT_SHA, 1, key, *args)
    except NoScriptError:  # the first call on this server, or after a restart
        wait_ms = client.eval(_ADMIT, 1, key, *args)
    return None if wait_ms < 0 else wait_ms / 1000


def _admit_in_process(cache, key: str, *, now: float, duration: int, limit: int) -> float | None:
    """The same rule on a cache that lives in this process; exact only for such a cache (locmem)."""
    with _process_lock:
        history = [at for at in cache.get(key, []) if at > now - duration]
        if len(history) < limit:
            cache.set(key, [*history, now], duration)
            return None
        return history[0] + duration - now if history else float(duration)


class AtomicRateThrottle(SimpleRateThrottle):
    """``SimpleRateThrottle``'s rule, counted atomically; fails open when Redis is down.

    A sliding window (a Lua script over a sorted set of request times), not
    a fixed window (``INCR`` with an expiry): a fixed window admits up to
    twice the rate across a window boundary, so "120/minute" could mean 240
    orders, or 60 password guesses, within one minute.  The sliding window
    keeps DRF's documented meaning and its ``Retry-After`` (until the oldest
    request leaves the window), still in one round trip.  It costs one
    sorted-set entry per admitted request in the window, at most N per key.

    Refusing every request while Redis restarts would hurt every user, so a
    Redis error lets the request through and is logged.  Orders are still
    durable then, and the requeue command sends them later.
    """

    # Not DRF's "throttle_%(scope)s_%(ident)s": those keys hold a pickled
    # list, and a sorted set under the same name would be WRONGTYPE until
    # they expire.
    cache_format = "throttle:%(scope)s:%(ident)s"
    retry_after: float | None = None

    def allow_request(self, request, view) -> bool:
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        now = self.timer()
        try:
            client = _redis_client(self.cache)
            if client is not None:
                key = self.cache.make_and_validate_key(self.key)
                self.retry_after = _admit_in_redis(client, key, now=now, duration=self.duration,
                                                   limit=self.num_requests)
            else:
                self.retry_after = _admit_in_process(self.cache, self.key, now=now, duration=self.duration,
                                                     limit=self.num_requests)
        except (RedisError, OSError) as exc:
            logger.warning("Throttle cache unavailable (%s); letting the request through", exc.__class__.__name__,
                           extra={"throttle_key": self.key})
            return True
        return self.retry_after is None

    def wait(self) -> float | None:
        # At least a millisecond, so Retry-After is never "0".
        return None if self.retry_after is None else max(self.retry_after, 0.001)


class ScopedThrottle(ScopedRateThrottle, AtomicRateThrottle):
    """DRF's scoped throttle (the view's ``throttle_scope`` in ``DEFAULT_THROTTLE_RATES``), counted atomically.

    ``ScopedRateThrottle`` picks the scope and its rate, and its
    ``super().allow_request`` is ``AtomicRateThrottle``'s.
    """
