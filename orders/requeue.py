"""Why a payment job is stuck, in the terms an operator thinks in."""

from jobs.models import Job
from jobs.requeue import STATUS_REASONS, register_reasons
from jobs.models import JobStatus
from orders.models import Order
from orders.services import JOB_KIND


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
