from django.contrib import admin

from sandbox.models import SandboxTransaction


@admin.register(SandboxTransaction)
class SandboxTransactionAdmin(admin.ModelAdmin):
    list_display = ("id", "order_id", "amount", "status", "created_at")
    search_fields = ("id", "order_id")
    list_filter = ("status",)
