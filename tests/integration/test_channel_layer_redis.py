"""The Redis channel layer as configured: encrypted when asked, idle-proof, one shard per channel."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest
import redis
from channels_redis.core import RedisChannelLayer as StockRedisChannelLayer

from devtools.processes import ROOT, RedisServer, free_port, wait_for_port
from project.layers import RedisChannelLayer
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
    # channels-redis waits for a message in blocking pops of brpop_timeout
    # seconds, one after another.  redis-py 8's default 5 s socket timeout
    # equals the 5 s pop: unconfigured, an idle receive raises TimeoutError
    # (django/channels_redis#422).  Our read timeout must outlast one pop...
    assert _redis_host(redis_server.url)["socket_timeout"] > RedisChannelLayer.brpop_timeout
    # ...and then an idle receive survives any number of them.  Short pops
    # show that in seconds: three of them pass here with nothing to receive.
    layer = RedisChannelLayer(hosts=[_redis_host(redis_server.url)], prefix="idle-test")
    layer.brpop_timeout = 1
    receiver = asyncio.create_task(layer.receive("quiet"))
    await asyncio.sleep(3.5)
    assert not receiver.done(), receiver.exception() if receiver.done() else None
    await layer.send("quiet", {"type": "job.run", "job": 1})
    assert await asyncio.wait_for(receiver, 5) == {"type": "job.run", "job": 1}
    await layer.flush()


async def test_a_read_timeout_shorter_than_the_pop_breaks_an_idle_receive(redis_server):
    # The control for the test above: the failure it guards against is real.
    host = _redis_host(redis_server.url) | {"socket_timeout": 0.5, "retry_on_timeout": False}
    layer = RedisChannelLayer(hosts=[host], prefix="idle-broken")
    layer.brpop_timeout = 1
    with pytest.raises(redis.exceptions.TimeoutError):
        await asyncio.wait_for(layer.receive("quiet"), 10)
    await layer.flush()


@pytest.fixture
def two_shards(tmp_path):
    shards = [RedisServer(tmp_path / f"shard{i}").start() for i in range(2)]
    yield shards
    for shard in shards:
        shard.stop()


def _sharded(layer_class, shards, prefix: str):
    """A layer over every shard, configured as the product configures its hosts."""
    return layer_class(hosts=[_redis_host(shard.url) for shard in shards], prefix=prefix)


def _queued(shards, key: str) -> list[int]:
    """How many messages wait under ``key`` on each shard."""
    counts = []
    for shard in shards:
        client = shard.client()
        counts.append(client.zcard(key))
        client.close()
    return counts


async def _send_from_fresh_layers(layer_class, shards, prefix: str, count: int) -> None:
    # Each message from a layer of its own and a second one from the same
    # layer: as from many processes (web requests, requeue runs).
    for i in range(count):
        layer = _sharded(layer_class, shards, prefix)
        await layer.send("payments", {"type": "job.run", "job": i})
        if i % 2:
            await layer.send("payments", {"type": "job.run", "job": 1000 + i})
        await layer.close_pools()


async def test_a_sharded_channel_lives_on_one_shard_so_its_only_receiver_gets_everything(two_shards):
    await _send_from_fresh_layers(RedisChannelLayer, two_shards, "one-shard", 6)
    counts = _queued(two_shards, "one-shardpayments")
    assert sorted(counts) == [0, 9], counts  # every message on the channel's own shard
    receiver = _sharded(RedisChannelLayer, two_shards, "one-shard")
    receiver.brpop_timeout = 1
    jobs = set()
    for _ in range(9):
        jobs.add((await asyncio.wait_for(receiver.receive("payments"), 10))["job"])
    assert jobs == {0, 1, 2, 3, 4, 5, 1001, 1003, 1005}
    await receiver.flush()


async def _requeue_like_sends(layer_class, shards, prefix: str) -> None:
    # A requeue run in a process of its own: a receipt's job, then a payment's.
    sender = _sharded(layer_class, shards, prefix)
    await sender.send("emails", {"type": "job.run", "job": 1})
    await sender.send("payments", {"type": "job.run", "job": 2})
    await sender.close_pools()


async def test_the_only_receiver_of_a_sharded_channel_gets_a_resent_message(two_shards):
    receiver = _sharded(RedisChannelLayer, two_shards, "resent")
    receiver.brpop_timeout = 1
    waiting = asyncio.create_task(receiver.receive("payments"))
    await _requeue_like_sends(RedisChannelLayer, two_shards, "resent")
    assert (await asyncio.wait_for(waiting, 10))["job"] == 2
    await receiver.flush()


async def test_the_stock_layer_strands_a_resent_message_on_the_shard_its_receiver_is_not_polling(two_shards):
    # The control for the two tests above (django/channels#1492): channels-
    # redis alone sends a general channel's messages to the shards in turn,
    # and a receive polls the one shard it picked until a message arrives
    # there.  The worker waits on shard 0; the payment's message went to 1.
    receiver = _sharded(StockRedisChannelLayer, two_shards, "stranded")
    receiver.brpop_timeout = 1
    waiting = asyncio.create_task(receiver.receive("payments"))
    await _requeue_like_sends(StockRedisChannelLayer, two_shards, "stranded")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(asyncio.shield(waiting), 3)  # three of its polls, all on shard 0
    assert _queued(two_shards, "strandedpayments") == [0, 1]
    waiting.cancel()
    await receiver.flush()


@pytest.fixture
def primary(redis_server, tmp_path):
    """A Redis of this test's own, so what reached it is only this test's traffic."""
    server = RedisServer(tmp_path / "primary").start()
    yield server
    server.stop()


@pytest.fixture
def sentinel(primary, tmp_path):
    """A real Sentinel (redis-server in sentinel mode) watching ``primary``."""
    port = free_port()
    conf = tmp_path / "sentinel.conf"
    conf.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {tmp_path}\n"
        f"sentinel monitor primary 127.0.0.1 {primary.port} 1\n"
    )
    proc = subprocess.Popen(["redis-server", str(conf), "--sentinel"],
                            stdout=open(tmp_path / "sentinel.log", "wb"), stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, timeout=10, proc=proc)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def test_the_layer_configured_for_sentinel_finds_the_primary_through_it(sentinel, primary):
    # The product's own settings, in a process of their own, with only the Sentinel's address.
    script = (
        "import asyncio, json\n"
        "from channels.layers import get_channel_layer\n"
        "from django.conf import settings\n"
        "async def main():\n"
        "    layer = get_channel_layer()\n"
        "    await layer.group_add('user.1', 'payments')\n"
        "    await layer.group_send('user.1', {'type': 'job.update', 'job': {'id': 7}})\n"
        "    await layer.send('payments', {'type': 'job.run', 'job': 8})\n"
        "    got = [await layer.receive('payments'), await layer.receive('payments')]\n"
        "    print(json.dumps({'hosts': settings.CHANNEL_LAYERS['default']['CONFIG']['hosts'], 'got': got}))\n"
        "asyncio.run(main())\n"
    )
    env = {**os.environ, "DEBUG": "1", "REDIS_SENTINELS": f"127.0.0.1:{sentinel}",
           "REDIS_SENTINEL_MASTER": "primary", "CHANNEL_LAYER_PREFIX": "sentinel-test",
           "DJANGO_SETTINGS_MODULE": "project.settings"}
    env.pop("REDIS_URL", None)
    result = subprocess.run([sys.executable, "manage.py", "shell", "-c", script], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["hosts"][0]["sentinels"] == [["127.0.0.1", sentinel]] and "address" not in out["hosts"][0]
    assert out["got"] == [{"type": "job.update", "job": {"id": 7}}, {"type": "job.run", "job": 8}]
    # The messages went through the primary the Sentinel named, not some default Redis.
    stats = redis.Redis.from_url(primary.url).info("commandstats")
    calls = {name.removeprefix("cmdstat_"): stat["calls"] for name, stat in stats.items()}
    # Two pops: non-blocking in the receive's script when a message waits, else blocking.
    assert calls.get("zadd", 0) >= 1 and calls.get("zpopmin", 0) + calls.get("bzpopmin", 0) >= 2, calls
