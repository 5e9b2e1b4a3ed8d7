"""Payments in the requeue machinery: why a job is stuck, and what a retry must reopen."""

from jobs.models import Job, JobStatus
from jobs.requeue import STATUS_REASONS, register_reasons, register_retry
from orders.models import Order
from orders.services import JOB_KIND, payment_reopen



@register_retry(JOB_KIND)
def payment_retry(jobs: list[Job]) -> dict[int, str]:
    return payment_reopen(jobs=jobs)


@register_reasons(JOB_KIND)
def payment_reasons(jobs: list[Job]) -> dict[int, str]:
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
