"""What a job's user hears: ``jobs.events`` from a job's thread to the events layer."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync, sync_to_async

from jobs import events
from jobs.services import job_claim, job_fail, job_progress, job_schedule_retry, job_succeed
from project.names import user_group
from tests.channels import drain, received
from tests.factories import make_order

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


@pytest.fixture
async def heard(events_layer, user, serving_loop):
    """The events the user's sockets get, read until quiet."""
    listener = await events_layer.new_channel()
    await events_layer.group_add(user_group(user.pk), listener)

    async def read() -> list[tuple[str, int, str]]:
        return [(e["job"]["status"], e["job"]["progress"], e["message"]) for e in await drain(events_layer, listener)]

    return read


async def in_a_job_thread(work) -> None:
    """Run ``work`` the way the worker runs a job: in a thread, its (serving) loop waiting."""
    await sync_to_async(work, thread_sensitive=False)()


async def claimed(user):
    order = await sync_to_async(make_order)(user)
    return await sync_to_async(job_claim)(job_id=order.job_id)


async def test_a_running_jobs_burst_of_updates_reaches_the_user_as_its_newest(heard, user, settings):
    settings.JOBS_EVENT_HOLD = 30
    settings.JOBS_EVENT_INTERVAL = 60
    order = await sync_to_async(make_order)(user)
    assert [status for status, _, _ in await heard()] == ["pending"]  # queued goes out at once
    job = None

    def work():
        nonlocal job
        job = job_claim(job_id=order.job_id)
        for percent in range(1, 51):
            job_progress(job=job, progress=percent, message=f"{percent} done")

    await in_a_job_thread(work)
    assert await heard() == []  # held...
    await events.flush()  # ...until due, or until the worker stops, as here
    assert await heard() == [("running", 50, "50 done")]
    # Within the interval, the next updates wait and coalesce too...
    await in_a_job_thread(lambda: job_progress(job=job, progress=70, message="70 done"))
    assert await heard() == []
    # ...until the job ends: its end goes out at once, and replaces them.
    await in_a_job_thread(lambda: job_succeed(job=job, message="All done"))
    assert await heard() == [("ok", 100, "All done")]


async def test_a_job_that_ends_within_the_hold_is_heard_only_at_its_end(heard, user, settings):
    settings.JOBS_EVENT_HOLD = 30
    job = await claimed(user)
    await heard()

    def work():
        job_progress(job=job, progress=10, message="Starting")
        job_fail(job=job, error="boom", message="It failed")

    await in_a_job_thread(work)
    assert await heard() == [("failed", 10, "It failed")]


async def test_a_retry_goes_out_at_once_it_leaves_this_process(heard, user, settings):
    settings.JOBS_EVENT_HOLD = 30
    job = await claimed(user)
    await heard()

    await in_a_job_thread(lambda: job_schedule_retry(job=job, error="503", message="Trying again in 5s", delay=5))
    assert await heard() == [("retrying", 0, "Trying again in 5s")]


async def test_a_loop_that_ends_with_its_work_sends_each_event_at_once(events_layer, user, settings):
    # asyncio.run in a script: nothing is held on a loop that would drop it.
    settings.JOBS_EVENT_HOLD = 30
    order = await sync_to_async(make_order)(user)
    await events_layer.group_add(user_group(user.pk), "listener")
    await sync_to_async(job_claim, thread_sensitive=False)(job_id=order.job_id)
    assert [e["job"]["status"] for e in await drain(events_layer, "listener")] == ["running"]


async def test_events_of_many_jobs_keep_their_order(heard, user, settings):
    settings.JOBS_EVENT_HOLD = 30
    jobs = [await claimed(user) for _ in range(5)]
    await heard()

    def work():
        for job in jobs:
            job_succeed(job=job, message=f"job {job.pk} done")

    await in_a_job_thread(work)
    assert [message for _, _, message in await heard()] == [f"job {job.pk} done" for job in jobs]


def test_without_an_event_loop_each_event_goes_out_as_it_comes(events_layer, user, settings):
    # A management command (requeue) has no loop to hold events on.
    settings.JOBS_EVENT_HOLD = 30
    order = make_order(user)
    async_to_sync(events_layer.group_add)(user_group(user.pk), "listener")
    job_claim(job_id=order.job_id)
    assert [e["job"]["status"] for e in received(events_layer, "listener")] == ["running"]
