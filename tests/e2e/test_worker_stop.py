"""runworker stopped by signals, again and again, while orders keep coming (issue #19, part 2).

Real processes: daphne (the API and the sandbox gateway, with latency), a
private Redis, and one ``manage.py runworker`` at a time on the payments
channel.  What only processes show is tested here: the signal handlers, the
exit status, and the process really ending.  The worker loop itself is
stopped a hundred times in-process in tests/integration/test_worker.py.
"""

from __future__ import annotations

import random
import re
import signal
import threading
import time
from datetime import datetime, timezone

import pytest

from devtools.sandbox import simulate_path
from devtools.stack import all_pages, order_statuses
from jobs.worker import LISTENER_STOP_TIMEOUT
from orders.kinds import PAYMENT as PAYMENT_KIND

PAYMENT = PAYMENT_KIND.name
from project.names import PAYMENTS
from tests.e2e.faults import assert_nothing_lost_nothing_twice, place_orders, wait_all_final

pytestmark = [pytest.mark.e2e, pytest.mark.engine, pytest.mark.timeout(600)]

CYCLES = 20
# Short: a stop that waited for anything but its own few in-flight payments would show.
GRACE = 3.0
# How long a stopped worker may take to exit: its grace, the listeners' bound
# and a wide margin for a machine shared with other test runs.  A stop that
# was lost never exits at all.
EXIT_BOUND = GRACE + LISTENER_STOP_TIMEOUT + 30


def payment_jobs(stack, token) -> list[dict]:
    return all_pages(stack.api(token), stack.url(f"/api/jobs/?kind={PAYMENT}&page_size=500"))


def claimed_since(jobs: list[dict], moment: datetime) -> list[int]:
    """The jobs whose last claim was at or after ``moment`` (a claim stamps ``last_attempt_at``)."""
    return [job["id"] for job in jobs
            if job["last_attempt_at"] and datetime.fromisoformat(job["last_attempt_at"]) >= moment]


def in_flight_at_stop(log: str) -> int:
    """How many messages the worker said it had in flight when the stop reached it."""
    found = re.findall(r"Worker stopping: .* for (\d+) in flight", log)
    assert len(found) == 1, f"one 'Worker stopping' line, not {len(found)}:\n{log[-3000:]}"
    return int(found[0])


class OrderStream:
    """Places orders through the API from a thread, at an uneven pace, until stopped."""

    def __init__(self, stack, token: str):
        self.stack, self.token = stack, token
        self.ids: list[int] = []
        self.errors: list[BaseException] = []
        self._enough = threading.Event()
        self._thread = threading.Thread(target=self._run, name="order-stream", daemon=True)

    def _run(self) -> None:
        try:
            while not self._enough.is_set():
                self.ids += [order["id"] for order in place_orders(self.stack, self.token, 1)]
                self._enough.wait(random.uniform(0, 0.8))
        except BaseException as exc:  # reported by stop(): a thread's exception would vanish
            self.errors.append(exc)

    def __enter__(self) -> "OrderStream":
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._enough.set()
        self._thread.join(60)
        assert not self._thread.is_alive(), "the order stream ended"
        assert not self.errors, f"placing orders failed: {self.errors[0]!r}"


def test_twenty_sigterms_under_load_each_exit_zero_and_take_nothing_new(make_stack):
    # Each gateway call takes 100 ms, so a payment takes a few tenths of a
    # second, and orders come a little slower than a worker pays them: a
    # stop finds the backlog of the gap between workers, jobs in flight, or
    # listeners waiting in a blocking receive as an order comes, at random.
    stack = make_stack({"SANDBOX_LATENCY_MS": "100", "CHANNEL_LAYER_EXPIRY": "900"})
    token = stack.create_users("alice")["alice"]
    stack.start_web()
    with OrderStream(stack, token) as stream:
        for cycle in range(CYCLES):
            worker = stack.start_worker("--only-channels", PAYMENTS, "--concurrency", "4", "--grace", str(GRACE))
            time.sleep(random.uniform(0, 2))
            stopped_at = datetime.now(timezone.utc)
            returncode = stack.stop(worker, signal.SIGTERM, timeout=EXIT_BOUND)
            log = stack.log_of(worker)
            assert returncode == 0, f"SIGTERM #{cycle}: exit status {returncode}\n{log[-3000:]}"
            assert "stopped after" in log, f"SIGTERM #{cycle}: the worker said how it stopped\n{log[-3000:]}"
            assert "did not stop within" not in log, f"SIGTERM #{cycle}: every listener stopped\n{log[-3000:]}"
            # No worker runs until the next cycle's, so every claim since the
            # signal is this one's, and it may only finish what it had: what
            # it received before it was stopping.
            since = claimed_since(payment_jobs(stack, token), stopped_at)
            had = in_flight_at_stop(log)
            assert len(since) <= had, f"SIGTERM #{cycle}: claimed {since} after the signal, {had} in flight\n{log[-3000:]}"
    ids = stream.ids
    assert len(ids) >= CYCLES, "orders kept coming"
    # The load was real: the stopped workers paid orders between signals.
    assert "paid" in order_statuses(stack, token).values()
    # A last worker and requeue finish whatever the stops left, each order once.
    stack.start_worker("--only-channels", PAYMENTS, "--concurrency", "8")
    wait_all_final(stack, token, ids, timeout=240, requeue_every=3, older_than="3s")
    assert_nothing_lost_nothing_twice(stack, token, ids)


@pytest.mark.parametrize("second", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_second_signal_during_a_long_drain_forces_the_exit_and_says_so(make_stack, second):
    stack = make_stack()
    token = stack.create_users("alice")["alice"]
    stack.start_web()
    # Each gateway call takes 15 s, so one payment alone would hold the drain
    # for half a minute or more; the grace would hold it for two.
    slow = stack.url("/sandbox/" + simulate_path(latency_ms=15_000) + "gateway/")
    worker = stack.start_worker("--only-channels", PAYMENTS, "--concurrency", "2", "--grace", "120",
                                env={"PAYMENT_GATEWAY_URL": slow})
    [order] = place_orders(stack, token, 1)
    stack.wait_until(lambda: order_statuses(stack, token)[order["id"]] == "processing", timeout=30,
                     what="the payment in flight")
    worker.send_signal(signal.SIGTERM)
    stack.wait_log(worker, "Worker stopping", timeout=30)
    # Exiting within the bound with the job unfinished can only be the second
    # signal's doing: the grace has not run out, and the job was not done.
    assert stack.stop(worker, second, timeout=60) == 0
    log = stack.log_of(worker)
    assert "Worker asked to stop again: exiting now" in log
    assert "1 left for requeue" in log
    # Its job stays recoverable: requeue and a fast worker pay it, once.
    stack.start_worker("--only-channels", PAYMENTS)
    wait_all_final(stack, token, [order["id"]], timeout=120, requeue_every=3, older_than="3s")
    assert_nothing_lost_nothing_twice(stack, token, [order["id"]])
