"""The Redis channel layer as configured: encrypted when asked, idle-proof."""

from __future__ import annotations

import asyncio

import pytest
import redis
from channels_redis.core import RedisChannelLayer

from project.settings import _redis_host

pytestmark = pytest.mark.timeout(60)


async def test_encrypted_messages_are_unreadable_in_redis_and_arrive_intact(redis_server):
    layer = RedisChannelLayer(hosts=[_redis_host(redis_server.url)], prefix="enc-test",
                              symmetric_encryption_keys=["a-long-secret-key-for-the-test"])
    await layer.send("payments", {"type": "job.run", "job": 4242, "note": "card-holder-secret"})
    raw = redis.Redis.from_url(redis_server.url).zrange("enc-testpayments", 0, -1)
    assert raw and all(b"card-holder-secret" not in value for value in raw)
    assert await layer.receive("payments") == {"type": "job.run", "job": 4242, "note": "card-holder-secret"}
    await layer.flush()


async def test_an_idle_receive_outlives_the_blocking_pop_timeout(redis_server):
    # redis-py 8's default 5 s socket timeout equals channels-redis' 5 s
    # BZPOPMIN: unconfigured, an idle receive raises TimeoutError here.
    layer = RedisChannelLayer(hosts=[_redis_host(redis_server.url)], prefix="idle-test")
    receiver = asyncio.create_task(layer.receive("quiet"))
    await asyncio.sleep(12)
    assert not receiver.done(), receiver.exception() if receiver.done() else None
    await layer.send("quiet", {"type": "job.run", "job": 1})
    assert await asyncio.wait_for(receiver, 5) == {"type": "job.run", "job": 1}
    await layer.flush()
