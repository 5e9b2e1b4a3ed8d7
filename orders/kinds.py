"""The orders app's job kinds."""

from jobs.kinds import JobKind
from project.names import PAYMENTS

PAYMENT = JobKind(
    name="payment",
    channel=PAYMENTS,
    title="Order #{id}",
    max_attempts_setting="PAYMENT_MAX_ATTEMPTS",
    stuck_reasons="orders.requeue.payment_reasons",
    reopen="orders.services.payment_reopen",
    whole=True,
)
