"""A pace for calls to a third party, shared by every process of a deployment.

Built on the ``limits`` library's moving window: in Redis when the deployment
has one (every worker process then counts against the same window), in
memory otherwise (one process: the server with its embedded workers).
"""

from __future__ import annotations

import logging
import time

from limits import parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from integrations.exceptions import Throttled

logger = logging.getLogger(__name__)


class RateLimiter:
    """At most ``rate`` calls (``"180/minute"``, ``"60 per 5 seconds"``) under ``key``, across processes."""

    def __init__(self, *, rate: str, key: str, storage_uri: str = "memory://", longest_wait: float = 30.0):
        self.item = parse(rate)
        self.key = key
        self.limiter = MovingWindowRateLimiter(storage_from_string(storage_uri))
        self.longest_wait = longest_wait

    def wait(self) -> float:
        """Block until one more call fits the window; the seconds waited.

        Raises ``Throttled`` rather than wait longer than ``longest_wait``: a
        job thread is better given back to the worker, and its job waited
        out (at no cost of an attempt), than held for minutes.
        """
        waited = 0.0
        while not self.limiter.hit(self.item, self.key):
            stats = self.limiter.get_window_stats(self.item, self.key)
            free_in = max(stats.reset_time - time.time(), 0.01)
            delay = min(free_in, 1.0)
            if waited + delay > self.longest_wait:
                raise Throttled(f"Rate limit {self.item} for {self.key} is used up", retry_after=free_in)
            time.sleep(delay)
            waited += delay
        if waited:
            logger.debug("Waited %.2fs for the %s rate limit of %s", waited, self.item, self.key)
        return waited

    def exhaust(self) -> None:
        """Use up the rest of the window, so every process pauses (the third party said 429)."""
        remaining = self.limiter.get_window_stats(self.item, self.key).remaining
        if remaining > 0:
            self.limiter.hit(self.item, self.key, cost=remaining)
