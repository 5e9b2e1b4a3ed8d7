"""The ``emails`` channel: receipts for paid orders.

The receipt follows a paid payment as its own job, created in the same
transaction that records the order as paid.  It is a two-step chain:
compose from the order, then send; a mail server that is down retries only
the sending, and never touches the order.  Composing only reads the
database, so it is atomic: it runs, and is recorded, in the claim's own
transaction.

Its messages are what the person who paid reads: each says what really
happened, so a receipt never sent is never called sent.  The job's
``error`` keeps the mail server's own words.
"""

from __future__ import annotations

from typing import ClassVar

from jobs.models import Job
from orders.services import RECEIPT_KIND, Receipt, receipt_compose, receipt_send

from consumers.base import ChainConsumer, Step


def _no_address(job: Job) -> str:
    return f"No receipt for order #{job.subject_id}: there is no email address on your account"


class ReceiptConsumer(ChainConsumer):
    kind = RECEIPT_KIND
    steps: ClassVar[tuple[Step, ...]] = (Step("compose", returns=Receipt, atomic=True), Step("send"))

    def compose(self, job: Job, _previous: None) -> Receipt:
        return receipt_compose(order=self.subject(job))

    def send(self, job: Job, receipt: Receipt) -> str:
        return receipt_send(receipt=receipt)

    def step_message(self, job: Job, step: Step, result) -> str:
        if step.name == "compose":
            return f"Sending the receipt for order #{job.subject_id}" if result.to else _no_address(job)
        # ``send`` returns where the receipt went; nowhere when there is no address.
        return f"Receipt for order #{job.subject_id} sent to {result}" if result else _no_address(job)

    def success_message(self, job: Job, address: str) -> str:
        return f"Receipt for order #{job.subject_id} sent to {address}" if address else _no_address(job)

    def failure_message(self, job: Job, exc: BaseException) -> str:
        return f"The receipt for order #{job.subject_id} could not be emailed; the payment itself is done"
