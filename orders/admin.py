"""Orders in the admin, read-only: only the payment flow changes an order."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from orders.models import Order


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = (
        "id", "user", "amount", "status", "transaction_id", "transaction_status", "job_link",
        "created_at", "updated_at",
    )
    list_filter = ("status", "transaction_status", "created_at")
    date_hierarchy = "created_at"
    search_fields = ("=id", "=transaction_id", "user__username", "user__email", "error")
    list_select_related = ("user", "job")
    show_full_result_count = False
    fields = (
        "user", "amount", "status", "transaction_id", "transaction_status", "error", "job_link", "nonce",
        "created_at", "updated_at",
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
