"""The sandbox gateway's ledger.

It records every sale it is asked for and never deduplicates: counting its
rows per order is how the tests prove nothing was charged twice.
"""

from django.db import models


class SandboxTransaction(models.Model):
    id = models.CharField(primary_key=True, max_length=16)
    order_id = models.CharField(max_length=64, db_index=True)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    nonce = models.CharField(max_length=100)
    status = models.CharField(max_length=40)
    processor_response_text = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"sandbox transaction {self.id} for order {self.order_id}: {self.status}"

    def as_json(self) -> dict:
        return {
            "id": self.id,
            "status": self.status,
            "amount": str(self.amount),
            "order_id": self.order_id,
            "processor_response_text": self.processor_response_text,
            "created_at": self.created_at.isoformat(),
        }
