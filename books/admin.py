from django.contrib import admin

from books.models import Author, Book, BookBatch, Person, Subject


@admin.register(Book)
class BookAdmin(admin.ModelAdmin):
    list_display = ("id", "isbn", "title", "status", "pages", "publish_date", "created_at")
    list_filter = ("status", "created_at")
    search_fields = ("isbn", "title")
    raw_id_fields = ("authors", "people", "subjects", "batch", "job")


@admin.register(BookBatch)
class BookBatchAdmin(admin.ModelAdmin):
    list_display = ("id", "user", "total", "done", "found", "not_found", "failed", "finished_at", "created_at")
    raw_id_fields = ("user", "job")


@admin.register(Author, Person, Subject)
class EntityAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "key", "openlibrary_url")
    search_fields = ("name", "key")
