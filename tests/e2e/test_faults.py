"""Nothing lost, nothing charged twice, whatever fails on the way.

Real daphne, real workers, a real redis-server per test.  Each test ends with
the same two checks: every order is final, and the sandbox ledger holds
exactly one sale per paid order.
"""

from __future__ import annotations

import signal
import subprocess
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from devtools.processes import PYTHON, ROOT
from devtools.stack import all_pages, order_statuses
from project.names import PAYMENTS
from tests.e2e.faults import assert_nothing_lost_nothing_twice, place_orders, wait_all_final

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300), pytest.mark.engine]


def test_worker_killed_mid_flight_then_requeue(make_stack):
    stack = make_stack({"SANDBOX_LATENCY_MS": "200"})
    token = stack.create_users("alice")["alice"]
    stack.start_web()
    worker = stack.start_worker("--concurrency", "10")
    ids = [o["id"] for o in place_orders(stack, token, 50)]
    # Kill it with work in flight: some paid, most not.
    stack.wait_until(lambda: sum(s == "paid" for s in order_statuses(stack, token).values()) >= 5,
                     timeout=60, what="a few payments")
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    assert sum(s == "paid" for s in order_statuses(stack, token).values()) < 50
    stack.start_worker("--concurrency", "10")
    # Jobs the dead worker held stay 'running' until requeue sees them stale.
    wait_all_final(stack, token, ids, timeout=120, requeue_every=3, older_than="3s")
    assert_nothing_lost_nothing_twice(stack, token, ids)


def test_redis_restarted_while_orders_are_in_flight(make_stack, private_redis):
    stack = make_stack({"SANDBOX_LATENCY_MS": "200"})
    token = stack.create_users("alice")["alice"]
    stack.start_web()
    worker = stack.start_worker("--concurrency", "5")
    ids = [o["id"] for o in place_orders(stack, token, 30)]
    # Redis keeps nothing on disk here: the queued messages die with it.
    private_redis.stop()
    ids += [o["id"] for o in place_orders(stack, token, 5)]  # accepted while Redis is down
    stack.wait_log(worker, "Receiving on 'payments' failed")  # the worker met the outage
    private_redis.start()
    ids += [o["id"] for o in place_orders(stack, token, 5)]
    wait_all_final(stack, token, ids, timeout=120, requeue_every=3, older_than="3s")
    assert_nothing_lost_nothing_twice(stack, token, ids)
    assert worker.poll() is None, "the worker rode out the restart"
    assert "Receiving on 'payments' again" in stack.log_of(worker)


def test_messages_expired_while_workers_were_down(make_stack):
    stack = make_stack()
    token = stack.create_users("alice")["alice"]
    # Only the web's messages get a short life; the recovery runs on defaults.
    stack.start_web(env={"CHANNEL_LAYER_EXPIRY": "2"})
    ids = [o["id"] for o in place_orders(stack, token, 10)]
    stack.wait_until(lambda: stack.waiting(PAYMENTS) == 0, timeout=30, what="the messages to expire")
    stack.start_worker()
    assert set(order_statuses(stack, token).values()) == {"pending"}, "nothing left to wake a worker"
    result = stack.manage("requeue", "--older-than", "1s")
    assert "requeued 10" in result.stdout
    wait_all_final(stack, token, ids, timeout=60)
    assert_nothing_lost_nothing_twice(stack, token, ids)


def test_channel_full_sends_fail_but_nothing_is_lost(make_stack):
    stack = make_stack({"CHANNEL_LAYER_CAPACITY": "5"})
    token = stack.create_users("alice")["alice"]
    web = stack.start_web()
    ids = [o["id"] for o in place_orders(stack, token, 20)]
    assert "stays pending for requeue" in stack.log_of(web)  # ChannelFull, logged, still 202
    stack.start_worker()
    wait_all_final(stack, token, ids, timeout=120, requeue_every=2, older_than="1s")
    assert_nothing_lost_nothing_twice(stack, token, ids)


def test_two_requeues_at_once_beside_a_live_worker(make_stack):
    stack = make_stack()
    token = stack.create_users("alice")["alice"]
    stack.start_web(env={"CHANNEL_LAYER_EXPIRY": "2"})
    ids = [o["id"] for o in place_orders(stack, token, 30)]
    # The messages expire: 30 stuck orders, untouched for an hour.  Aged by
    # hand, so a copy that starts seconds after the other (on a busy
    # machine) still sees the jobs the first one sent as fresh.
    stack.wait_until(lambda: stack.waiting(PAYMENTS) == 0, timeout=30, what="the messages to expire")
    stack.execute("UPDATE jobs_job SET updated_at = %s WHERE kind = 'payment'",
                  (datetime.now(timezone.utc) - timedelta(hours=1),))
    stack.start_worker("--concurrency", "10")
    copies = [
        subprocess.Popen([PYTHON, "manage.py", "requeue", "--older-than", "30m"], cwd=ROOT, env=stack.env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(2)
    ]
    outputs = [copy.communicate(timeout=60)[0] for copy in copies]
    assert all(copy.returncode == 0 for copy in copies), outputs
    requeued = [int(line.split()[1]) for out in outputs for line in out.splitlines() if line.startswith("requeued ")]
    assert sum(requeued) == 30, f"each stuck job sent by exactly one copy: {outputs}"
    wait_all_final(stack, token, ids, timeout=60)
    assert_nothing_lost_nothing_twice(stack, token, ids)
    api = stack.api(token)
    orders = [api.get(stack.url(f"/api/orders/{i}/")).json() for i in ids]
    attempts = [api.get(stack.url(f"/api/jobs/{o['job']}/")).json()["attempts"] for o in orders]
    assert attempts == [1] * 30, "no job was processed twice"


def test_flaky_gateway_every_order_still_paid_through_retries(make_stack):
    stack = make_stack({"SANDBOX_FAILURE_RATE": "0.3"})
    token = stack.create_users("alice")["alice"]
    stack.start_web()
    stack.start_worker("--concurrency", "10")
    ids = [o["id"] for o in place_orders(stack, token, 20)]
    wait_all_final(stack, token, ids, timeout=120)
    assert_nothing_lost_nothing_twice(stack, token, ids)
    api = stack.api(token)
    jobs = [api.get(stack.url(f"/api/jobs/{api.get(stack.url(f'/api/orders/{i}/')).json()['job']}/")).json()
            for i in ids]
    assert all(job["status"] == "ok" for job in jobs)
    assert any(job["attempts"] > 1 for job in jobs), "some sales failed and were retried"
    assert all(job["attempts"] >= 1 for job in jobs)


@pytest.mark.postgres
def test_database_connections_killed_mid_flight_heal_without_requeue(make_stack):
    # A failover, a restart, an idle-killer: every backend the stack holds is
    # terminated, three times, while payments run.  Nobody runs requeue: the
    # workers' pools must hand out only live connections, and the job
    # machinery must ride out the writes that met a dead one.
    stack = make_stack({"SANDBOX_LATENCY_MS": "100"}, engine="postgres")
    token = stack.create_users("alice")["alice"]
    stack.start_web()
    worker = stack.start_worker("--concurrency", "10")
    ids = [o["id"] for o in place_orders(stack, token, 70)]
    database = stack.env["DATABASE_URL"].rsplit("/", 1)[1]
    for round_number in range(3):
        stack.wait_until(lambda: sum(s == "paid" for s in order_statuses(stack, token).values()) >= 10 * (round_number + 1),
                         timeout=120, what=f"payments before kill #{round_number + 1}")
        stack.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      "WHERE datname = %s AND pid <> pg_backend_pid()", (database,))
    wait_all_final(stack, token, ids, timeout=180)
    assert_nothing_lost_nothing_twice(stack, token, ids)
    assert worker.poll() is None, "the worker rode out the lost connections"


def test_a_sale_that_lands_after_our_timeout_is_charged_once(make_stack):
    # Every sale reaches the gateway 3 s after it was sent, and our read
    # timeout is 1 s: the worker never hears a sale's answer, and retries
    # while the first sale is still on its way.  The retry's sale carries the
    # same idempotency key, so whichever lands second is answered with the
    # first; a later attempt finds the sale by the order's reference.
    stack = make_stack({"SANDBOX_SALE_DELAY_MS": "3000", "GATEWAY_READ_TIMEOUT": "1"})
    token = stack.create_users("alice")["alice"]
    stack.start_web()
    stack.start_worker("--concurrency", "5")
    ids = [o["id"] for o in place_orders(stack, token, 5)]
    wait_all_final(stack, token, ids, timeout=180)
    assert_nothing_lost_nothing_twice(stack, token, ids)
    sales = Counter(t["order_id"] for t in stack.ledger())
    orders = {o["id"]: o for o in all_pages(stack.api(token), stack.url("/api/orders/?page_size=500"))}
    assert {i: sales[orders[i]["reference"]] for i in ids} == dict.fromkeys(ids, 1), "one sale per order, ever"
    # The fault really happened: every job's first sale went unanswered.
    api = stack.api(token)
    attempts = [api.get(stack.url(f"/api/jobs/{orders[i]['job']}/")).json()["attempts"] for i in ids]
    assert all(n > 1 for n in attempts), attempts
