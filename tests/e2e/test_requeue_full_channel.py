"""``requeue`` against a full channel: it stops at the first refusal, says why, and hides nothing.

Issue #19: requeue marked each job as taken before sending it, so a job a
full channel refused stayed hidden for another ``--older-than``; it went on
sending into the full channel message after message, and blamed Redis being
unreachable.  Real daphne, a real worker, a real redis-server and the pass's
database; the payments channel holds five messages.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from devtools.stack import order_statuses
from project.names import PAYMENTS
from tests.e2e.faults import FINAL, assert_nothing_lost_nothing_twice, place_orders, wait_all_final

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300), pytest.mark.engine]

CAPACITY = 5


def test_a_full_channel_leaves_every_job_due_and_requeue_says_it_is_full(make_stack, private_redis):
    # Messages outlive the slow steps of a busy machine: only the worker drains the channel.
    stack = make_stack({"CHANNEL_LAYER_CAPACITY": str(CAPACITY), "CHANNEL_LAYER_EXPIRY": "900"})
    token = stack.create_users("alice")["alice"]
    stack.start_web()
    # No worker yet: five messages fill the channel and the other five are refused.
    ids = [o["id"] for o in place_orders(stack, token, 2 * CAPACITY)]
    assert stack.waiting(PAYMENTS) == CAPACITY
    # All ten untouched for an hour, so a run with --older-than 30m finds them
    # however long each step takes here.
    stack.execute("UPDATE jobs_job SET updated_at = %s WHERE kind = 'payment'",
                  (datetime.now(timezone.utc) - timedelta(hours=1),))

    private_redis.reset_calls()
    first = stack.manage("requeue", "--older-than", "30m", check=False)

    assert first.returncode != 0, first.stdout
    assert "found 10" in first.stdout and "requeued 0" in first.stdout, first.stdout
    # Nothing hidden: a second run at once, with the same --older-than, finds every job again.
    second = stack.manage("requeue", "--older-than", "30m", check=False)
    assert second.returncode != 0 and "found 10" in second.stdout, second.stdout + second.stderr
    # channels-redis counts the channel (ZCOUNT) before each send: one send a run, refused.
    assert private_redis.calls("zcount") == 2, "the refusal stops the rest of the run's sends"
    for run in (first, second):
        assert "channel 'payments' is full (capacity 5): 10 job(s) left due" in run.stderr, run.stderr
        assert "reachable" not in run.stderr, "the layer answered: the cause is a full channel"

    # The worker drains the five waiting messages; the next run sends the five left, and they fit.
    stack.start_worker("--concurrency", "10")
    stack.wait_until(lambda: sum(s in FINAL for s in order_statuses(stack, token).values()) == CAPACITY,
                     timeout=60, what="the five queued orders to be final")
    third = stack.manage("requeue", "--older-than", "30m", check=False)
    assert third.returncode == 0, third.stdout + third.stderr
    assert "found 5" in third.stdout and "requeued 5" in third.stdout, third.stdout
    wait_all_final(stack, token, ids, timeout=60)
    assert_nothing_lost_nothing_twice(stack, token, ids)
