"""The ``payments`` channel: charge an order through the gateway."""

from __future__ import annotations

from django.conf import settings

from jobs.models import Job
from orders.exceptions import NonceSpentElsewhere, PaymentDeclined, PaymentNeedsReview, PaymentSoftDeclined
from orders.models import Order
from orders.services import JOB_KIND, payment_fail, payment_note_retry, payment_process, receipt_request

from consumers.base import JobConsumer


class PaymentConsumer(JobConsumer):
    kind = JOB_KIND

    def handle(self, job: Job) -> Order:
        return payment_process(job=job)

    def on_success(self, job: Job, order: Order) -> None:
        # In the same transaction as the job turning ok: the receipt job
        # exists exactly when the payment is recorded as done.  The payment's
        # own event is queued first, so the user hears "paid" before "receipt".
        super().on_success(job, order)
        receipt_request(order=order)

    def on_retry(self, job: Job, exc: BaseException, delay: float) -> None:
        payment_note_retry(order_id=job.subject_id, error=str(exc))
        super().on_retry(job, exc, delay)

    def on_failure(self, job: Job, exc: BaseException) -> None:
        payment_fail(order_id=job.subject_id, exc=exc)
        super().on_failure(job, exc)

    def max_attempts(self, exc: BaseException | None = None) -> int:
        # A soft decline or a spent nonce deserves a second look, rarely a tenth.
        if isinstance(exc, (PaymentSoftDeclined, NonceSpentElsewhere)):
            return settings.PAYMENT_DECLINE_ATTEMPTS
        return super().max_attempts(exc)

    def success_message(self, job: Job, order: Order) -> str:
        return f"Payment of {order.amount} paid (transaction {order.transaction_id})"

    def failure_message(self, job: Job, exc: BaseException) -> str:
        if isinstance(exc, (PaymentDeclined, PaymentSoftDeclined)):
            return f"Payment declined: {exc}"
        if isinstance(exc, PaymentNeedsReview):
            return f"Payment needs review: {exc}"
        return f"Payment failed: {exc}"
