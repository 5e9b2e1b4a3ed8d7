"""Orders in the admin, read-only: only the payment flow changes an order."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from orders.models import Order, PaymentEvent


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = (
        "id", "user", "amount", "currency", "status", "transaction_id", "transaction_status", "dispute", "job_link",
        "created_at", "updated_at",
    )
    list_filter = ("status", "transaction_status", "dispute", "created_at")
    date_hierarchy = "created_at"
    search_fields = ("=id", "=reference", "=transaction_id", "user__username", "user__email", "error")
    list_select_related = ("user", "job")
    show_full_result_count = False
    fields = (
        "user", "amount", "currency", "reference", "status", "transaction_id", "transaction_status",
        "processor_response_code", "dispute", "error", "job_link", "nonce", "created_at", "updated_at",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Order | None = None) -> bool:
        return False

    @admin.display(description="job", ordering="job")
    def job_link(self, order: Order) -> str:
        if order.job_id is None:
            return "-"
        url = reverse(f"{self.admin_site.name}:jobs_job_change", args=[order.job_id])
        return format_html('<a href="{}">{}</a>', url, order.job)


@admin.register(PaymentEvent)
class PaymentEventAdmin(admin.ModelAdmin):
    """What the gateway's webhooks said, and what each did: read-only, as it arrived."""

    list_display = ("received_at", "source", "kind", "transaction_id", "order_link", "outcome")
    list_filter = ("source", "kind", "received_at")
    search_fields = ("=transaction_id", "=order__id", "=order__reference", "outcome")
    list_select_related = ("order",)
    fields = ("received_at", "source", "kind", "transaction_id", "order_link", "outcome", "payload")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: PaymentEvent | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: PaymentEvent | None = None) -> bool:
        return False

    @admin.display(description="order", ordering="order")
    def order_link(self, event: PaymentEvent) -> str:
        if event.order_id is None:
            return "-"
        url = reverse(f"{self.admin_site.name}:orders_order_change", args=[event.order_id])
        return format_html('<a href="{}">{}</a>', url, event.order)
