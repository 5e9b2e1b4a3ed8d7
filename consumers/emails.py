"""The ``emails`` channel: receipts for paid orders.

The receipt follows a paid payment as its own job, created in the same
transaction that records the order as paid.  It is a two-step chain:
compose from the order, then send; a mail server that is down retries only
the sending, and never touches the order.
"""

from __future__ import annotations

from typing import ClassVar

from jobs.models import Job
from orders.services import RECEIPT_KIND, Receipt, receipt_compose, receipt_send

from consumers.base import ChainConsumer, Step


class ReceiptConsumer(ChainConsumer):
    kind = RECEIPT_KIND
    steps: ClassVar[tuple[Step, ...]] = (Step("compose", returns=Receipt), Step("send"))

    def compose(self, job: Job, _previous: None) -> Receipt:
        return receipt_compose(order=self.subject(job))

    def send(self, job: Job, receipt: Receipt) -> str:
        return receipt_send(receipt=receipt)

    def step_message(self, job: Job, step: Step, result) -> str:
        if step.name == "compose":
            return f"Receipt for order #{job.subject_id} composed; sending"
        return f"Receipt for order #{job.subject_id} sent"

    def success_message(self, job: Job, address: str) -> str:
        if not address:
            return f"No email address on file; receipt for order #{job.subject_id} not sent"
        return f"Receipt for order #{job.subject_id} sent to {address}"

    def failure_message(self, job: Job, exc: BaseException) -> str:
        return f"Receipt for order #{job.subject_id} could not be sent: {exc}"
