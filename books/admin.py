"""The catalogue in the admin: books, their batches, and the shared authors, people and subjects."""

from __future__ import annotations

from django.contrib import admin
from django.db import models
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from books.models import Author, Book, BookAuthor, BookBatch, Person, Place, Subject

# OpenLibrary serves https; also silences Django 6's change of the form default.
URL_FIELDS = {models.URLField: {"assume_scheme": "https"}}


def _job_link(admin_site: admin.AdminSite, job_id: int | None) -> str:
    if job_id is None:
        return "-"
    url = reverse(f"{admin_site.name}:jobs_job_change", args=[job_id])
    return format_html('<a href="{}">job #{}</a>', url, job_id)


class BookAuthorInline(admin.TabularInline):
    """A book's authors, in their order on the book."""

    model = BookAuthor
    fields = ("position", "author")
    autocomplete_fields = ("author",)
    extra = 0


@admin.register(Book)
class BookAdmin(admin.ModelAdmin):
    list_display = ("id", "isbn", "title", "author_names", "status", "pages", "publish_date", "batch", "created_at")
    list_display_links = ("id", "isbn")
    list_filter = ("status", "created_at", "looked_up_at")
    date_hierarchy = "created_at"
    search_fields = ("=isbn", "title", "authors__name", "people__name", "subjects__name")
    list_select_related = ("batch",)
    show_full_result_count = False
    autocomplete_fields = ("people", "places", "subjects")
    inlines = (BookAuthorInline,)
    raw_id_fields = ("batch",)
    # The job is the lookup's record, not something to re-point by hand.
    exclude = ("job",)
    readonly_fields = ("job_link", "looked_up_at", "created_at", "updated_at")
    formfield_overrides = URL_FIELDS

    def get_queryset(self, request: HttpRequest) -> QuerySet[Book]:
        return super().get_queryset(request).prefetch_related("credits__author")

    @admin.display(description="authors")
    def author_names(self, book: Book) -> str:
        return ", ".join(author.name for author in book.ordered_authors)

    @admin.display(description="job")
    def job_link(self, book: Book) -> str:
        return _job_link(self.admin_site, book.job_id)


@admin.register(BookBatch)
class BookBatchAdmin(admin.ModelAdmin):
    list_display = (
        "id", "user", "total", "done", "found", "not_found", "failed", "progress", "finished_at", "created_at",
    )
    list_filter = ("created_at", "finished_at")
    date_hierarchy = "created_at"
    search_fields = ("=id", "user__username")
    list_select_related = ("user",)
    fields = (
        "user", "job_link", "total", "done", "found", "not_found", "failed", "progress", "reported_at", "finished_at",
        "created_at", "updated_at",
    )
    readonly_fields = fields

    # A batch's counts are a throttled copy of its books' statuses, written by
    # the batch refresh only: the admin reads them.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: BookBatch | None = None) -> bool:
        return False

    @admin.display(description="job")
    def job_link(self, batch: BookBatch) -> str:
        return _job_link(self.admin_site, batch.job_id)


@admin.register(Author, Person, Place, Subject)
class EntityAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "book_count", "key", "openlibrary_link", "created_at")
    list_display_links = ("id", "name")
    search_fields = ("name", "=key")
    list_filter = ("created_at",)
    readonly_fields = ("created_at",)
    formfield_overrides = URL_FIELDS

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).annotate(book_count=Count("books", distinct=True))

    @admin.display(description="books", ordering="book_count")
    def book_count(self, entity) -> int:
        return entity.book_count

    @admin.display(description="OpenLibrary")
    def openlibrary_link(self, entity) -> str:
        # Stored as OpenLibrary sent it: link nothing but a web address.
        if not entity.openlibrary_url.startswith(("https://", "http://")):
            return "-"
        return format_html('<a href="{}" rel="noopener noreferrer">{}</a>', entity.openlibrary_url, entity.key)
