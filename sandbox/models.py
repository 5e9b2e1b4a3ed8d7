"""The sandbox gateway's ledger.

It records every sale it is asked for, declines and rejections included, as
Braintree does: counting the rows that hold money per order is how the tests
prove nothing was charged twice.
"""

from django.db import models

# Statuses in which the sandbox holds or settles the customer's money.
MONEY_STATUSES = ("authorized", "authorizing", "submitted_for_settlement", "settling", "settled")


class SandboxTransaction(models.Model):
    id = models.CharField(primary_key=True, max_length=16)
    order_id = models.CharField(max_length=255, db_index=True)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency_iso_code = models.CharField(max_length=3, default="USD")
    nonce = models.CharField(max_length=100)
    status = models.CharField(max_length=40)
    processor_response_code = models.CharField(max_length=10, blank=True)
    processor_response_type = models.CharField(max_length=20, blank=True)
    processor_response_text = models.CharField(max_length=200, blank=True)
    gateway_rejection_reason = models.CharField(max_length=40, blank=True)
    duplicate_of = models.CharField(max_length=16, blank=True)
    # A retried request with the same key gets this transaction again.
    idempotency_key = models.CharField(max_length=255, null=True, blank=True, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"sandbox transaction {self.id} for order {self.order_id}: {self.status}"

    @property
    def holds_money(self) -> bool:
        return self.status in MONEY_STATUSES

    def as_json(self) -> dict:
        return {
            "id": self.id,
            "type": "sale",
            "status": self.status,
            "amount": str(self.amount),
            "currency_iso_code": self.currency_iso_code,
            "order_id": self.order_id,
            "processor_response_code": self.processor_response_code,
            "processor_response_type": self.processor_response_type,
            "processor_response_text": self.processor_response_text,
            "gateway_rejection_reason": self.gateway_rejection_reason or None,
            "duplicate_of_transaction_id": self.duplicate_of or None,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }
