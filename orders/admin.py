from django.contrib import admin

from orders.models import Order


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ("id", "user", "amount", "status", "transaction_id", "transaction_status", "created_at")
    list_filter = ("status", "created_at")
    search_fields = ("id", "transaction_id", "user__username")
    raw_id_fields = ("job", "user")
