"""The worker loop itself, in this process, on a real channel layer: what ``runworker`` and ``make run`` run.

Nothing is mocked: the real routing, consumers, services and database, the
in-memory channel layer (``make run``'s) or a real Redis one, and the sandbox
gateway in a process of its own.  Concurrency is proved by structure: the
sandbox counts how many calls it held at once.  One test stands in a layer
whose receive loses a cancel, to make certain the Python 3.11 race that a
hundred stops on Redis meet only now and then.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid

import pytest
from asgiref.sync import sync_to_async
from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer, get_channel_layer
from channels.testing import HttpCommunicator
from project.layers import RedisChannelLayer

from devtools.processes import RedisServer, free_port, redis_available
from jobs.messages import job_message
from jobs.models import Job, JobStatus
from jobs.worker import JobWorker
from orders.models import Order, OrderStatus
from project.embedded import EmbeddedWorkers
from project.names import BOOKS, EMAILS, PAYMENTS
from project.settings import _redis_host
from routing import channel_router
from tests.conftest import sales_of
from tests.factories import make_order
from tests.support import need

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120), pytest.mark.engine]


async def until(predicate, *, timeout: float = 30, what: str = "condition"):
    """Poll an async predicate until it holds, within a bound."""
    async with asyncio.timeout(timeout):
        while not (value := await predicate()):
            await asyncio.sleep(0.05)
    return value


async def orders_in(*statuses: str) -> int:
    return await Order.objects.filter(status__in=statuses).acount()


def place(user, count: int) -> list[Order]:
    return [make_order(user) for _ in range(count)]


async def abandoned_jobs_finish(worker: JobWorker, timeout: float = 30) -> None:
    """Let the jobs a stopped worker left running finish while this test's loop still runs.

    Their threads end with commit hooks that hop back to this loop
    (``async_to_sync``).  Were the test to end first, they would wait forever
    for a loop that never runs again, and the test process would hang at exit
    joining them.  The worker's task for a job ends only after its thread has.
    """
    async with asyncio.timeout(timeout):
        while worker.in_flight:
            await asyncio.wait(set(worker.in_flight))


def start_payments_worker(layer, *, concurrency: int, grace: float = 30) -> tuple[JobWorker, asyncio.Task]:
    """A worker on the payments channel, running on this test's event loop."""
    worker = JobWorker(application=channel_router, channels=[PAYMENTS], channel_layer=layer,
                       concurrency=concurrency, grace=grace)
    return worker, asyncio.create_task(worker.run())


async def _all(status: str, count: int) -> bool:
    return await orders_in(status) == count


async def test_the_worker_pays_every_order_at_most_concurrency_at_once(channel_layer, sandbox, settings, user):
    settings.PAYMENT_GATEWAY_URL = sandbox.gateway_url(latency_ms=200)
    sandbox.stats(reset=True)
    await sync_to_async(place)(user, 12)
    worker, running = start_payments_worker(channel_layer, concurrency=4)
    await until(lambda: _all(OrderStatus.PAID, 12), what="12 orders paid")
    worker.stop()
    assert await running == 0
    assert worker.processed == 12
    traffic = (await sync_to_async(sandbox.stats)())["gateway"]
    # Several at once, and never more than the bound.
    assert 2 <= traffic["peak_in_flight"] <= 4, traffic
    assert traffic["requests"] == 12 * 3


async def test_stop_lets_in_flight_jobs_finish_within_the_grace(channel_layer, sandbox, settings, user):
    settings.PAYMENT_GATEWAY_URL = sandbox.gateway_url(latency_ms=300)
    await sync_to_async(place)(user, 3)
    worker, running = start_payments_worker(channel_layer, concurrency=3, grace=30)
    await until(lambda: _all(OrderStatus.PROCESSING, 3), what="three in flight")
    worker.stop()
    assert await running == 0
    assert await orders_in(OrderStatus.PAID) == 3


async def test_stop_past_the_grace_leaves_the_jobs_for_requeue(channel_layer, sandbox, settings, user):
    settings.PAYMENT_GATEWAY_URL = sandbox.gateway_url(latency_ms=1000)
    [order] = await sync_to_async(place)(user, 1)
    worker, running = start_payments_worker(channel_layer, concurrency=2, grace=0.2)
    await until(lambda: _all(OrderStatus.PROCESSING, 1), what="the job in flight")
    worker.stop()
    assert await running == 1
    # Its row says where it stands: the requeue command will find it.
    assert (await Job.objects.aget(pk=order.job_id)).status == JobStatus.RUNNING
    # (The thread it left goes on with its gateway call; runworker's process
    # would exit here.)
    await abandoned_jobs_finish(worker)
    assert await orders_in(OrderStatus.PAID) == 1


async def test_a_failing_receive_is_retried_until_the_layer_is_back(tmp_path, sandbox, settings, user, caplog):
    need(redis_available(), "redis-server is not installed")
    settings.PAYMENT_GATEWAY_URL = sandbox.gateway_url()
    redis = RedisServer(tmp_path / "redis", port=free_port())  # not started yet: every receive fails
    layer = RedisChannelLayer(hosts=[_redis_host(redis.url) | {"socket_connect_timeout": 0.5}], prefix="down-test")
    worker = JobWorker(application=channel_router, channels=[PAYMENTS], channel_layer=layer, concurrency=2)
    caplog.set_level(logging.INFO, logger="jobs.worker")
    running = asyncio.create_task(worker.run())
    try:
        await until(lambda: _logged(caplog, "Receiving on 'payments' failed"), what="a failed receive")
        assert not running.done(), "the worker survives a layer that is down"
        await sync_to_async(redis.start)()
        [order] = await sync_to_async(place)(user, 1)
        await layer.send(PAYMENTS, {"type": "job.run", "job": order.job_id})
        await until(lambda: _all(OrderStatus.PAID, 1), what="the order paid once the layer is back")
        assert await _logged(caplog, "Receiving on 'payments' again")
    finally:
        worker.stop()
        await running
        await layer.flush()
        redis.stop()


async def _logged(caplog, text: str) -> bool:
    return any(text in record.getMessage() for record in caplog.records)


async def test_make_run_s_embedded_workers_start_with_the_first_connection(channel_layer, sandbox, settings, user):
    from project.asgi import application as router

    settings.PAYMENT_GATEWAY_URL = sandbox.gateway_url()
    server = EmbeddedWorkers(router)
    assert server.worker is None
    communicator = HttpCommunicator(server, "GET", "/accounts/login/", headers=[(b"host", b"localhost")])
    assert (await communicator.get_response())["status"] == 200
    assert server.worker is not None and server.worker.channels == list(channel_router.application_mapping)
    # The layer the server's requests send to is the one its workers read.
    assert server.worker.channel_layer is get_channel_layer()
    await sync_to_async(place)(user, 2)
    await until(lambda: _all(OrderStatus.PAID, 2), what="both orders paid by the embedded workers")
    assert await server.stop() == 0


# A job id no row has: each message naming it costs the consumer one claim attempt.
NO_SUCH_JOB = 2**62


async def _feed(layer, payment_jobs: list[int], enough: asyncio.Event) -> None:
    """Keep job.run messages flowing on the payments, emails and books channels until ``enough`` is set.

    Payment jobs go to their channel (the first delivery pays, later ones are
    repeated deliveries); the other channels get messages naming no job.
    Paced near what the worker handles, so that listeners sometimes find a
    backlog and sometimes wait in a blocking receive: a stop must win in both.
    Told to end by an event, not cancelled: a cancel that lands as a send
    completes is the very one Python 3.11 loses.
    """
    while not enough.is_set():
        for job_id in payment_jobs:
            for channel, named in ((PAYMENTS, job_id), (EMAILS, NO_SUCH_JOB), (BOOKS, NO_SUCH_JOB)):
                try:
                    await layer.send(channel, job_message(named))
                except ChannelFull:
                    await asyncio.sleep(0.05)
            await asyncio.sleep(random.uniform(0, 0.03))
            if enough.is_set():
                return


def _receives_in_progress(layer) -> list[asyncio.Task]:
    """Tasks still inside a receive on ``layer``."""
    def receiving(task: asyncio.Task) -> bool:
        coro = task.get_coro()
        frame = getattr(coro, "cr_frame", None)
        return getattr(coro, "__name__", "") == "receive" and frame is not None and frame.f_locals.get("self") is layer

    return [task for task in asyncio.all_tasks() if not task.done() and receiving(task)]


async def test_a_stop_always_wins_however_often_and_whenever_it_comes(redis_server, sandbox, settings, user, caplog):
    # 100 stops of a worker on a real Redis while messages stream in: some
    # while its listeners sit in a blocking receive, some as a receive
    # completes, some with jobs in flight.  The connections have a
    # socket_timeout, as in production, so redis-py sends through
    # asyncio.wait_for, which on Python 3.11 can swallow a cancel.  Every
    # time the worker returns having finished what it took, no listener
    # outlives the stop, and no receive of its own goes on taking messages.
    settings.PAYMENT_GATEWAY_URL = sandbox.gateway_url(latency_ms=20)
    caplog.set_level(logging.INFO, logger="jobs.worker")
    layer = RedisChannelLayer(hosts=[_redis_host(redis_server.url)], prefix=f"stop-test-{uuid.uuid4().hex[:8]}")
    orders = await sync_to_async(place)(user, 40)
    enough = asyncio.Event()
    feeding = asyncio.create_task(_feed(layer, [order.job_id for order in orders], enough))
    grace = 30
    processed = 0
    try:
        for attempt_number in range(100):
            worker = JobWorker(application=channel_router, channels=[PAYMENTS, EMAILS, BOOKS], channel_layer=layer,
                               concurrency=6, grace=grace)
            running = asyncio.create_task(worker.run())
            await asyncio.sleep(random.uniform(0, 0.1))
            worker.stop()
            # The drain alone may take the grace; anything past it is a stop lost.
            async with asyncio.timeout(grace):
                assert await running == 0, f"stop #{attempt_number} left work unfinished"
            assert not _receives_in_progress(layer), f"stop #{attempt_number}: a receive outlived its worker"
            processed += worker.processed
        assert not await _logged(caplog, "did not stop within"), "every listener stopped when asked"
        # The load was real: the stopped workers handled messages between stops.
        assert processed >= 100, processed
        # Whatever the stops interrupted is paid by the next worker, once.
        worker, running = start_payments_worker(layer, concurrency=4)
        await until(lambda: _all(OrderStatus.PAID, len(orders)), what="every order paid")
        worker.stop()
        async with asyncio.timeout(grace):
            assert await running == 0
    finally:
        enough.set()
        async with asyncio.timeout(30):
            await feeding
        await layer.flush()
    for order in orders:
        assert len(await sync_to_async(sales_of)(settings.PAYMENT_GATEWAY_URL, order.reference)) == 1, order.pk


async def test_a_second_stop_ends_the_drain_at_once(channel_layer, sandbox, settings, user):
    settings.PAYMENT_GATEWAY_URL = sandbox.gateway_url(latency_ms=2000)
    await sync_to_async(place)(user, 1)
    worker, running = start_payments_worker(channel_layer, concurrency=2, grace=60)
    await until(lambda: _all(OrderStatus.PROCESSING, 1), what="the job in flight")
    worker.stop()
    worker.stop()  # the operator's second Ctrl-C
    async with asyncio.timeout(10):  # not the 60 s grace
        assert await running == 1
    await abandoned_jobs_finish(worker)
    assert await orders_in(OrderStatus.PAID) == 1


async def test_a_message_that_comes_with_the_stop_goes_back_to_its_channel(caplog):
    caplog.set_level(logging.INFO, logger="jobs.worker")
    layer = InMemoryChannelLayer()
    worker = JobWorker(application=channel_router, channels=[PAYMENTS], channel_layer=layer, concurrency=1)
    running = asyncio.create_task(worker.run())
    await until(lambda: _some(_receives_in_progress(layer)), what="the listener waiting in a receive")
    # In one step of the loop: the message reaches the waiting receive, and the stop comes.
    await layer.send(PAYMENTS, job_message(NO_SUCH_JOB))
    worker.stop()
    async with asyncio.timeout(10):
        assert await running == 0
    assert worker.processed == 0, "a stopped worker starts nothing new"
    assert await _logged(caplog, "Put back a message on 'payments' that came with the stop")
    async with asyncio.timeout(10):
        assert await layer.receive(PAYMENTS) == job_message(NO_SUCH_JOB), "the next worker gets it"


class LayerThatLosesACancel(InMemoryChannelLayer):
    """The in-memory layer, with a receive that goes on after the first cancel it gets.

    What a receive on Redis does when the cancel lands just as redis-py's
    ``asyncio.wait_for`` around a send completes (Python 3.11): the cancel
    is dropped and the receive goes on to its blocking pop.  Under load that
    is rare; here it is certain, once, while ``losing`` is set.
    """

    losing = True

    async def receive(self, channel):
        try:
            return await super().receive(channel)
        except asyncio.CancelledError:
            if not self.losing:
                raise
            self.losing = False
            asyncio.current_task().uncancel()
            return await super().receive(channel)


async def test_a_receive_that_loses_its_cancel_still_ends_with_the_stop(caplog):
    caplog.set_level(logging.INFO, logger="jobs.worker")
    layer = LayerThatLosesACancel()
    worker = JobWorker(application=channel_router, channels=[PAYMENTS], channel_layer=layer, concurrency=1)
    running = asyncio.create_task(worker.run())
    try:
        await until(lambda: _some(_receives_in_progress(layer)), what="the listener waiting in a receive")
        worker.stop()
        async with asyncio.timeout(10):
            assert await running == 0
        assert not _receives_in_progress(layer), "the receive ended with its worker"
        assert not await _logged(caplog, "did not stop within")
        # A message sent now waits for the next worker: the stopped one takes nothing.
        await layer.send(PAYMENTS, job_message(NO_SUCH_JOB))
        async with asyncio.timeout(10):
            assert await layer.receive(PAYMENTS) == job_message(NO_SUCH_JOB)
    finally:
        # A receive a failing worker left behind must end with the test's
        # loop, not hang it: the cancels it gets from here on land.
        layer.losing = False


async def _some(items: list) -> bool:
    return bool(items)
