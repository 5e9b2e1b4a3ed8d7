"""``make run``'s server requeues stuck work itself: no other process can reach its in-memory channels."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from channels.testing import HttpCommunicator

from jobs.models import Job, JobStatus
from orders.models import Order, OrderStatus
from project.embedded import EmbeddedWorkers
from tests.factories import make_order

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120), pytest.mark.engine]


async def test_a_job_a_killed_server_left_running_is_finished_by_the_next_one(channel_layer, sandbox, settings,
                                                                              user):
    from project.asgi import application as router

    settings.PAYMENT_GATEWAY_URL = sandbox.gateway_url()
    # What a server killed mid-payment leaves: the job running, its message gone with the process.
    order = await sync_to_async(make_order)(user)
    await channel_layer.flush()
    await Job.objects.filter(pk=order.job_id).aupdate(status=JobStatus.RUNNING, attempts=1)
    await Order.objects.filter(pk=order.pk).aupdate(status=OrderStatus.PROCESSING)

    server = EmbeddedWorkers(router)
    communicator = HttpCommunicator(server, "GET", "/accounts/login/", headers=[(b"host", b"localhost")])
    assert (await communicator.get_response())["status"] == 200
    try:
        async with asyncio.timeout(60):
            while (await Order.objects.aget(pk=order.pk)).status != OrderStatus.PAID:
                await asyncio.sleep(0.05)
    finally:
        assert await server.stop() == 0
    job = await Job.objects.aget(pk=order.job_id)
    assert job.status == JobStatus.OK and job.attempts == 2
