"""Throttles that never turn a cache outage into a 500."""

from __future__ import annotations

import logging

from redis.exceptions import RedisError
from rest_framework.throttling import ScopedRateThrottle

logger = logging.getLogger(__name__)


class ScopedThrottle(ScopedRateThrottle):
    """DRF's scoped throttle, failing open when its cache (Redis) is down.

    The throttle protects the gateway from one user's flood; refusing every
    order while Redis restarts would hurt every user instead.  Orders are
    still durable then, and the requeue command sends them later.
    """

    def allow_request(self, request, view):
        try:
            return super().allow_request(request, view)
        except (RedisError, OSError) as exc:
            logger.warning("Throttle cache unavailable (%s); letting the request through", exc.__class__.__name__)
            return True
