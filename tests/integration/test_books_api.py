"""The books API as a client sees it: bulk registration, its refusals, and reading."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from rest_framework.test import APIClient

from books.models import Author, Book, BookBatch, BookStatus, Person, Subject
from books.kinds import BOOK, BOOK_BATCH
from jobs.models import Job
from project.names import BOOK_BATCHES, BOOKS, JOB_RUN

pytestmark = pytest.mark.django_db

FIXTURES = ["9780345418913", "9780451524935", "9780451526342", "9781101990322", "9780143133438"]
UNKNOWN = "9780000000026"  # valid, and at no OpenLibrary


def bulk(api, isbns, **kwargs):
    return api.post("/api/books/bulk/", {"isbn": isbns}, format="json", **kwargs)


def test_bulk_classifies_each_string_and_queues_one_transaction(api, user, channel_layer, django_capture_on_commit_callbacks):
    Book.objects.create(isbn="9780451526342")  # registered earlier by someone
    sent = ["0-345-41891-3", "9780451524935", "9780451526342", "9781101990322", "9780143133438",
            UNKNOWN, "9780345418914", "978-0-451-52493-5"]
    with django_capture_on_commit_callbacks(execute=True):
        response = bulk(api, sent)
    assert response.status_code == 202, response.json()
    body = response.json()

    assert [(a["input"], a["isbn"]) for a in body["accepted"]] == [
        ("0-345-41891-3", "9780345418913"), ("9780451524935", "9780451524935"),
        ("9781101990322", "9781101990322"), ("9780143133438", "9780143133438"), (UNKNOWN, UNKNOWN),
    ]
    assert [(d["input"], d["isbn"], d["reason"]) for d in body["duplicates"]] == [
        ("9780451526342", "9780451526342", "Already registered."),
        ("978-0-451-52493-5", "9780451524935", "Repeated in this request."),
    ]
    assert body["invalid"] == [
        {"input": "9780345418914", "reason": "Wrong check digit for an ISBN-13: it ends in 4, expected 3."}
    ]
    # Each accepted ISBN is a pending book with its own job on the books channel...
    books = {b.isbn: b for b in Book.objects.filter(isbn__in=[a["isbn"] for a in body["accepted"]])}
    for item in body["accepted"]:
        book = books[item["isbn"]]
        assert item["id"] == book.pk and item["url"].endswith(f"/api/books/{book.pk}/")
        assert book.status == BookStatus.PENDING
        assert (book.job.kind, book.job.channel, book.job.user, book.job.payload["isbn"]) == (
            BOOK.name, BOOKS, user, book.isbn)
    # ...in one batch with a job of its own.
    batch = BookBatch.objects.get(pk=body["batch"]["id"])
    assert body["batch"] == {"id": batch.pk, "total": 5}
    assert set(batch.books.all()) == set(books.values())
    assert (batch.user, batch.job.kind, batch.job.channel, batch.job.progress) == (user, BOOK_BATCH.name, BOOK_BATCHES, 0)
    assert body["job"]["id"] == batch.job_id and body["job"]["url"].endswith(f"/api/jobs/{batch.job_id}/")
    assert response["Location"] == body["job"]["url"]
    assert body["duplicates"][1]["id"] == books["9780451524935"].pk

    # After the commit: the batch's message, then one per book.
    receive = async_to_sync(channel_layer.receive)
    assert receive(BOOK_BATCHES) == {"type": JOB_RUN, "job": batch.job_id}
    assert [receive(BOOKS)["job"] for _ in range(5)] == [books[a["isbn"]].job_id for a in body["accepted"]]


def test_nothing_new_answers_200_without_a_batch(api):
    Book.objects.create(isbn="9780345418913")
    response = bulk(api, ["0345418913", "12"])
    assert response.status_code == 200
    body = response.json()
    assert body["batch"] is None and body["job"] is None and body["accepted"] == []
    assert [d["reason"] for d in body["duplicates"]] == ["Already registered."]
    assert body["duplicates"][0]["status"] == "pending"
    assert body["invalid"][0]["reason"] == "Has 2 digits; an ISBN has 10 or 13."
    assert not BookBatch.objects.exists() and not Job.objects.exists()


@pytest.mark.parametrize(
    "body, message",
    [
        ({"isbn": "9780345418913"}, 'isbn: Send "isbn" as a list of strings'),
        ({"isbn": {"a": 1}}, 'isbn: Send "isbn" as a list of strings'),
        ({"isbn": None}, "isbn: This field may not be null."),
        ({}, "isbn: This field is required."),
        ({"isbn": []}, "isbn: Send at least one ISBN."),
        ({"isbn": ["9780345418913", 9780451524935]}, "isbn: 1: Each ISBN must be a string."),
        ({"isbn": [None]}, "isbn: 0: "),
        ({"isbn": ["1" * 41]}, "isbn: 0: An ISBN is at most 40 characters."),
        (["9780345418913"], 'Send a JSON object: {"isbn": ['),
    ],
)
def test_malformed_bodies_are_400_with_a_clear_message(api, body, message):
    response = api.post("/api/books/bulk/", body, format="json")
    assert response.status_code == 400, response.json()
    assert response.json()["code"] == "invalid"
    assert response.json()["message"].startswith(message)
    assert not Book.objects.exists() and not Job.objects.exists()


def test_the_maximum_is_documented_and_enforced(api, settings):
    settings.BOOKS_BULK_MAX = 3
    response = bulk(api, ["9780345418913", "9780451524935", "9780451526342", "9781101990322"])
    assert response.status_code == 400
    assert response.json()["message"] == "isbn: At most 3 ISBNs per request; send the rest in another."
    assert bulk(api, ["9780345418913", "9780451524935", "9780451526342"]).status_code == 202
    schema = api.get("/api/schema/?format=json").json()
    field = schema["components"]["schemas"]["BulkRegisterRequest"]["properties"]["isbn"]
    assert (field["minItems"], field["maxItems"], field["items"]["maxLength"]) == (1, 3, 40)


def test_anonymous_cannot_register():
    assert APIClient().post("/api/books/bulk/", {"isbn": ["9780345418913"]}, format="json").status_code in (401, 403)


def test_registering_is_throttled_per_user(api, settings):
    from django.core.cache import cache
    from rest_framework.throttling import SimpleRateThrottle

    cache.clear()
    SimpleRateThrottle.THROTTLE_RATES = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "books": "2/minute"}
    try:
        assert bulk(api, ["bad"]).status_code == 200
        assert bulk(api, ["bad"]).status_code == 200
        response = bulk(api, ["bad"])
        assert response.status_code == 429 and "Retry-After" in response
        assert api.get("/api/books/").status_code == 200  # reading is not throttled
    finally:
        SimpleRateThrottle.THROTTLE_RATES = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
        cache.clear()


# --- reading ------------------------------------------------------------------------------


@pytest.fixture
def catalogue(db):
    """Two found books sharing an author and a subject, and a pending one."""
    orwell = Author.objects.create(key="/authors/ol118077a", name="George Orwell",
                                   openlibrary_url="https://openlibrary.org/authors/OL118077A")
    fiction = Subject.objects.create(key="/subjects/fiction", name="Fiction")
    dystopias = Subject.objects.create(key="/subjects/dystopias", name="Dystopias")
    winston = Person.objects.create(key="/subjects/person:winston_smith", name="Winston Smith")
    nineteen = Book.objects.create(isbn="9780451524935", title="Nineteen Eighty-Four", status="found", pages=328)
    nineteen.authors.add(orwell)
    nineteen.subjects.add(fiction, dystopias)
    nineteen.people.add(winston)
    farm = Book.objects.create(isbn="9780451526342", title="Animal Farm", status="found")
    farm.authors.add(orwell)
    farm.subjects.add(fiction)
    pending = Book.objects.create(isbn="9780345418913")
    return {"orwell": orwell, "fiction": fiction, "dystopias": dystopias, "winston": winston,
            "1984": nineteen, "farm": farm, "pending": pending}


def titles(response) -> list[str]:
    assert response.status_code == 200, response.json()
    return sorted(b["title"] or b["isbn"] for b in response.json()["results"])


def test_a_book_nests_its_authors_people_and_subjects(api, catalogue):
    body = api.get(f"/api/books/{catalogue['1984'].pk}/").json()
    assert (body["isbn"], body["title"], body["pages"], body["status"]) == ("9780451524935", "Nineteen Eighty-Four", 328, "found")
    assert [a["name"] for a in body["authors"]] == ["George Orwell"]
    assert body["authors"][0]["url"].endswith(f"/api/authors/{catalogue['orwell'].pk}/")
    assert body["authors"][0]["openlibrary_url"] == "https://openlibrary.org/authors/OL118077A"
    assert [p["name"] for p in body["people"]] == ["Winston Smith"]
    assert [s["name"] for s in body["subjects"]] == ["Dystopias", "Fiction"]


def test_an_author_person_or_subject_lists_its_books(api, catalogue):
    author = api.get(f"/api/authors/{catalogue['orwell'].pk}/").json()
    assert author["name"] == "George Orwell" and author["book_count"] == 2
    assert [b["title"] for b in author["books"]] == ["Animal Farm", "Nineteen Eighty-Four"]
    assert titles(api.get(author["books_url"])) == ["Animal Farm", "Nineteen Eighty-Four"]
    person = api.get(f"/api/people/{catalogue['winston'].pk}/").json()
    assert [b["isbn"] for b in person["books"]] == ["9780451524935"]
    subjects = api.get("/api/subjects/").json()["results"]
    assert [(s["name"], s["book_count"]) for s in subjects] == [("Dystopias", 1), ("Fiction", 2)]
    assert "books" not in subjects[0]  # lists stay small; the detail has them


def test_search_and_filters(api, catalogue):
    assert titles(api.get("/api/books/?search=farm")) == ["Animal Farm"]
    assert titles(api.get("/api/books/?search=orwell")) == ["Animal Farm", "Nineteen Eighty-Four"]
    assert titles(api.get("/api/books/?search=orwell dystop")) == ["Nineteen Eighty-Four"]
    assert titles(api.get("/api/books/?search=winston")) == ["Nineteen Eighty-Four"]
    assert titles(api.get("/api/books/?search=0-345-41891-3")) == ["9780345418913"]  # an ISBN-10 finds its book
    assert titles(api.get(f"/api/books/?author={catalogue['orwell'].pk}")) == ["Animal Farm", "Nineteen Eighty-Four"]
    assert titles(api.get(f"/api/books/?subject={catalogue['dystopias'].pk}")) == ["Nineteen Eighty-Four"]
    assert titles(api.get(f"/api/books/?person={catalogue['winston'].pk}")) == ["Nineteen Eighty-Four"]
    assert titles(api.get(f"/api/books/?subject={catalogue['fiction'].pk}&search=nineteen")) == ["Nineteen Eighty-Four"]
    assert titles(api.get("/api/books/?status=pending")) == ["9780345418913"]
    assert titles(api.get("/api/books/?author=999999")) == []
    assert titles(api.get("/api/books/?search=%00")) == ["9780345418913", "Animal Farm", "Nineteen Eighty-Four"]
    assert [a["name"] for a in api.get("/api/authors/?search=orw").json()["results"]] == ["George Orwell"]
    assert api.get("/api/people/?search=nobody").json()["results"] == []


@pytest.mark.parametrize(
    "query, field",
    [("author=abc", "author"), ("subject=-1", "subject"), ("author=0", "author"), ("person=1.5", "person"),
     ("subject=99999999999999999999", "subject"), ("status=lost", "status"), ("search=" + "x" * 101, "search"),
     ("batch=x", "batch")],
)
def test_invalid_filters_are_400_naming_the_field(api, catalogue, query, field):
    response = api.get(f"/api/books/?{query}")
    assert response.status_code == 400
    assert field in response.json()["fields"]


def test_the_catalogue_is_shared_but_batches_are_not(api, make_user):
    other = APIClient()
    other.force_authenticate(make_user())
    batch = bulk(other, ["9780345418913"]).json()["batch"]
    # Anyone sees the book...
    assert [b["isbn"] for b in api.get("/api/books/").json()["results"]] == ["9780345418913"]
    # ...but only its owner sees the batch, or its job.
    assert api.get(f"/api/books/?batch={batch['id']}").json()["results"] == []
    assert [b["isbn"] for b in other.get(f"/api/books/?batch={batch['id']}").json()["results"]] == ["9780345418913"]
    job_id = BookBatch.objects.get(pk=batch["id"]).job_id
    assert api.get(f"/api/jobs/{job_id}/").status_code == 404


def test_unknown_and_malformed_ids_are_404(api):
    for path in ("/api/books/999/", "/api/authors/999/", "/api/people/abc/", "/api/subjects/" + "9" * 30 + "/"):
        assert api.get(path).status_code == 404


def test_control_characters_in_an_isbn_make_it_invalid_not_a_refusal(api):
    body = bulk(api, ["978\x000345418913", "9780345418913\t"]).json()
    assert [i["input"] for i in body["invalid"]] == ["978\x000345418913"]
    assert [a["isbn"] for a in body["accepted"]] == ["9780345418913"]
