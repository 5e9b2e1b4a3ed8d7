"""runworker pools, real concurrency, idling and graceful shutdown."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest
import requests

from devtools.processes import PYTHON, ROOT, free_port, wait_for_port
from devtools.sandbox import simulate_path
from devtools.stack import order_statuses
from project import names
from tests.e2e.faults import assert_nothing_lost_nothing_twice, place_orders, wait_all_final
from orders.tasks import send_receipt

RECEIPT = send_receipt.module_path

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(400)]


def job_of(stack, token, kind: str, order_id: int) -> dict | None:
    for job in stack.api(token).get(stack.url("/api/jobs/?page_size=500")).json()["results"]:
        if job["kind"] == kind and job["subject"]["id"] == str(order_id):
            return job
    return None


def test_only_channels_consumes_only_its_channels_and_exclude_takes_the_rest(make_stack):
    stack = make_stack()
    token = stack.create_users("alice")["alice"]
    stack.start_web()
    payments = stack.start_worker("--only-channels", names.PAYMENTS)
    [order] = place_orders(stack, token, 1)
    wait_all_final(stack, token, [order["id"]], timeout=30)
    # The receipt job waits on the emails channel, which nobody consumes yet.
    stack.wait_until(lambda: stack.waiting(names.EMAILS) == 1, timeout=10, what="the receipt's message")
    assert job_of(stack, token, RECEIPT, order["id"])["status"] == "pending"
    rest = stack.start_worker("--exclude-channels", names.PAYMENTS)
    stack.wait_until(lambda: job_of(stack, token, RECEIPT, order["id"])["status"] == "ok",
                     timeout=30, what="the receipt")
    assert f"consuming {names.PAYMENTS} with" in stack.log_of(payments)
    assert f"consuming {names.BOOKS}, {names.BOOK_BATCHES}, {names.TASKS}, {names.EMAILS} with" in stack.log_of(rest)


def test_unknown_channel_name_fails_and_lists_the_known_ones(make_stack):
    stack = make_stack()
    result = stack.manage("runworker", "--only-channels", "paymnets", check=False)
    assert result.returncode != 0
    assert "Unknown channel(s): paymnets" in result.stderr
    assert f"Known channels: {names.PAYMENTS}, {names.BOOKS}, {names.BOOK_BATCHES}, {names.TASKS}, {names.EMAILS}" in result.stderr


@pytest.mark.engine
def test_sigterm_finishes_in_flight_jobs_and_exits_zero(make_stack):
    stack = make_stack({"SANDBOX_LATENCY_MS": "300"})
    token = stack.create_users("alice")["alice"]
    stack.start_web()
    worker = stack.start_worker("--only-channels", names.PAYMENTS, "--concurrency", "10", "--grace", "30")
    ids = [o["id"] for o in place_orders(stack, token, 30)]
    stack.wait_until(lambda: "processing" in order_statuses(stack, token).values(), timeout=30, what="work in flight")
    assert stack.stop(worker, signal.SIGTERM) == 0
    log = stack.log_of(worker)
    assert "Worker stopping" in log and "0 left for requeue" in log
    statuses = order_statuses(stack, token)
    assert "processing" not in statuses.values(), "in-flight jobs finished before exit"
    # What it never started is still queued; a new worker and requeue finish it.
    stack.start_worker("--only-channels", names.PAYMENTS)
    wait_all_final(stack, token, ids, timeout=120, requeue_every=3, older_than="3s")
    assert_nothing_lost_nothing_twice(stack, token, ids)


@pytest.mark.engine
def test_sigterm_past_the_grace_period_leaves_jobs_recoverable(make_stack):
    stack = make_stack()
    token = stack.create_users("alice")["alice"]
    stack.start_web()
    # This worker's gateway takes 3 s a call; the one that recovers its jobs, none.
    slow = stack.url("/sandbox/" + simulate_path(latency_ms=3000) + "gateway/")
    worker = stack.start_worker("--only-channels", names.PAYMENTS, "--concurrency", "5", "--grace", "0.5",
                                env={"PAYMENT_GATEWAY_URL": slow})
    ids = [o["id"] for o in place_orders(stack, token, 5)]
    stack.wait_until(lambda: list(order_statuses(stack, token).values()).count("processing") == 5,
                     timeout=30, what="all five in flight")
    assert stack.stop(worker, signal.SIGTERM) == 0
    assert "5 left for requeue" in stack.log_of(worker)
    stack.start_worker("--only-channels", names.PAYMENTS)
    wait_all_final(stack, token, ids, timeout=120, requeue_every=3, older_than="3s")
    assert_nothing_lost_nothing_twice(stack, token, ids)


def _pay_through_one_worker(stack, token, count: int, concurrency: int) -> dict:
    """Place ``count`` orders, let one worker at ``concurrency`` pay them all; the gateway's traffic."""
    stack.sandbox_stats(reset=True)
    ids = [o["id"] for o in place_orders(stack, token, count)]
    worker = stack.start_worker("--only-channels", names.PAYMENTS, "--concurrency", str(concurrency))
    wait_all_final(stack, token, ids, timeout=120, interval=1)
    assert stack.stop(worker) == 0
    assert_nothing_lost_nothing_twice(stack, token, ids)
    return stack.sandbox_stats()["gateway"]


@pytest.mark.engine
def test_concurrency_20_holds_20_gateway_calls_at_once_and_concurrency_1_never_two(make_stack):
    # Proved by structure, not by a stopwatch: the sandbox counts how many
    # calls it held at once.  Each call takes 400 ms, so jobs running side by
    # side overlap there whatever else the machine is doing.  (The speed-up
    # itself is measured by the bench, scenario 3.)
    stack = make_stack({"SANDBOX_LATENCY_MS": "400", "CHANNEL_LAYER_EXPIRY": "900"})
    token = stack.create_users("alice")["alice"]
    stack.start_web()
    parallel = _pay_through_one_worker(stack, token, 20, concurrency=20)
    assert parallel["requests"] >= 20 * 3
    assert parallel["peak_in_flight"] >= 15, parallel
    serial = _pay_through_one_worker(stack, token, 3, concurrency=1)
    assert serial["requests"] >= 3 * 3
    assert serial["peak_in_flight"] == 1, serial


def test_procfile_starts_a_working_system_under_honcho(make_stack):
    stack = make_stack()
    token = stack.create_users("alice")["alice"]
    procfile = (ROOT / "Procfile").read_text()
    assert f"--only-channels {names.PAYMENTS}" in procfile
    assert f"--exclude-channels {names.PAYMENTS}" in procfile
    port = free_port()
    honcho = subprocess.Popen(
        [os.path.join(os.path.dirname(PYTHON), "honcho"), "start", "-f", str(ROOT / "Procfile")],
        cwd=ROOT, env=stack.env | {"PORT": str(port), "PAYMENT_GATEWAY_URL": f"http://127.0.0.1:{port}/sandbox/gateway/",
                                   "PATH": os.path.dirname(PYTHON) + os.pathsep + os.environ["PATH"]},
        stdout=open(stack.workdir / "honcho.log", "wb"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        wait_for_port(port, timeout=30, proc=honcho)
        stack.web_ports.append(port)
        # Honcho has no readiness check: wait until both pools say they consume.
        stack.wait_until(lambda: (stack.workdir / "honcho.log").read_text().count("consuming") >= 2,
                         timeout=30, what="both worker pools")
        response = requests.post(stack.url("/api/orders/"), json={"amount": "9.99", "nonce": "fake-valid-nonce"},
                                 headers={"Authorization": f"Token {token}"}, timeout=10)
        assert response.status_code == 202
        order_id = response.json()["id"]
        wait_all_final(stack, token, [order_id], timeout=30)
        stack.wait_until(lambda: (job_of(stack, token, RECEIPT, order_id) or {}).get("status") == "ok",
                         timeout=30, what="the receipt from the default pool")
        assert_nothing_lost_nothing_twice(stack, token, [order_id])
    finally:
        os.killpg(honcho.pid, signal.SIGTERM)
        honcho.wait(60)
    log = (stack.workdir / "honcho.log").read_text()
    assert "consuming payments with concurrency 20" in log
    assert f"consuming {names.BOOKS}, {names.BOOK_BATCHES}, {names.TASKS}, {names.EMAILS} with concurrency" in log
