"""The ``payments`` channel: charge an order through the gateway.

The job's messages are what the payer reads, in plain words; its ``error``
and the order's keep the gateway's own, for developers and the admin.
"""

from __future__ import annotations

import re

from django.conf import settings

from integrations.exceptions import PermanentError, TransientError
from integrations.gateway.exceptions import GatewayValidationError
from jobs.models import Job
from orders.exceptions import (
    NonceSpentElsewhere,
    PaymentDeclined,
    PaymentNeedsReview,
    PaymentPending,
    PaymentSoftDeclined,
    ProcessorUnavailable,
)
from orders.models import Order
from orders.kinds import PAYMENT
from orders.services import (
    Charged,
    payment_charge,
    payment_fail,
    payment_note_retry,
    payment_record,
    payment_start,
    receipt_request,
)

from jobs.consumers import JobConsumer


class PaymentConsumer(JobConsumer):
    kind = PAYMENT

    def __init__(self, **initkwargs):
        super().__init__(**initkwargs)
        # By job: the orders ``on_claim`` started, for ``handle`` to charge;
        # the charges written paid in a success transaction not yet committed.
        self._started: dict[int, Order] = {}
        self._paid: dict[int, Charged] = {}

    def on_claim(self, job: Job) -> None:
        # The order turns "processing" in the claim's own transaction.
        self._started[job.pk] = payment_start(job=job)

    def handle(self, job: Job) -> Charged:
        order = self._started.pop(job.pk, None)
        return payment_charge(job=job, order=order if order is not None else payment_start(job=job))

    def on_success(self, job: Job, charged: Charged) -> None:
        # One transaction: the order paid, the job ok and the receipt job
        # exist together or not at all.  A webhook that moved the order
        # meanwhile wins: nothing is written and the job fails.  The
        # payment's own event is queued first, so the user hears "paid"
        # before "receipt".
        order = payment_record(charged=charged)
        self._paid[job.pk] = charged
        super().on_success(job, order)
        receipt_request(order=order)
        del self._paid[job.pk]

    def on_retry(self, job: Job, exc: BaseException, delay: float) -> None:
        # A success transaction that failed on the database took the order's
        # "paid" along: it is still processing, and the retry confirms it.
        self._paid.pop(job.pk, None)
        payment_note_retry(order_id=job.subject_id, error=str(exc))
        super().on_retry(job, exc, delay)

    def on_failure(self, job: Job, exc: BaseException) -> None:
        if (charged := self._paid.pop(job.pk, None)) is not None:
            # The money was taken and written paid, then something after it
            # in the success transaction failed for good: never turn a charged
            # order into a failed one.  It is paid; the job fails, with no receipt.
            try:
                payment_record(charged=charged)
            except PermanentError:
                pass  # a webhook moved the order meanwhile: its word stands, and payment_fail leaves it
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
        # Most specific first: several of these are TransientErrors whose attempts ran out.
        if isinstance(exc, (PaymentDeclined, PaymentSoftDeclined)):
            return f"Payment declined: {decline_words(str(exc))}"
        if isinstance(exc, PaymentNeedsReview):
            return f"Payment needs review: {CHECK_IT} a charge that does not match this order{DONT_PAY}"
        if isinstance(exc, PaymentPending):
            return f"Payment needs review: {CHECK_IT} no final answer yet{DONT_PAY}"
        if isinstance(exc, NonceSpentElsewhere):
            return f"Payment needs review: {CHECK_IT} the card details as used, but no charge for this order{DONT_PAY}"
        if isinstance(exc, ProcessorUnavailable):
            return "Payment failed: the card network was unavailable and nothing was charged. Please pay again later"
        if isinstance(exc, GatewayValidationError):
            return "Payment failed: the payment method was not accepted. Please pay again with another one"
        if isinstance(exc, TransientError):
            return "Payment failed: the payment service did not answer. Please try again later"
        return "Payment failed because of a problem on our side; it has been recorded"


CHECK_IT = "the payment service shows"
DONT_PAY = ". We will check it; please don't pay again"
# A processor's code after its words: "Do Not Honor (2000)".
_CODE = re.compile(r"\s*\(\d+\)$")


def decline_words(reason: str) -> str:
    """A decline's reason as the payer reads it: the card issuer's words, without codes or the gateway's terms."""
    if reason.startswith("Gateway rejected"):
        return "the payment service refused this card"
    if reason.startswith("Refused as a duplicate"):
        return "it repeats a payment made a moment ago, and nothing was charged"
    return _CODE.sub("", reason) or "the card issuer gave no reason"
