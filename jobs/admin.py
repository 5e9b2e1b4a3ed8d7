"""The job records in the admin: read-only, readable, and a "retry" for failed ones."""

from __future__ import annotations

import json

from django.apps import apps
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html
from django.utils.translation import ngettext

from jobs.models import Job
from jobs.requeue import SEND_FAILED, requeue_failed

# Wrapped, so a long error or traceback is read without scrolling sideways.
PRE = '<pre style="white-space: pre-wrap; margin: 0; max-width: 100em">{}</pre>'

# Shown by the methods below instead of the raw fields.
_DISPLAYED = {"progress", "error", "traceback", "payload", "subject_type", "subject_id"}


def subject_link(admin_site: admin.AdminSite, job: Job) -> str:
    """The job's subject, linked to its admin page when its model is registered there; "-" for a task about nothing."""
    if not job.subject_type:
        return "-"
    label = f"{job.subject_type} #{job.subject_id}"
    try:
        model = apps.get_model(job.subject_type)
    except (LookupError, ValueError):
        return label
    if not admin_site.is_registered(model):
        return label
    try:
        url = reverse(
            f"{admin_site.name}:{model._meta.app_label}_{model._meta.model_name}_change", args=[job.subject_id]
        )
    except NoReverseMatch:
        return label
    return format_html('<a href="{}">{} #{}</a>', url, model._meta.verbose_name.capitalize(), job.subject_id)


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ("id", "kind", "status", "progress_bar", "attempts", "user", "subject", "message", "updated_at")
    list_display_links = ("id", "kind")
    list_filter = ("kind", "status", "channel", "created_at", "updated_at")
    date_hierarchy = "created_at"
    search_fields = ("=id", "=subject_id", "user__username", "message", "error")
    list_select_related = ("user",)
    # COUNT(*) over every job on each page would grow with the table.
    show_full_result_count = False
    actions = ["retry_selected"]
    readonly_fields = (
        "progress_bar",
        "subject",
        "error_text",
        "traceback_text",
        "payload_text",
        *(f.name for f in Job._meta.fields if f.name not in _DISPLAYED),
    )
    fields = (
        "kind",
        "channel",
        "status",
        "progress_bar",
        "message",
        "attempts",
        "user",
        "subject",
        "error_text",
        "traceback_text",
        "payload_text",
        # Whatever else the model holds, so a new field shows without an edit here.
        *(
            f.name
            for f in Job._meta.fields
            if f.name not in _DISPLAYED | {"id", "kind", "channel", "status", "message", "attempts", "user"}
        ),
    )

    # Jobs are written by the job services only: the admin reads them and retries.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Job | None = None) -> bool:
        # A job is the record of what was done (and charged): never deleted
        # here, which also drops the "Delete selected" action.  The admin
        # then refuses to delete a user who has jobs too: deactivate them.
        return False

    def has_change_permission(self, request: HttpRequest, obj: Job | None = None) -> bool:
        # Viewing needs no change permission; the retry action checks its own.
        return False if obj is not None else super().has_change_permission(request, obj)

    @admin.display(description="progress", ordering="progress")
    def progress_bar(self, job: Job) -> str:
        return format_html('<progress value="{}" max="100"></progress> {}%', job.progress, job.progress)

    @admin.display(description="subject", ordering="subject_type")
    def subject(self, job: Job) -> str:
        return subject_link(self.admin_site, job)

    @admin.display(description="error")
    def error_text(self, job: Job) -> str:
        return format_html(PRE, job.error) if job.error else "-"

    @admin.display(description="traceback")
    def traceback_text(self, job: Job) -> str:
        return format_html(PRE, job.traceback) if job.traceback else "-"

    @admin.display(description="payload")
    def payload_text(self, job: Job) -> str:
        return format_html(PRE, json.dumps(job.payload, indent=2, sort_keys=True, default=str))

    @admin.action(description="Retry selected jobs", permissions=["retry"])
    def retry_selected(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        """Send the selected failed jobs again, through the requeue service."""
        report = requeue_failed(job_ids=queryset.values_list("pk", flat=True))
        sent = report.requeued
        self.message_user(
            request,
            ngettext("%d job requeued.", "%d jobs requeued.", sent) % sent,
            messages.SUCCESS if sent else messages.WARNING,
        )
        for reason, count in sorted(report.skipped.items()):
            if reason == SEND_FAILED:
                reason += "; they stay pending and the requeue command will send them"
            self.message_user(request, f"{count} skipped: {reason}", messages.WARNING)

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return super().has_change_permission(request)
