from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class OrderStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    PROCESSING = "processing", "Processing"
    PAID = "paid", "Paid"
    DECLINED = "declined", "Declined"
    FAILED = "failed", "Failed"
    # The gateway answered with money that does not match the order (amount,
    # currency, reference) or with two charges: a person must look.
    REVIEW = "review", "Needs review"
    # Paid, then the processor refused to settle it (a webhook said so).
    SETTLEMENT_DECLINED = "settlement_declined", "Settlement declined"


FINAL_STATUSES = (
    OrderStatus.PAID, OrderStatus.DECLINED, OrderStatus.FAILED, OrderStatus.REVIEW, OrderStatus.SETTLEMENT_DECLINED,
)


def new_reference() -> str:
    """What the gateway knows the order by: unique across databases and deployments."""
    return f"{settings.PAYMENT_REFERENCE_PREFIX}{uuid.uuid4().hex}"


def default_currency() -> str:
    return settings.PAYMENT_CURRENCY


class Order(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="orders")
    amount = models.DecimalField(max_digits=10, decimal_places=2)
    currency = models.CharField(max_length=3, default=default_currency)
    reference = models.CharField(max_length=80, unique=True, default=new_reference, editable=False)
    nonce = models.CharField(max_length=100)
    status = models.CharField(max_length=20, choices=OrderStatus.choices, default=OrderStatus.PENDING)
    transaction_id = models.CharField(max_length=64, blank=True)
    transaction_status = models.CharField(max_length=40, blank=True)
    processor_response_code = models.CharField(max_length=10, blank=True)
    # Braintree's dispute status (open, won, lost, accepted...) once a dispute was opened.
    dispute = models.CharField(max_length=20, blank=True)
    error = models.TextField(blank=True)
    # Sales sent to a gateway that honours no idempotency key (Braintree),
    # and when the last one went: a sale whose answer was lost may still land,
    # so no other is sent before PAYMENT_LOST_SALE_WAIT has passed.
    sales_sent = models.PositiveSmallIntegerField(default=0, editable=False)
    last_sale_sent_at = models.DateTimeField(null=True, blank=True, editable=False)
    job = models.OneToOneField("jobs.Job", on_delete=models.PROTECT, related_name="order", null=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "-created_at"], name="order_user_recent")]

    def __str__(self) -> str:
        return f"Order #{self.pk} {self.amount} {self.currency} ({self.status})"

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES


class PaymentEvent(models.Model):
    """A webhook from the gateway, as it arrived once verified, and what it did to its order."""

    source = models.CharField(max_length=20)  # "braintree" or "sandbox"
    kind = models.CharField(max_length=60)
    transaction_id = models.CharField(max_length=64, blank=True, db_index=True)
    order = models.ForeignKey(Order, on_delete=models.SET_NULL, null=True, blank=True, related_name="events")
    outcome = models.CharField(max_length=300)
    payload = models.TextField(blank=True)
    # When the gateway says it happened (the notification's timestamp): a
    # webhook older than one already heard is not applied.
    happened_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-received_at", "-id"]

    def __str__(self) -> str:
        return f"{self.source} {self.kind} for transaction {self.transaction_id or '?'}"
