"""Orders: accept a payment, and carry it through the gateway."""

from __future__ import annotations

import logging
import smtplib
from decimal import Decimal

import attrs

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from integrations.exceptions import PermanentError, TransientError
from integrations.gateway import GatewayClient, get_payment_gateway
from jobs.models import Job
from jobs.refs import resolve
from jobs.services import job_create, job_progress
from orders.exceptions import PaymentDeclined
from orders.models import Order, OrderStatus
from project.names import EMAILS, PAYMENTS

logger = logging.getLogger(__name__)

JOB_KIND = "payment"
RECEIPT_KIND = "receipt"


def order_create(*, user, amount: Decimal, nonce: str) -> Order:
    """Create an order and its payment job together; the job is sent after commit."""
    with transaction.atomic():
        order = Order.objects.create(user=user, amount=amount, nonce=nonce)
        order.job = job_create(
            kind=JOB_KIND,
            channel=PAYMENTS,
            user=user,
            subject=order,
            message=f"Payment of {order.amount} queued",
        )
        order.save(update_fields=["job", "updated_at"])
    return order



def _update(order: Order, **fields) -> None:
    for name, value in fields.items():
        setattr(order, name, value)
    order.save(update_fields=[*fields, "updated_at"])


def payment_process(*, job: Job, gateway: GatewayClient | None = None) -> Order:
    """Charge the order a job refers to, at most once, and learn the outcome.

    Safe to run again for the same order: a stored transaction id is reused,
    and before any sale the gateway is searched for one made by an earlier
    attempt that died before saving it.
    """
    gateway = gateway or get_payment_gateway()
    order = resolve(job.subject_ref)
    if order.is_final:
        logger.info("Order %s is already %s; nothing to do", order.pk, order.status)
        return order

    with transaction.atomic():
        _update(order, status=OrderStatus.PROCESSING, error="")
        if order.transaction_id:
            # A retry after the sale: never move progress backwards.
            job_progress(job=job, progress=60, message=f"Confirming transaction {order.transaction_id}")
        else:
            job_progress(job=job, progress=10, message=f"Processing payment of {order.amount}")

    if not order.transaction_id:
        existing = gateway.find_by_order(order.pk)
        if existing:
            sale = existing[0]
            logger.info("Order %s already has transaction %s at the gateway; no new sale", order.pk, sale.id)
        else:
            sale = gateway.sale(amount=order.amount, nonce=order.nonce, order_id=order.pk)
        # Saved at once: from here on a retry never needs the gateway search.
        with transaction.atomic():
            _update(order, transaction_id=sale.id, transaction_status=sale.status)
            job_progress(job=job, progress=60, message=f"Transaction {sale.id} created; confirming")

    result = gateway.find(order.transaction_id)
    if result.succeeded:
        _update(order, status=OrderStatus.PAID, transaction_status=result.status, error="")
        return order
    _update(order, transaction_status=result.status)
    raise PaymentDeclined(result.decline_reason)


def payment_fail(*, order_id: int, exc: BaseException) -> Order | None:
    """Record a payment that cannot complete: declined by the processor, or failed."""
    order = Order.objects.select_for_update().filter(pk=order_id).first()
    if order is None or order.status == OrderStatus.PAID:
        # Never turn a charged order back into an unpaid one.
        return order
    status = OrderStatus.DECLINED if isinstance(exc, PaymentDeclined) else OrderStatus.FAILED
    _update(order, status=status, error=str(exc))
    return order


def payment_reopen(*, jobs: list[Job]) -> dict[int, str]:
    """Reopen the failed orders of payment jobs being retried; refuse the declined.

    Without this, ``payment_process`` would find the order final, do nothing
    and report it paid.  A reopened order keeps its transaction id, so the
    retry confirms that transaction and never charges again; without one,
    the gateway is searched by order id before any sale.  A declined card
    declines again: the customer has to pay anew.  Returns the refused jobs
    with the reason.
    """
    by_job = {order.job_id: order for order in Order.objects.select_for_update().filter(job__in=jobs)}
    refused = {}
    for job in jobs:
        order = by_job.get(job.pk)
        if order is None or order.status == OrderStatus.PAID:
            continue  # the job fails again, or confirms the payment: both are honest
        if order.status == OrderStatus.DECLINED:
            refused[job.pk] = "payment declined (the customer must pay again)"
        elif order.status == OrderStatus.FAILED:
            _update(order, status=OrderStatus.PENDING, error="")
    return refused


def payment_note_retry(*, order_id: int, error: str) -> None:
    """Show the temporary problem on the order while its job waits to retry."""
    Order.objects.filter(pk=order_id).update(
        error=f"Temporary problem, retrying: {error}", updated_at=timezone.now()
    )


def receipt_request(*, order: Order) -> Job:
    """Queue the receipt email of a paid order, on its own job.

    Its own job, so a mail server that is down delays or fails the receipt
    and never the payment.
    """
    return job_create(
        kind=RECEIPT_KIND,
        channel=EMAILS,
        user=order.user_id,
        subject=order,
        message=f"Receipt for order #{order.pk} queued",
    )


@attrs.frozen
class Receipt:
    """A receipt email, composed from the order and sent in a later step."""

    order_id: int
    to: str
    subject: str
    body: str


def receipt_compose(*, order: Order) -> Receipt:
    """The receipt of a paid order; ``to`` is empty when the user has no address."""
    return Receipt(
        order_id=order.pk,
        to=order.user.email,
        subject=f"Receipt for order #{order.pk}",
        body=(
            f"Thank you for your payment of {order.amount}.\n"
            f"Order: #{order.pk}\nTransaction: {order.transaction_id}\n"
        ),
    )


def receipt_send(*, receipt: Receipt) -> str:
    """Email the receipt through Django's email framework; returns where it went."""
    if not receipt.to:
        return ""
    try:
        send_mail(
            subject=receipt.subject,
            message=receipt.body,
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=[receipt.to],
        )
    except smtplib.SMTPRecipientsRefused as exc:
        raise PermanentError(f"Mail server refused {receipt.to}") from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise TransientError(f"Mail server: {exc}") from exc
    return receipt.to
