"""The worker's outbox: job threads hand over events without waiting, and order survives."""

from __future__ import annotations

import asyncio
import threading

import pytest

from jobs.messages import Outbox
from tests.channels import drain

pytestmark = pytest.mark.timeout(30)


async def test_events_from_many_threads_arrive_in_order_per_group_and_nothing_is_lost(channel_layer):
    listeners = {}
    for user in range(5):
        listeners[user] = await channel_layer.new_channel()
        await channel_layer.group_add(f"user.{user}", listeners[user])
    box = Outbox()

    def job_thread(user: int) -> None:
        for step in range(40):
            box.put_event(f"user.{user}", {"type": "job.update", "step": step})
        box.put_job("payments", 1000 + user)

    threads = [threading.Thread(target=job_thread, args=(user,)) for user in listeners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert await box.close(timeout=10) == 0

    for user, channel in listeners.items():
        assert [e["step"] for e in await drain(channel_layer, channel)] == list(range(40))
    jobs = sorted(m["job"] for m in await drain(channel_layer, "payments"))
    assert jobs == [1000 + user for user in listeners]


async def test_a_full_outbox_drops_and_counts_instead_of_blocking_the_job(channel_layer):
    box = Outbox(maxsize=3)
    box._task.cancel()  # nobody sends: the queue only fills
    for step in range(5):
        box.put_event("user.1", {"type": "job.update", "step": step})
    await asyncio.sleep(0.05)
    assert box.dropped == 2
