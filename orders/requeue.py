"""Payments in the requeue machinery's report: why a payment job is stuck (``PAYMENT.stuck_reasons``)."""

from jobs.models import Job, JobStatus
from jobs.requeue import STATUS_REASONS
from orders.models import Order


def payment_reasons(*, jobs: list[Job]) -> dict[int, str]:
    with_transaction = set(
        Order.objects.filter(job__in=[job.pk for job in jobs]).exclude(transaction_id="").values_list("job_id", flat=True)
    )
    reasons = {}
    for job in jobs:
        what = "order with a transaction id but no final result" if job.pk in with_transaction \
            else "order with a nonce but no transaction id"
        detail = "retry due" if job.status == JobStatus.RETRYING else STATUS_REASONS[job.status]
        reasons[job.pk] = f"{what}: {detail}"
    return reasons
