"""Queries about books, their authors, people and subjects, and batches."""

from __future__ import annotations

from django.db.models import Count, Exists, OuterRef, Prefetch, Q, QuerySet

from books.isbn import InvalidISBN, normalize_isbn
from books.models import Book, BookAuthor, BookBatch, Entity
from jobs.models import Job

# A search of more words than this is cut: each word is a few subqueries.
MAX_SEARCH_TERMS = 5


def _terms(search: str) -> list[str]:
    # PostgreSQL refuses NUL in a query parameter; it can never match anyway.
    return search.replace("\x00", "").split()[:MAX_SEARCH_TERMS]


def _name_match(through, field: str, term: str) -> Exists:
    # A subquery rather than a join: no duplicate rows, no DISTINCT needed.
    return Exists(through.objects.filter(book_id=OuterRef("pk"), **{f"{field}__name__icontains": term}))


def books_list(
    *,
    search: str = "",
    author_id: int | None = None,
    person_id: int | None = None,
    subject_id: int | None = None,
    status: str = "",
    batch_id: int | None = None,
    user=None,
) -> QuerySet[Book]:
    """The shared catalogue, filtered; ``batch_id`` only matches the user's own batches."""
    books = Book.objects.all()
    if author_id is not None:
        books = books.filter(Exists(Book.authors.through.objects.filter(book_id=OuterRef("pk"), author_id=author_id)))
    if person_id is not None:
        books = books.filter(Exists(Book.people.through.objects.filter(book_id=OuterRef("pk"), person_id=person_id)))
    if subject_id is not None:
        books = books.filter(Exists(Book.subjects.through.objects.filter(book_id=OuterRef("pk"), subject_id=subject_id)))
    if status:
        books = books.filter(status=status)
    if batch_id is not None:
        books = books.filter(batch_id=batch_id, batch__user=user)
    for term in _terms(search):
        match = (
            Q(title__icontains=term)
            | Q(isbn__contains=term)
            | _name_match(Book.authors.through, "author", term)
            | _name_match(Book.people.through, "person", term)
            | _name_match(Book.subjects.through, "subject", term)
        )
        try:
            match |= Q(isbn=normalize_isbn(term))  # "0-345-41891-3" finds its ISBN-13
        except InvalidISBN:
            pass
        books = books.filter(match)
    return books.order_by("-created_at", "-id").prefetch_related(
        Prefetch("credits", queryset=BookAuthor.objects.select_related("author").order_by("position", "id")),
        "people",
        "places",
        "subjects",
    )


def entities_list(*, model: type[Entity], search: str = "") -> QuerySet:
    """Authors, people or subjects, with how many books each has."""
    entities = model.objects.all()
    for term in _terms(search):
        entities = entities.filter(name__icontains=term)
    # Explicit order: Django drops Meta.ordering from aggregating queries.
    return entities.annotate(book_count=Count("books")).order_by("name", "id")


def books_of(*, entity: Entity, limit: int) -> list[Book]:
    return list(entity.books.order_by("title", "id").only("id", "isbn", "title", "status")[:limit])


def book_counts(*, batch_id: int) -> dict[str, int]:
    """How many of a batch's books are in each status."""
    rows = Book.objects.filter(batch_id=batch_id).values("status").annotate(n=Count("id")).order_by()
    return {row["status"]: row["n"] for row in rows}


def batch_for_job(*, job: Job) -> BookBatch | None:
    try:
        return BookBatch.objects.filter(pk=int(job.subject_id)).first()
    except ValueError:
        return None

