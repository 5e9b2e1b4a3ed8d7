from django.contrib import admin

from jobs.models import Job


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ("id", "kind", "status", "progress", "attempts", "user", "subject_type", "subject_id", "updated_at")
    list_filter = ("kind", "status", "created_at")
    search_fields = ("id", "subject_id", "user__username", "error")
    readonly_fields = [f.name for f in Job._meta.fields]
