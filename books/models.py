"""Books registered by ISBN and filled in from OpenLibrary, with their authors,
people (characters) and subjects.

Books, authors, people and subjects form one catalogue shared by every user;
a batch, like every job, belongs to the user who registered it.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Entity(models.Model):
    """A named OpenLibrary record that many books link to.

    ``key`` is what makes two mentions the same record (see
    ``books.services.entity_key``); it is unique, so two workers creating the
    same author at once end with one row.
    """

    key = models.CharField(max_length=255, unique=True)
    name = models.CharField(max_length=255)
    openlibrary_url = models.URLField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class Author(Entity):
    pass


class Person(Entity):
    """Someone in a book (OpenLibrary's ``subject_people``)."""

    class Meta(Entity.Meta):
        verbose_name_plural = "people"


class Subject(Entity):
    pass


class Place(Entity):
    """A place a book is about (OpenLibrary's ``subject_places``)."""


class BookStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    FOUND = "found", "Found"
    NOT_FOUND = "not_found", "Not found"
    FAILED = "failed", "Failed"


LOOKED_UP = (BookStatus.FOUND, BookStatus.NOT_FOUND, BookStatus.FAILED)


class BookBatch(models.Model):
    """One bulk registration: its books, and a job whose progress is theirs.

    The counts are a throttled copy of its books' statuses, written when
    progress is reported; the books are the truth.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="book_batches")
    job = models.OneToOneField("jobs.Job", on_delete=models.PROTECT, related_name="book_batch", null=True)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    found = models.PositiveIntegerField(default=0)
    not_found = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    progress = models.PositiveSmallIntegerField(default=0)
    reported_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "book batches"

    def __str__(self) -> str:
        return f"Batch #{self.pk}: {self.done} of {self.total} books looked up"


class Book(models.Model):
    isbn = models.CharField(max_length=13, unique=True, help_text="ISBN-13, digits only.")
    status = models.CharField(max_length=10, choices=BookStatus.choices, default=BookStatus.PENDING)
    title = models.CharField(max_length=500, blank=True)
    subtitle = models.CharField(max_length=500, blank=True)
    # How the book credits its makers: "by Terry Pratchett."
    by_statement = models.CharField(max_length=500, blank=True)
    pages = models.PositiveIntegerField(null=True, blank=True)
    # As OpenLibrary gives it: "1995", "June 1995", "Sep 30, 1995"...
    publish_date = models.CharField(max_length=100, blank=True)
    openlibrary_key = models.CharField(max_length=100, blank=True)
    openlibrary_url = models.URLField(max_length=500, blank=True)
    # In OpenLibrary's order: the first author is the one named first on the book.
    authors = models.ManyToManyField(Author, through="BookAuthor", related_name="books", blank=True)
    people = models.ManyToManyField(Person, related_name="books", blank=True)
    places = models.ManyToManyField(Place, related_name="books", blank=True)
    subjects = models.ManyToManyField(Subject, related_name="books", blank=True)
    error = models.TextField(blank=True)
    batch = models.ForeignKey(BookBatch, on_delete=models.SET_NULL, null=True, blank=True, related_name="books")
    job = models.OneToOneField("jobs.Job", on_delete=models.PROTECT, related_name="book", null=True)
    looked_up_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # A batch's progress is a count of its books by status.
            models.Index(fields=["batch", "status"], name="book_batch_status"),
            models.Index(fields=["title"], name="book_title"),
        ]

    def __str__(self) -> str:
        return f"{self.title or 'Book'} (ISBN {self.isbn}, {self.status})"

    @property
    def ordered_authors(self) -> list[Author]:
        """The book's authors in OpenLibrary's order (from a prefetch of ``credits`` when there is one)."""
        return [credit.author for credit in self.credits.all()]


class BookAuthor(models.Model):
    """An author of a book, at their place in its list of authors."""

    book = models.ForeignKey(Book, on_delete=models.CASCADE, related_name="credits")
    author = models.ForeignKey(Author, on_delete=models.CASCADE, related_name="credits")
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        # The table Django made for the plain many-to-many, kept with its rows.
        db_table = "books_book_authors"
        ordering = ["position", "id"]
        unique_together = [("book", "author")]

    def __str__(self) -> str:
        return f"{self.author} ({self.position + 1}) on {self.book}"
