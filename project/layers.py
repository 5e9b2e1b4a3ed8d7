"""The Redis channel layers the product runs on: channels-redis' list-based core layer for
``job.run`` (each channel on one shard), and its pub/sub layer for group events."""

from __future__ import annotations

import asyncio
import logging
import time
from contextvars import ContextVar

from channels.exceptions import ChannelFull

from channels_redis.core import RedisChannelLayer as _RedisChannelLayer
from channels_redis.pubsub import RedisPubSubChannelLayer, RedisPubSubLoopLayer, RedisSingleShardConnection
from channels_redis.utils import _wrap_close, decode_hosts

from project.names import EVENTS_RESYNC

logger = logging.getLogger(__name__)

# Pause between tries while the events layer's Redis is away.
EVENTS_RECONNECT_DELAY = 0.5

# The channel a send or receive of this task is about, for the shard choice below.
_channel: ContextVar[str] = ContextVar("channel")


class _Script:
    """A Lua script, loaded once per server and called by its SHA1 (redis-py's Script)."""

    def __init__(self, text: str):
        self.text = text
        self._registered = None

    def script(self, connection):
        if self._registered is None:
            self._registered = connection.register_script(self.text)
        return self._registered


_SEND = _Script("""
redis.call('ZREMRANGEBYSCORE', KEYS[1], 0, ARGV[1])
if redis.call('ZCOUNT', KEYS[1], '-inf', '+inf') >= tonumber(ARGV[2]) then
    return 0
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
""")

# channels-redis' receive: put back what an interrupted receive had taken,
# then pop the oldest message and keep a copy until it is handed over.  Here
# the put-back and a non-blocking pop are one script; only an empty channel
# goes on to the blocking pop.
_POP = _Script("""
local backed_up = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
for i = #backed_up, 1, -2 do
    redis.call('ZADD', KEYS[1], backed_up[i], backed_up[i - 1])
end
redis.call('DEL', KEYS[2])
local popped = redis.call('ZPOPMIN', KEYS[1])
if popped[1] then
    redis.call('ZADD', KEYS[2], popped[2], popped[1])
    return popped[1]
end
return false
""")


class _ShardOfChannel:
    """Stands in for channels-redis' round-robin index generators: the shard of the current channel."""

    def __init__(self, layer: _RedisChannelLayer):
        self.layer = layer

    def __iter__(self):
        return self

    def __next__(self) -> int:
        return self.layer.consistent_hash(_channel.get())


class RedisChannelLayer(_RedisChannelLayer):
    """channels-redis' layer, with a general channel ("payments") kept on the shard its name hashes to.

    With several Redis URLs, channels-redis sends each message to a general
    channel to the next shard in turn, and a receive picks a shard once and
    polls only that one until a message arrives there (django/channels#1492).
    A worker alone on a channel then never sees a message that went to the
    other shard until another one lands on its own, which may be never: a
    requeue resends it, and the resend can land on the same wrong shard.
    Here senders and receivers agree on the shard, as process channels and
    groups already do in channels-redis.  Sharding still spreads the
    channels, groups and process channels over the servers.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._send_index_generator = _ShardOfChannel(self)
        self._receive_index_generator = _ShardOfChannel(self)

    async def send(self, channel, message):
        """channels-redis' send, as one script: one round trip where it makes four.

        The same steps, in the same order: drop what expired, refuse past
        capacity (``ChannelFull``), add the message, renew the key's expiry.
        """
        assert isinstance(message, dict), "message is not a dict"
        assert self.require_valid_channel_name(channel), "Channel name not valid"
        assert "__asgi_channel__" not in message
        key_name = channel
        if "!" in channel:
            message = {**message, "__asgi_channel__": channel}
            key_name = self.non_local_name(channel)
        connection = self.connection(self.consistent_hash(channel))
        now = time.time()
        added = await _SEND.script(connection)(
            keys=[self.prefix + key_name],
            args=[int(now) - int(self.expiry), self.get_capacity(channel), now, self.serialize(message),
                  int(self.expiry)],
            client=connection,
        )
        if not added:
            raise ChannelFull()

    async def _brpop_with_clean(self, index, channel, timeout):
        """channels-redis' pop with its backup queue: one round trip when a message waits, where it makes three."""
        backup_queue = self._backup_channel_name(channel)
        connection = self.connection(index)
        member = await _POP.script(connection)(keys=[channel, backup_queue], args=[], client=connection)
        if member is not None:
            return member
        # Nothing waiting: block until something comes, as channels-redis does.
        result = await connection.bzpopmin(channel, timeout=timeout)
        if result is None:
            return None
        _, member, timestamp = result
        await connection.zadd(backup_queue, {member: float(timestamp)})
        return member

    async def receive_single(self, channel):
        token = _channel.set(channel)
        try:
            return await super().receive_single(channel)
        finally:
            _channel.reset(token)


class _EventsShard(RedisSingleShardConnection):
    """channels-redis' pub/sub connection to one Redis, telling its channels when it had to reconnect.

    redis-py's PubSub reconnects and subscribes again by itself, but what
    was published meanwhile is gone (channels_redis#256), and channels-redis
    4.3 no longer calls its ``on_reconnect`` hook.  Here, once a receive
    works again after failing, every local channel gets an
    ``events.resync`` message, and the websockets answer it with a snapshot.
    """

    async def _do_receiving(self):
        broken = False
        while True:
            try:
                if self._pubsub and self._pubsub.subscribed:
                    message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
                    if broken:
                        broken = False
                        logger.info("Events layer: connected to Redis again; asking websockets to resync")
                        self.channel_layer.resync()
                    self._receive_message(message)
                else:
                    await asyncio.sleep(0.1)
            except (asyncio.CancelledError, asyncio.TimeoutError, GeneratorExit):
                raise
            except Exception as exc:
                if not broken:
                    logger.warning("Events layer: lost Redis (%s: %s); events published meanwhile are lost",
                                   exc.__class__.__name__, exc)
                broken = True
                await asyncio.sleep(EVENTS_RECONNECT_DELAY)


class _EventsLoopLayer(RedisPubSubLoopLayer):
    def __init__(self, *args, hosts=None, **kwargs):
        super().__init__(*args, hosts=hosts, **kwargs)
        self._shards = [_EventsShard(host, self) for host in decode_hosts(hosts)]

    def resync(self) -> None:
        message = self.channel_layer.serialize({"type": EVENTS_RESYNC})
        for queue in self.channels.values():
            queue.put_nowait(message)


class EventsChannelLayer(RedisPubSubChannelLayer):
    """The layer group events travel on: Redis pub/sub, with a resync after a lost connection."""

    def _get_layer(self):
        loop = asyncio.get_running_loop()
        try:
            return self._layers[loop]
        except KeyError:
            layer = self._layers[loop] = _EventsLoopLayer(*self._args, **self._kwargs, channel_layer=self)
            _wrap_close(self, loop)
            return layer
