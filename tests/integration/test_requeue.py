"""The requeue command: finds what never finished, sends it once, reports."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from jobs.models import Job, JobStatus
from jobs.requeue import requeue_stuck
from jobs.selectors import jobs_stuck
from orders.models import Order
from project.names import JOB_RUN, PAYMENTS
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


@pytest.fixture
def orders(user, channel_layer):
    made = [make_order(user) for _ in range(6)]
    received(channel_layer)  # the original sends after commit
    return made


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
    from jobs.requeue import _take

    assert not any(_take(job, timezone.now()) for job in stale)
    assert first.requeued == 6
    assert sorted(received(channel_layer)) == sorted(o.job_id for o in orders)


def test_unreachable_channel_layer_exits_non_zero(orders, settings):
    age(orders[0].job_id, 10)
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "project.layers.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": f"redis://127.0.0.1:{free_port()}/0", "socket_connect_timeout": 0.5}]},
        }
    }
    with pytest.raises(CommandError, match="could not be sent"):
        requeue("--older-than", "5m")


@pytest.mark.parametrize("bad", [["--older-than", "soon"], ["--limit", "-1"]])
def test_bad_arguments_are_clear_errors(bad):
    with pytest.raises(CommandError):
        requeue(*bad)


def test_the_scan_uses_the_partial_index_on_unfinished_jobs():
    now = timezone.now()
    sql, params = jobs_stuck(cutoff=now, now=now).query.sql_with_params()
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
        else:
            # An empty test table is cheapest to scan; ask whether the index
            # serves the query, which is what matters on a big table.
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute(f"EXPLAIN {sql}", params)
        plan = " ".join(str(row) for row in cursor.fetchall())
    assert "job_status_updated" in plan, plan
