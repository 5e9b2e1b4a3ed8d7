"""The Redis channel layer the product runs on: channels-redis', with each channel on one shard."""

from __future__ import annotations

from contextvars import ContextVar

from channels_redis.core import RedisChannelLayer as _RedisChannelLayer

# The channel a send or receive of this task is about, for the shard choice below.
_channel: ContextVar[str] = ContextVar("channel")


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
        token = _channel.set(channel)
        try:
            return await super().send(channel, message)
        finally:
            _channel.reset(token)

    async def receive_single(self, channel):
        token = _channel.set(channel)
        try:
            return await super().receive_single(channel)
        finally:
            _channel.reset(token)
