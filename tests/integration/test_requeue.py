"""The requeue command: finds what never finished, sends it once, reports."""

from __future__ import annotations

import socket
import uuid
from datetime import timedelta
from io import StringIO

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from books.services import books_register
from jobs.models import Job, JobStatus
from jobs.requeue import BATCH, _hand_back, _take, requeue_stuck
from jobs.selectors import jobs_overdue, jobs_stuck
from jobs.services import job_claim
from orders.models import Order
from project.names import BOOK_BATCHES, BOOKS, JOB_RUN, PAYMENTS
from project.settings import _redis_host
from tests.channels import IN_MEMORY_EVENTS
from tests.channels import received as waiting
from tests.factories import make_order
from devtools.processes import free_port

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.engine]


def age(job_id: int, minutes: float, **fields) -> None:
    Job.objects.filter(pk=job_id).update(updated_at=timezone.now() - timedelta(minutes=minutes), **fields)


def received(layer) -> list[int]:
    """The ids of the job messages waiting on the payments channel now."""
    messages = waiting(layer, PAYMENTS)
    assert all(message["type"] == JOB_RUN for message in messages)
    return [message["job"] for message in messages]


def requeue(*args: str) -> str:
    out = StringIO()
    call_command("requeue", *args, stdout=out)
    return out.getvalue()


def requeue_failing(*args: str) -> tuple[str, str]:
    """A run that must exit non-zero: its output, and the error it exits with."""
    out = StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("requeue", *args, stdout=out)
    return out.getvalue(), str(caught.value)


def due_state(job_ids: list[int]) -> dict[int, tuple]:
    """What decides whether requeue finds a job: its status and times."""
    return {job.pk: (job.status, job.updated_at, job.next_attempt_at) for job in Job.objects.filter(pk__in=job_ids)}


@pytest.fixture
def channel_layer(redis_server, settings):
    """The product's Redis layer on a real server: the command refuses an in-memory one,
    which no worker of another process could read."""
    settings.CHANNEL_LAYERS = {
        **IN_MEMORY_EVENTS,
        "default": {
            "BACKEND": "project.layers.RedisChannelLayer",
            "CONFIG": {"hosts": [_redis_host(redis_server.url)], "prefix": f"requeue-{uuid.uuid4().hex[:8]}-"},
        }
    }
    layer = get_channel_layer()
    yield layer
    async_to_sync(layer.flush)()


@pytest.fixture
def orders(user, channel_layer):
    made = [make_order(user) for _ in range(6)]
    received(channel_layer)  # the original sends after commit
    return made


def test_the_command_refuses_an_in_memory_layer_that_no_worker_could_read(user, settings):
    settings.CHANNEL_LAYERS = {**IN_MEMORY_EVENTS, "default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    with pytest.raises(CommandError, match="in-memory .* the server requeues stuck work itself"):
        call_command("requeue", stdout=StringIO())


def test_finds_each_kind_of_stuck_record_and_sends_it_once(orders, channel_layer):
    never_started, dead_worker, retry_due, retry_later, fresh, done = orders
    age(never_started.job_id, 10)
    age(dead_worker.job_id, 10, status=JobStatus.RUNNING, attempts=1)
    Order.objects.filter(pk=dead_worker.pk).update(transaction_id="abc123", status="processing")
    age(retry_due.job_id, 10, status=JobStatus.RETRYING, next_attempt_at=timezone.now() - timedelta(seconds=1))
    age(retry_later.job_id, 10, status=JobStatus.RETRYING, next_attempt_at=timezone.now() + timedelta(hours=1))
    age(done.job_id, 10, status=JobStatus.OK)

    output = requeue("--older-than", "5m")

    assert sorted(received(channel_layer)) == sorted([never_started.job_id, dead_worker.job_id, retry_due.job_id])
    assert "found 3" in output and "requeued 3" in output and "skipped 0" in output
    assert "order with a nonce but no transaction id: never started" in output
    assert "order with a transaction id but no final result: left running by a dead worker" in output
    assert "retry due" in output
    # The dead worker's job can be claimed again; the others keep their state.
    assert Job.objects.get(pk=dead_worker.job_id).status == JobStatus.RETRYING
    assert Job.objects.get(pk=fresh.job_id).status == JobStatus.PENDING
    # Touched: a second run right after finds nothing.
    assert "found 0" in requeue("--older-than", "5m")
    assert received(channel_layer) == []


def test_dry_run_lists_and_changes_nothing(orders, channel_layer):
    age(orders[0].job_id, 10)
    before = Job.objects.get(pk=orders[0].job_id).updated_at
    output = requeue("--older-than", "5m", "--dry-run")
    assert f"would requeue job {orders[0].job_id} on payments" in output
    assert "would requeue 1" in output
    assert received(channel_layer) == []
    assert Job.objects.get(pk=orders[0].job_id).updated_at == before


def test_limit_caps_the_requeued_and_reports_the_rest(orders, channel_layer):
    for order in orders:
        age(order.job_id, 10)
    output = requeue("--older-than", "5m", "--limit", "2")
    assert len(received(channel_layer)) == 2
    assert "found 6" in output and "requeued 2" in output and "4 over --limit" in output


def test_two_copies_never_send_the_same_job_twice(orders, channel_layer):
    for order in orders:
        age(order.job_id, 10)
    stale = list(jobs_stuck(cutoff=timezone.now() - timedelta(minutes=5), now=timezone.now()))
    first = requeue_stuck(older_than=timedelta(minutes=5))
    # The second copy read the same rows before the first touched them.
    assert not any(_take(job, timezone.now()) for job in stale)
    assert first.requeued == 6
    assert sorted(received(channel_layer)) == sorted(o.job_id for o in orders)


def test_unreachable_channel_layer_exits_non_zero_and_leaves_the_job_due(orders, settings):
    age(orders[0].job_id, 10)
    before = due_state([orders[0].job_id])
    settings.CHANNEL_LAYERS = {
        **IN_MEMORY_EVENTS,
        "default": {
            "BACKEND": "project.layers.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": f"redis://127.0.0.1:{free_port()}/0", "socket_connect_timeout": 0.5}]},
        }
    }
    with pytest.raises(CommandError, match="could not be sent") as caught:
        requeue("--older-than", "5m")
    assert "the channel layer (Redis) is unreachable for 'payments': 1 job(s) left due" in str(caught.value)
    assert "full" not in str(caught.value)
    assert due_state([orders[0].job_id]) == before, "handed back as it was: the next run finds it"


def test_a_layer_that_never_answers_is_named_as_a_timeout_and_leaves_the_job_due(orders, settings):
    age(orders[0].job_id, 10)
    before = due_state([orders[0].job_id])
    # Listening, never accepting: the connection opens and no answer ever comes.
    silent = socket.create_server(("127.0.0.1", 0))
    settings.JOBS_SEND_TIMEOUT = 0.5
    settings.CHANNEL_LAYERS = {
        **IN_MEMORY_EVENTS,
        "default": {
            "BACKEND": "project.layers.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": f"redis://127.0.0.1:{silent.getsockname()[1]}/0"}]},
        }
    }
    try:
        output, error = requeue_failing("--older-than", "5m")
    finally:
        silent.close()
    assert "1 not sent, left due: channel layer timed out" in output
    assert error == ("1 job(s) could not be sent:\n  the channel layer did not answer sends to 'payments' within "
                     "JOBS_SEND_TIMEOUT (0.5s): 1 job(s) left due, they go out on the next run")
    assert due_state([orders[0].job_id]) == before


FULL_AT = 3


@pytest.fixture
def small_channels(redis_server, settings):
    """The product's Redis layer on a real server, each channel full at ``FULL_AT`` messages.

    Returns a function counting the messages waiting on a channel.
    """
    prefix = f"requeue-{uuid.uuid4().hex[:8]}-"
    settings.CHANNEL_LAYERS = {
        **IN_MEMORY_EVENTS,
        "default": {
            "BACKEND": "project.layers.RedisChannelLayer",
            "CONFIG": {"hosts": [_redis_host(redis_server.url)], "prefix": prefix, "capacity": FULL_AT,
                       "expiry": 600},
        }
    }
    client = redis_server.client()

    def waiting_on(channel: str) -> int:
        return client.zcard(prefix + channel)

    yield waiting_on
    async_to_sync(get_channel_layer().flush)()
    client.close()


def test_a_full_channel_gets_one_send_a_run_and_every_job_it_refused_stays_due(user, small_channels, redis_server):
    # More than one batch of the scan, placed while the channel fills up.
    jobs = [make_order(user).job_id for _ in range(BATCH + 5)]
    assert small_channels(PAYMENTS) == FULL_AT
    Job.objects.filter(pk__in=jobs).update(updated_at=timezone.now() - timedelta(minutes=10))
    # First in the scan, so taken before the refusal: handed back as they were.
    age(jobs[0], 20, status=JobStatus.RUNNING, attempts=1)
    age(jobs[1], 20, status=JobStatus.RETRYING, next_attempt_at=timezone.now() - timedelta(seconds=1))
    before = due_state(jobs)
    redis_server.reset_calls()

    output, error = requeue_failing("--older-than", "5m")

    # channels-redis counts the channel (ZCOUNT) before each send: the first
    # one is refused and nothing more goes to it, in this batch or the next.
    assert redis_server.calls("zcount") == 1
    assert f"found {len(jobs)}" in output and "requeued 0" in output
    assert f"{len(jobs)} not sent, left due: channel full" in output
    assert error == (f"{len(jobs)} job(s) could not be sent:\n  channel 'payments' is full (capacity {FULL_AT}): "
                     f"{len(jobs)} job(s) left due, they go out on the next run once workers drain it")
    assert due_state(jobs) == before
    # Due at once: a second run with the same --older-than finds every one again.
    output, _ = requeue_failing("--older-than", "5m")
    assert f"found {len(jobs)}" in output and f"{len(jobs)} not sent, left due: channel full" in output


def test_other_channels_still_get_their_sends_beside_a_full_one(user, small_channels):
    payments = [make_order(user).job_id for _ in range(FULL_AT + 2)]
    registration = books_register(user=user, values=["9780000000026", "9780451524935"])
    books = [registration.batch.job_id, *(book.job_id for _, book in registration.accepted)]
    async_to_sync(get_channel_layer().flush)()  # what creation sent; the full channel is filled again below
    for _ in range(FULL_AT):
        async_to_sync(get_channel_layer().send)(PAYMENTS, {"type": JOB_RUN, "job": payments[0]})
    # The payments first in the scan: their channel refuses before the books are sent.
    Job.objects.filter(pk__in=payments).update(updated_at=timezone.now() - timedelta(minutes=20))
    Job.objects.filter(pk__in=books).update(updated_at=timezone.now() - timedelta(minutes=10))

    output, error = requeue_failing("--older-than", "5m")

    assert (small_channels(BOOKS), small_channels(BOOK_BATCHES), small_channels(PAYMENTS)) == (2, 1, FULL_AT)
    assert "found 8" in output and "requeued 3" in output and "5 not sent, left due: channel full" in output
    assert error.endswith(f"channel 'payments' is full (capacity {FULL_AT}): 5 job(s) left due, "
                          "they go out on the next run once workers drain it")
    # Only the payments are still due.
    assert "found 5" in requeue_failing("--older-than", "5m")[0]


def test_a_worker_that_claimed_the_job_meanwhile_keeps_it(orders, channel_layer):
    age(orders[0].job_id, 10)
    now = timezone.now()
    [stale] = jobs_stuck(cutoff=now - timedelta(minutes=5), now=now)
    assert _take(stale, now)
    # An older message reached a worker between the take and the failed send.
    assert job_claim(job_id=stale.pk) is not None
    _hand_back([stale], now)
    job = Job.objects.get(pk=stale.pk)
    assert (job.status, job.attempts) == (JobStatus.RUNNING, 1)
    assert job.updated_at > stale.updated_at


@pytest.mark.parametrize("bad", [["--older-than", "soon"], ["--limit", "-1"]])
def test_bad_arguments_are_clear_errors(bad):
    with pytest.raises(CommandError):
        requeue(*bad)


@pytest.mark.parametrize("scan, index", [
    (lambda now: jobs_stuck(cutoff=now, now=now), "job_status_updated"),
    (lambda now: jobs_overdue(now=now), "job_status_due"),
], ids=["stuck", "overdue"])
def test_the_scan_uses_the_partial_index_on_unfinished_jobs(scan, index):
    now = timezone.now()
    sql, params = scan(now).query.sql_with_params()
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
        else:
            # An empty test table is cheapest to scan; ask whether the index
            # serves the query, which is what matters on a big table.
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute(f"EXPLAIN {sql}", params)
        plan = " ".join(str(row) for row in cursor.fetchall())
    assert index in plan, plan
