from __future__ import annotations

from django.conf import settings
from django.db import models


class OrderStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    PROCESSING = "processing", "Processing"
    PAID = "paid", "Paid"
    DECLINED = "declined", "Declined"
    FAILED = "failed", "Failed"


FINAL_STATUSES = (OrderStatus.PAID, OrderStatus.DECLINED, OrderStatus.FAILED)


class Order(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="orders")
    amount = models.DecimalField(max_digits=10, decimal_places=2)
    nonce = models.CharField(max_length=100)
    status = models.CharField(max_length=12, choices=OrderStatus.choices, default=OrderStatus.PENDING)
    transaction_id = models.CharField(max_length=64, blank=True)
    transaction_status = models.CharField(max_length=40, blank=True)
    error = models.TextField(blank=True)
    job = models.OneToOneField("jobs.Job", on_delete=models.PROTECT, related_name="order", null=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "-created_at"], name="order_user_recent")]

    def __str__(self) -> str:
        return f"Order #{self.pk} {self.amount} ({self.status})"

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES
