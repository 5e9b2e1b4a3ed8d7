"""Many workers creating the same authors, people and subjects at once, on the real database."""

from __future__ import annotations

import threading

import pytest
from django.db import close_old_connections, connection, transaction

from books.models import Author, Book, Subject
from books.services import book_fill, entities_get_or_create
from integrations.openlibrary import BookRecord, Link

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120), pytest.mark.engine]

THREADS = 8


def run_at_once(target, n: int = THREADS) -> list[BaseException]:
    """Start ``n`` threads that call ``target(i)`` at the same instant; return what they raised."""
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            barrier.wait()
            target(i)
        except BaseException as exc:  # collected and asserted on below
            errors.append(exc)
        finally:
            connection.close()  # each thread has its own connection

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    close_old_connections()
    return errors


ORWELL = Link("George Orwell", "https://openlibrary.org/authors/OL118077A/George_Orwell")
SUBJECTS = tuple(Link(name, f"https://openlibrary.org/subjects/{name.lower()}") for name in
                 ("Fiction", "Dystopias", "Politics", "Classics", "Satire"))


def test_the_same_records_created_at_once_are_one_row_each_and_nothing_escapes():
    results: dict[int, list] = {}

    def create(i: int) -> None:
        with transaction.atomic():
            # Some threads name them in another order, or under another URL spelling.
            subjects = SUBJECTS if i % 2 else tuple(reversed(SUBJECTS))
            author = ORWELL if i % 3 else Link("George Orwell", "http://openlibrary.org/authors/OL118077A")
            results[i] = [*entities_get_or_create(model=Author, links=(author,)),
                          *entities_get_or_create(model=Subject, links=subjects)]

    assert run_at_once(create) == []
    assert Author.objects.count() == 1
    assert Subject.objects.count() == len(SUBJECTS)
    # Every thread got the same rows back.
    assert len({tuple(sorted(r.pk for r in rows)) for rows in results.values()}) == 1


def test_books_sharing_records_filled_at_once_link_the_same_rows():
    books = [Book.objects.create(isbn=f"97800000{i:04d}0") for i in range(THREADS)]

    def fill(i: int) -> None:
        record = BookRecord(title=f"Book {i}", authors=(ORWELL,), subjects=SUBJECTS[: 1 + i % len(SUBJECTS)])
        book_fill(book=Book.objects.get(pk=books[i].pk), record=record)

    assert run_at_once(fill) == []
    orwell = Author.objects.get()
    assert orwell.books.count() == THREADS
    assert Subject.objects.count() == len(SUBJECTS)
    assert Subject.objects.get(name="Fiction").books.count() == THREADS
