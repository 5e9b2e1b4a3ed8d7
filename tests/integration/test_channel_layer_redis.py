"""The Redis channel layer as configured: encrypted when asked, idle-proof."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest
import redis
from channels_redis.core import RedisChannelLayer

from project.settings import _redis_host
from devtools.processes import ROOT, RedisServer, free_port, wait_for_port

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
    assert stats["cmdstat_zadd"]["calls"] >= 1 and stats["cmdstat_bzpopmin"]["calls"] >= 2
