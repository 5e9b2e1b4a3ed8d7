"""``manage.py register_books``: the command line sends work through the same API as the views."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from books.models import Book
from jobs.models import Job
from project.names import BOOKS

pytestmark = pytest.mark.django_db(transaction=True)


def test_registers_isbns_and_queues_a_lookup_job_for_each(user, tmp_path, capsys):
    listing = tmp_path / "isbns.txt"
    listing.write_text("0-14-032872-6\n\nnot-an-isbn\n")
    call_command("register_books", "9780261103573", "--user", user.username, "--file", str(listing))
    out, err = capsys.readouterr()
    assert "2 queued" in out and "1 invalid" in out
    assert "invalid: 'not-an-isbn'" in err
    books = Book.objects.filter(isbn__in=["9780140328721", "9780261103573"])
    assert books.count() == 2
    jobs = Job.objects.filter(kind="book", channel=BOOKS, user=user)
    assert sorted(jobs.values_list("subject_id", flat=True)) == sorted(str(b.pk) for b in books)


def test_an_unknown_user_is_a_clear_error(db):
    with pytest.raises(CommandError, match="No user 'nobody'"):
        call_command("register_books", "9780261103573", "--user", "nobody")
