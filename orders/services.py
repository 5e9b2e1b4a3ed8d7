"""Orders: accept a payment, and carry it through the gateway."""

from __future__ import annotations

import json
import logging
import smtplib
from datetime import timedelta
from decimal import Decimal
from functools import partial

import attrs

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from integrations.exceptions import PermanentError, TransientError
from integrations.gateway import Notification, Outcome, PaymentGateway, Transaction, get_payment_gateway
from integrations.gateway.exceptions import GatewayValidationError, NonceConsumed
from jobs.models import Job
from jobs.refs import resolve
from jobs.services import job_create, job_progress, push_group_event
from jobs.tasks import enqueue_as
from orders.exceptions import (
    NonceSpentElsewhere,
    PaymentDeclined,
    PaymentNeedsReview,
    PaymentPending,
    PaymentSoftDeclined,
    ProcessorUnavailable,
    SaleInDoubt,
)
from orders.models import Order, OrderStatus, PaymentEvent
from orders.kinds import PAYMENT
from project.names import ORDER_UPDATE, user_group

logger = logging.getLogger(__name__)



def order_create(*, user, amount: Decimal, nonce: str) -> Order:
    """Create an order and its payment job together; the job is sent after commit."""
    with transaction.atomic():
        order = Order.objects.create(user=user, amount=amount, nonce=nonce)
        order.job = job_create(
            kind=PAYMENT,
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


# The order statuses a payment job is still working on.
WORKING = (OrderStatus.PENDING, OrderStatus.PROCESSING)

# A transaction in one of these states is over without money: the next
# attempt makes a new sale.
ATTEMPT_OVER = (Outcome.SOFT_DECLINE, Outcome.PROCESSOR_UNAVAILABLE)


def payment_process(*, job: Job, gateway: PaymentGateway | None = None) -> Order:
    """Charge the order a job refers to, at most once, and learn the outcome.

    The order is paid only when the gateway holds or settles its full amount,
    in its currency, under its own reference.  Safe to run again: a stored
    transaction is confirmed rather than sold again; before any sale the
    gateway is searched by the order's reference for a charge an earlier
    attempt made but never recorded; and a resent sale carries the same
    idempotency key, so a gateway that honours it answers with the first.

    Three moves, which the payment consumer makes each in the transaction
    of one of its job's writes: ``payment_start`` with the claim,
    ``payment_charge`` on its own, ``payment_record`` with the job's success.
    """
    order = payment_start(job=job)
    return payment_record(charged=payment_charge(job=job, order=order, gateway=gateway))


def payment_start(*, job: Job) -> Order:
    """The order a payment job works on, marked processing, with the job's progress; an attempt's first writes.

    In the caller's transaction when there is one (the worker's claim), else
    in one of their own.  An order already paid is returned as it is; any
    other final order is an error: never report it paid because its job ran
    again.
    """
    order = resolve(job.subject_ref)
    if order.status == OrderStatus.PAID:
        logger.info("Order %s is already paid; nothing to do", order.pk)
        return order
    if order.is_final:
        raise PermanentError(f"Order #{order.pk} is already {order.get_status_display().lower()}: {order.error}")
    with transaction.atomic(savepoint=False):
        _update(order, status=OrderStatus.PROCESSING, error="")
        if order.transaction_id:
            # A retry after the sale: never move progress backwards.
            job_progress(job=job, progress=60, message=f"Confirming transaction {order.transaction_id}")
        else:
            job_progress(job=job, progress=10, message=f"Processing payment of {order.amount}")
    return order


@attrs.frozen
class Charged:
    """A started order and the gateway's final answer for it; ``transaction`` is None for an order already paid."""

    order: Order
    transaction: Transaction | None


def payment_charge(*, job: Job, order: Order, gateway: PaymentGateway | None = None) -> Charged:
    """Take the started order's money through the gateway, or raise why not; the paid order is not recorded yet.

    Between gateway calls it commits only what a retry needs (the sale's
    id, and a mark before a sale a gateway could not tell from a resent
    one).  ``payment_record`` records the order paid.
    """
    gateway = gateway or get_payment_gateway()
    if order.status == OrderStatus.PAID:
        return Charged(order=order, transaction=None)
    current = gateway.find(order.transaction_id) if order.transaction_id else None
    if current is None or current.outcome in ATTEMPT_OVER:
        sale = _charge(gateway, order)
        # Saved at once: from here on a retry confirms this transaction.
        with transaction.atomic():
            _update(order, transaction_id=sale.id, transaction_status=sale.status,
                    processor_response_code=sale.processor_response_code)
            job_progress(job=job, progress=60, message=f"Transaction {sale.id} created; confirming")
        current = gateway.find(sale.id)
    if current.outcome is Outcome.AUTHORIZED:
        # We always ask for settlement; a gateway that only holds the money
        # is asked again, once we know the money is this order's.
        _checked(order, current)
        try:
            current = gateway.submit_for_settlement(current.id)
        except GatewayValidationError:
            # Another attempt submitted it first (91507): see where it stands.
            current = gateway.find(current.id)
    return Charged(order=order, transaction=_conclude(order, current))


def payment_record(*, charged: Charged) -> Order:
    """Record the order of a settling charge as paid; the order.

    Call it in the transaction that records the job's success, so the two
    are written together.  Conditional: a webhook (a settlement declined)
    may have moved the order while we asked, and its word is newer than our
    find.
    """
    order, tx = charged.order, charged.transaction
    if tx is None:
        return order
    paid = {"status": OrderStatus.PAID, "error": "", "transaction_status": tx.status,
            "processor_response_code": tx.processor_response_code, "updated_at": timezone.now()}
    if not Order.objects.filter(pk=order.pk, status__in=WORKING).update(**paid):
        order.refresh_from_db()
        raise PermanentError(f"The gateway has since reported: {order.error or order.status}")
    # What the UPDATE wrote, without reading the row back.
    for name, value in paid.items():
        setattr(order, name, value)
    return order


def _charge(gateway: PaymentGateway, order: Order) -> Transaction:
    """The order's one charge: found at the gateway, or a new sale."""
    ours = [t for t in gateway.find_by_reference(order.reference)
            if t.order_id == order.reference and t.type == "sale"]
    holding = [t for t in ours if t.holds_money]
    if len(holding) > 1:
        raise PaymentNeedsReview(
            f"The gateway holds {len(holding)} charges for this order "
            f"({', '.join(t.describe() for t in holding)}): refund all but one",
            transaction=holding[0],
        )
    if holding:
        logger.info("Order %s already has %s at the gateway; no new sale", order.pk, holding[0].describe())
        return _checked(order, holding[0])
    if not getattr(gateway, "honours_idempotency_key", False):
        _note_sale_sent(order, ours)
    try:
        # The key changes only once an earlier sale's outcome is known (it is
        # in ``ours``): a sale whose answer was lost is sent with the same key.
        sale = gateway.sale(amount=order.amount, nonce=order.nonce, reference=order.reference,
                            idempotency_key=f"{order.reference}:{len(ours)}")
    except NonceConsumed as exc:
        if not ours:
            raise NonceSpentElsewhere(
                "The gateway says this payment method was already used and shows no charge for this order yet"
            ) from exc
        # Our own earlier attempt spent the nonce without charging: its answer stands.
        last = ours[-1]
        if last.outcome is Outcome.PROCESSOR_UNAVAILABLE:
            raise PermanentError(
                f"{last.decline_reason}, and the card details cannot be used again: pay again"
            ) from exc
        raise PaymentDeclined(last.decline_reason) from exc
    if sale.outcome is Outcome.DUPLICATE:
        return _original_of(gateway, order, sale)
    return sale


def _note_sale_sent(order: Order, ours: list[Transaction]) -> None:
    """Record, before it goes, a sale to a gateway that cannot tell a resent sale from a new one.

    Each sale we sent leaves a transaction the search finds, unless its
    answer was lost on the way and it has not landed yet: it may still
    land, seconds or a minute later.  Until ``PAYMENT_LOST_SALE_WAIT`` has
    passed since that sale went, sending another could charge twice, so
    the job waits (``SaleInDoubt``) and searches again.  Committed before
    the sale: a worker that dies right after sending still left the mark.
    """
    now = timezone.now()
    if order.sales_sent > len(ours) and order.last_sale_sent_at is not None:
        lands_by = order.last_sale_sent_at + timedelta(seconds=settings.PAYMENT_LOST_SALE_WAIT)
        if now < lands_by:
            wait = (lands_by - now).total_seconds()
            raise SaleInDoubt(
                f"The gateway has not shown the sale sent at {order.last_sale_sent_at:%H:%M:%S} yet; "
                f"looking again in {wait:.0f}s before charging anew",
                retry_after=wait,
            )
        logger.warning("Order %s: a sale sent at %s never showed up at the gateway in %ss; selling again",
                       order.pk, order.last_sale_sent_at, settings.PAYMENT_LOST_SALE_WAIT)
    order.sales_sent += 1
    order.last_sale_sent_at = now
    Order.objects.filter(pk=order.pk).update(sales_sent=order.sales_sent, last_sale_sent_at=now, updated_at=now)


def _original_of(gateway: PaymentGateway, order: Order, rejected: Transaction) -> Transaction:
    """The transaction a duplicate rejection names, if it is this order's charge."""
    if not rejected.duplicate_of:
        raise PaymentPending("The gateway refused the sale as a duplicate of a transaction it did not name")
    original = gateway.find(rejected.duplicate_of)
    if original.order_id != order.reference:
        # The same card and amount paid another order a moment ago: nothing
        # was charged for this one, and the customer may pay it again later.
        raise PaymentDeclined(
            f"Refused as a duplicate of another payment ({original.describe()}); nothing was charged"
        )
    if not original.holds_money:
        raise PaymentNeedsReview(
            f"The gateway refused the sale as a duplicate of {original.describe()}, which holds no money",
            transaction=original,
        )
    logger.info("Order %s: the sale was a duplicate of %s; adopting it", order.pk, original.describe())
    return _checked(order, original)


def _mismatch(order: Order, tx: Transaction) -> str:
    if tx.order_id != order.reference:
        return f"it is for order reference {tx.order_id or '(none)'}, not {order.reference}"
    if tx.amount != order.amount:
        return f"it is for {tx.amount}, not the order's {order.amount}"
    if tx.currency != order.currency:
        return f"it is in {tx.currency or 'a currency the gateway did not name'}, not {order.currency}"
    return ""


def _checked(order: Order, tx: Transaction) -> Transaction:
    """``tx``, once it is sure that any money it holds is exactly this order's."""
    if tx.holds_money and (why := _mismatch(order, tx)):
        raise PaymentNeedsReview(f"The gateway holds {tx.describe()}, but {why}", transaction=tx)
    return tx


def _conclude(order: Order, tx: Transaction) -> Transaction:
    """The gateway's final answer when it means paid (``payment_record`` records that); else raise what is to come."""
    _checked(order, tx)
    outcome = tx.outcome
    if outcome is Outcome.SETTLING:
        return tx
    _update(order, transaction_status=tx.status, processor_response_code=tx.processor_response_code)
    if outcome in (Outcome.AUTHORIZED, Outcome.PENDING):
        raise PaymentPending(f"The gateway is still {tx.status.replace('_', ' ')} transaction {tx.id}")
    if outcome is Outcome.SOFT_DECLINE:
        raise PaymentSoftDeclined(tx.decline_reason)
    if outcome is Outcome.PROCESSOR_UNAVAILABLE:
        raise ProcessorUnavailable(tx.decline_reason)
    if outcome in (Outcome.HARD_DECLINE, Outcome.REJECTED, Outcome.DUPLICATE):
        raise PaymentDeclined(tx.decline_reason)
    raise PermanentError(f"The gateway reports {tx.describe()}: nothing was charged")


def payment_fail(*, order_id: int, exc: BaseException) -> Order | None:
    """Record a payment that cannot complete: declined, failed, or waiting for a person."""
    order = Order.objects.select_for_update().filter(pk=order_id).first()
    if order is None or order.status not in WORKING:
        # Never turn a charged order back into an unpaid one, nor overwrite
        # what a webhook recorded meanwhile.
        return order
    fields: dict = {"error": str(exc)}
    if isinstance(exc, (PaymentNeedsReview, PaymentPending, NonceSpentElsewhere)):
        # Money may be held (or may have been taken) without our knowing
        # whose: a person must look, never the customer pay again blindly.
        fields["status"] = OrderStatus.REVIEW
        held = getattr(exc, "transaction", None)
        if held is not None and held.order_id == order.reference:
            fields |= {"transaction_id": held.id, "transaction_status": held.status}
    elif isinstance(exc, (PaymentDeclined, PaymentSoftDeclined)):
        fields["status"] = OrderStatus.DECLINED
    else:
        fields["status"] = OrderStatus.FAILED
    _update(order, **fields)
    return order


def payment_reopen(*, jobs: list[Job]) -> dict[int, str]:
    """Reopen the failed orders of payment jobs being retried; refuse the others.

    Without this, ``payment_process`` would find the order final, do nothing
    and report it paid.  A reopened order keeps its transaction id, so the
    retry confirms that transaction and never charges again; without one,
    the gateway is searched by the order's reference before any sale.  A
    declined card declines again: the customer has to pay anew.  An order
    waiting for review has money at the gateway that does not match it: a
    person settles that at the gateway first.  Returns the refused jobs with
    the reason.
    """
    by_job = {order.job_id: order for order in Order.objects.select_for_update().filter(job__in=jobs)}
    refused = {}
    for job in jobs:
        order = by_job.get(job.pk)
        if order is None or order.status == OrderStatus.PAID:
            continue  # the job fails again, or confirms the payment: both are honest
        if order.status == OrderStatus.DECLINED:
            refused[job.pk] = "payment declined (the customer must pay again)"
        elif order.status == OrderStatus.REVIEW:
            refused[job.pk] = "payment needs review (settle the mismatch at the gateway first)"
        elif order.status == OrderStatus.FAILED:
            _update(order, status=OrderStatus.PENDING, error="")
    return refused


# --- after the sale: webhooks --------------------------------------------------

DISPUTE_PREFIX = "dispute_"


def payment_event_receive(*, source: str, notification: Notification) -> PaymentEvent:
    """Record a verified webhook and apply it to its order; the user hears of it after commit.

    Applying the same notification twice changes nothing more, and one older
    than what the order already heard (a gateway delivering late, or someone
    replaying a captured webhook) is recorded but not applied.
    """
    tx = notification.transaction
    with transaction.atomic():
        orders = Order.objects.select_for_update()
        order = None
        if tx.id:
            # The transaction id, under the reference it was made for when the webhook names one.
            order = orders.filter(transaction_id=tx.id, **({"reference": tx.order_id} if tx.order_id else {})).first()
        if order is None and tx.order_id:
            order = orders.filter(reference=tx.order_id).first()
        if order is None:
            outcome = f"No order has transaction {tx.id or '(none)'}; nothing changed"
        elif _superseded(order, notification):
            outcome = f"Older than what order #{order.pk} already heard; nothing changed"
        else:
            outcome = _apply(order, notification)
        event = PaymentEvent.objects.create(
            source=source, kind=notification.kind[:60], transaction_id=tx.id[:64], order=order,
            outcome=outcome[:300], happened_at=notification.timestamp,
            payload=json.dumps(attrs.asdict(notification), default=str),
        )
    logger.info("Payment webhook %s %s for transaction %s: %s", source, notification.kind, tx.id, outcome)
    return event


def _superseded(order: Order, notification: Notification) -> bool:
    if notification.timestamp is None:
        return False
    return PaymentEvent.objects.filter(order=order, happened_at__gt=notification.timestamp).exists()


def _apply(order: Order, notification: Notification) -> str:
    tx, kind = notification.transaction, notification.kind
    if tx.order_id and tx.order_id != order.reference:
        return f"Transaction {tx.id} is for reference {tx.order_id}, not order #{order.pk}'s; nothing changed"
    if kind == "transaction_settlement_declined":
        if order.status not in (OrderStatus.PAID, *WORKING):
            return f"Order #{order.pk} is {order.status}, not paid; nothing changed"
        # Also while its job still works: the job's own write is conditional and yields to this.
        reason = tx.decline_reason if tx.processor_response_text else "Settlement declined"
        _update(order, status=OrderStatus.SETTLEMENT_DECLINED, transaction_status=tx.status or "settlement_declined",
                processor_response_code=tx.processor_response_code,
                error=f"The processor declined to settle this payment: {reason}")
        message = f"Payment of {order.amount} for order #{order.pk} was not settled: {reason}"
    elif kind == "transaction_settled":
        if order.status in (OrderStatus.PAID, *WORKING):
            _update(order, transaction_status=tx.status or "settled")
            if order.status != OrderStatus.PAID:
                return f"Transaction {tx.id} settled; its job is still confirming it"
            message = f"Payment of {order.amount} for order #{order.pk} settled"
        else:
            # Money settled for an order we do not count as paid: a person must look.
            _update(order, status=OrderStatus.REVIEW, transaction_status=tx.status or "settled",
                    error=f"The gateway settled transaction {tx.id} for this order, which was {order.status}")
            message = f"Order #{order.pk} needs review: the gateway settled a payment for it"
    elif kind.startswith(DISPUTE_PREFIX):
        status = notification.dispute_status or kind.removeprefix(DISPUTE_PREFIX)
        _update(order, dispute=status[:20])
        message = f"The card holder disputes order #{order.pk}: dispute {status}"
    else:
        return f"Nothing to do for {kind}"
    order_notify(order=order, message=message)
    return message


def order_notify(*, order: Order, message: str) -> None:
    """Push the order's current state to its user's websockets after commit."""
    from orders.serializers import OrderSerializer

    event = {"type": ORDER_UPDATE, "order": OrderSerializer(order).data, "message": message}
    transaction.on_commit(partial(push_group_event, user_group(order.user_id), event))


def payment_note_retry(*, order_id: int, error: str) -> None:
    """Show the temporary problem on the order while its job waits to retry."""
    Order.objects.filter(pk=order_id).update(
        error=f"Temporary problem, retrying: {error}", updated_at=timezone.now()
    )


def receipt_request(*, order: Order) -> None:
    """Queue the receipt email of a paid order: its own task, after commit.

    Its own task, so a mail server that is down delays or fails the receipt
    and never the payment.  The payment's "paid" already went out in the
    same commit, so its "queued" is not announced.
    """
    from orders.tasks import send_receipt

    with enqueue_as(order.user_id, subject=order, announce=False):
        send_receipt.enqueue(order.pk)


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
