"""Factories for test data, built through the product's own services."""

from __future__ import annotations

from decimal import Decimal

from orders.models import Order
from orders.services import order_create


def make_order(user, *, amount: str = "12.50", nonce: str = "fake-valid-nonce") -> Order:
    return order_create(user=user, amount=Decimal(amount), nonce=nonce)


def receipt_job(order):
    """The receipt task's job of a paid order, as the payment enqueues it (its message goes to the layer after commit)."""
    from jobs.models import Job
    from jobs.tasks import enqueue_as
    from orders.tasks import send_receipt

    with enqueue_as(order.user_id, subject=order):
        return Job.objects.get(pk=send_receipt.enqueue(order.pk).id)
