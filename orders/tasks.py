"""The orders app's tasks (Django's Tasks API): the receipt of a paid order."""

from __future__ import annotations

from jobs.progress import report_progress, resumable
from jobs.tasks import task_options
from orders.models import Order
from orders.services import Receipt, receipt_compose, receipt_send
from project.names import EMAILS

try:  # Django 6 ships the API as django.tasks.
    from django.tasks import task
except ImportError:
    from django_tasks import task


def _no_address(order_id: int) -> str:
    return f"No receipt for order #{order_id}: there is no email address on your account"


@task(queue_name=EMAILS, takes_context=True)
@task_options(max_attempts="RECEIPT_MAX_ATTEMPTS", title="")
def send_receipt(context, order_id: int) -> str:
    """Email the receipt of a paid order; where it went ("" with no address on the account).

    Two resumable steps: compose from the order, then send.  A mail server
    that is down retries only the sending, with the receipt as composed, and
    never touches the order.  Its messages are what the person who paid
    reads: a receipt never sent is never called sent.
    """
    receipt = resumable(
        context,
        "compose",
        lambda: receipt_compose(order=Order.objects.select_related("user").get(pk=order_id)),
        returns=Receipt,
    )
    if not receipt.to:
        report_progress(context, 100, _no_address(order_id))
        return ""
    report_progress(context, 50, f"Sending the receipt for order #{order_id}")
    address = receipt_send(receipt=receipt)
    report_progress(context, 100, f"Receipt for order #{order_id} sent to {address}")
    return address
