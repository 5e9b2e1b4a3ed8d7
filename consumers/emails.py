"""The ``emails`` channel: receipts for paid orders."""

from __future__ import annotations

from jobs.models import Job
from orders.services import RECEIPT_KIND, receipt_send

from consumers.base import JobConsumer


class ReceiptConsumer(JobConsumer):
    kind = RECEIPT_KIND

    def handle(self, job: Job) -> str:
        return receipt_send(job=job)

    def success_message(self, job: Job, address: str) -> str:
        if not address:
            return f"No email address on file; receipt for order #{job.subject_id} not sent"
        return f"Receipt for order #{job.subject_id} sent to {address}"

    def failure_message(self, job: Job, exc: BaseException) -> str:
        return f"Receipt for order #{job.subject_id} could not be sent: {exc}"
