"""``/ws/status/``: one user's live job updates.

The consumer only forwards its user's group events to the browser; it never
takes a group name from the client, so there is nothing to subscribe to but
one's own events.
"""

from __future__ import annotations

import json
import logging

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from jobs.kinds import job_kinds
from jobs.selectors import job_snapshot_for_user_with
from jobs.serializers import job_report
from project.transport import outgoing_backlog
from project.names import (
    EVENT_ERROR,
    EVENT_JOB,
    EVENT_ORDER,
    EVENT_PONG,
    EVENT_SNAPSHOT,
    EVENTS_LAYER,
    EVENTS_RESYNC,
    JOB_UPDATE,
    ORDER_UPDATE,
    WS_CLOSE_TOO_BIG,
    user_group,
)

logger = logging.getLogger(__name__)

# Clients only ever send tiny control frames ({"type": "ping"}); a bigger one
# closes the socket with WS_CLOSE_TOO_BIG.
MAX_FRAME_BYTES = 4096
# Close code for a client that reads its events too slowly: the server held
# more than WS_SEND_BUFFER_MAX bytes for it.  The page reconnects and gets a
# snapshot.
CLOSE_TOO_SLOW = 4008


@database_sync_to_async
def _snapshot(user_id: int) -> list[dict]:
    # The jobs a page shows one by one: a reconnecting page must get every
    # unfinished one back, however many lookups run beside them.
    whole = [kind.name for kind in job_kinds().values() if kind.whole]
    return [job_report(job) for job in job_snapshot_for_user_with(user_id=user_id, whole_kinds=whole)]


class StatusConsumer(AsyncWebsocketConsumer):
    # Group events arrive on the layer built for broadcast (jobs.events).
    channel_layer_alias = EVENTS_LAYER
    closing = False

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        self.group = user_group(user.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self._send({"type": EVENT_SNAPSHOT, "jobs": await _snapshot(user.pk)})

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        size = len(text_data.encode()) if text_data is not None else len(bytes_data or b"")
        if size > MAX_FRAME_BYTES:
            await self.close(code=WS_CLOSE_TOO_BIG)
            return
        try:
            frame = json.loads(text_data) if text_data is not None else None
        except ValueError:
            frame = None
        if isinstance(frame, dict) and frame.get("type") == "ping":
            await self._send({"type": EVENT_PONG})
        elif isinstance(frame, dict) and frame.get("type") == "snapshot":
            await self._send({"type": EVENT_SNAPSHOT, "jobs": await _snapshot(self.scope["user"].pk)})
        else:
            await self._send({"type": EVENT_ERROR, "error": "unsupported_frame",
                              "message": 'Send {"type": "ping"} or {"type": "snapshot"}; nothing else is accepted.'})

    async def dispatch(self, message: dict) -> None:
        # A job event only forwards what the worker already built.  Channels'
        # dispatch would first hop to a thread to close stale database
        # connections, for every event: the biggest cost of a busy fan-out.
        if message.get("type") == JOB_UPDATE:
            await self.job_update(message)
        elif message.get("type") == ORDER_UPDATE:
            await self.order_update(message)
        elif message.get("type") == EVENTS_RESYNC:
            await self.events_resync(message)
        else:
            await super().dispatch(message)

    async def job_update(self, event: dict) -> None:
        await self._send({"type": EVENT_JOB, "job": event["job"], "message": event.get("message", "")})

    async def order_update(self, event: dict) -> None:
        # What the gateway told us after the job was done (a webhook).
        await self._send({"type": EVENT_ORDER, "order": event["order"], "message": event.get("message", "")})

    async def events_resync(self, event: dict) -> None:
        # The events layer lost Redis for a while: what was published then
        # is gone, and the snapshot makes up for it.
        if hasattr(self, "group"):
            await self._send({"type": EVENT_SNAPSHOT, "jobs": await _snapshot(self.scope["user"].pk)})

    async def _send(self, payload: dict) -> None:
        if self.closing:
            return
        backlog = outgoing_backlog(self.base_send)
        if backlog is not None and backlog > settings.WS_SEND_BUFFER_MAX:
            # Never let a client that does not read grow this process
            # without bound: drop it; its reconnect starts from a snapshot.
            logger.warning("Closing a status socket of user %s: %d bytes unread, over WS_SEND_BUFFER_MAX",
                           self.scope["user"].pk, backlog)
            self.closing = True
            await self.close(code=CLOSE_TOO_SLOW)
            return
        await self.send(text_data=json.dumps(payload))
