"""Every /api/ error is a 4xx in the one documented shape, with DEBUG on or off, and answers fit the schema."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from books.models import Author, Book
from tests.factories import make_order
from tests.integration.test_hostile_http import assert_error

pytestmark = pytest.mark.django_db

LISTS = ["/api/orders/", "/api/books/", "/api/jobs/", "/api/authors/"]
NESTED = b"[" * 50_000


@pytest.fixture(params=[False, True], ids=["debug-off", "debug-on"])
def debug(request, settings):
    """Both ways: with DEBUG on Django answers some errors itself, with its HTML pages."""
    settings.DEBUG = request.param
    return request.param


@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize("param", ["page", "page_size"])
# "²" and "٣" are digits to str.isdigit(); int() refuses the first and reads the second as 3.
@pytest.mark.parametrize("value", ["²", "٣", "1\n", "1.5", "-1", "0", "", "abc"])
def test_a_malformed_page_or_page_size_is_a_400_naming_it(api, debug, path, param, value):
    body = assert_error(api.get(path, {param: value}), 400, "invalid")
    assert list(body["fields"]) == [param]


@pytest.mark.parametrize("path", LISTS)
def test_a_page_number_of_thousands_of_digits_is_past_the_last_page_not_a_500(api, debug, path):
    # int() refuses more than 4,300 digits.
    assert_error(api.get(path, {"page": "9" * 5000}), 404, "not_found")
    body = assert_error(api.get(path, {"page_size": "9" * 5000}), 400, "invalid")
    assert list(body["fields"]) == ["page_size"]


def test_well_formed_pages_still_work(api, user):
    for _ in range(3):
        make_order(user)
    body = api.get("/api/orders/", {"page": "02", "page_size": "2"}).json()
    assert len(body["results"]) == 1 and body["count"] == 3


@pytest.mark.parametrize("path", ["/api/orders/", "/api/books/bulk/"])
def test_json_nested_too_deep_to_parse_is_a_400(api, debug, path):
    response = api.generic("POST", path, NESTED, content_type="application/json")
    body = assert_error(response, 400, "parse_error")
    assert "nested too deeply" in body["message"]


def test_json_nested_too_deep_for_the_token_endpoint_is_a_400(db, debug):
    response = APIClient().generic("POST", "/api/auth/token/", NESTED, content_type="application/json")
    assert_error(response, 400, "parse_error")


def test_json_nested_as_deep_as_the_parser_goes_is_an_ordinary_bad_input(api):
    response = api.generic("POST", "/api/orders/", b"[" * 200 + b"]" * 200, content_type="application/json")
    assert_error(response, 400, "invalid")


@pytest.mark.parametrize("path", ["/api/orders/abc/", "/api/nothing/", "/api/orders/1/more/", "/api/books/bulk/x/"])
def test_a_path_the_api_does_not_know_is_a_json_404(api, debug, path):
    body = assert_error(api.get(path), 404, "not_found")
    assert path in body["message"]
    assert_error(api.post(path, {}, format="json"), 404, "not_found")


def test_a_post_to_an_unknown_path_with_a_session_and_no_csrf_token_is_still_a_json_404(user, debug):
    browser = APIClient(enforce_csrf_checks=True)
    browser.force_login(user)
    assert_error(browser.post("/api/nothing/", {}, format="json"), 404, "not_found")


def test_a_list_without_its_trailing_slash_is_sent_on_to_it(api, debug):
    response = api.get("/api/orders?page=1")
    assert response.status_code == 301 and response["Location"] == "/api/orders/?page=1"
    assert_error(api.get("/api/nothing"), 404, "not_found")


@pytest.mark.parametrize("kind", ["orders", "jobs", "books", "authors"])
def test_missing_and_foreign_objects_are_the_same_json_404(api, make_user, debug, kind):
    foreign = make_order(make_user())
    ids = {"orders": foreign.pk, "jobs": foreign.job_id}
    missing = assert_error(api.get(f"/api/{kind}/987654321/"), 404, "not_found")
    assert missing["message"] not in ("None", "")
    if kind in ids:
        # Not yours: word for word what a missing one says, so ids tell nothing.
        assert assert_error(api.get(f"/api/{kind}/{ids[kind]}/"), 404, "not_found") == missing


def test_a_book_not_looked_up_yet_has_a_null_openlibrary_url_as_the_schema_says(api):
    book = Book.objects.create(isbn="9780345418913")
    author = Author.objects.create(key="/authors/ol1a", name="Douglas Adams")  # its URL was too long to keep
    book.authors.add(author)
    assert api.get(f"/api/books/{book.pk}/").json()["openlibrary_url"] is None
    assert api.get("/api/books/").json()["results"][0]["authors"][0]["openlibrary_url"] is None
    assert api.get(f"/api/authors/{author.pk}/").json()["openlibrary_url"] is None
    schemas = api.get("/api/schema/?format=json").json()["components"]["schemas"]
    for name in ("Book", "Author", "AuthorDetail", "EntityRef"):
        field = schemas[name]["properties"]["openlibrary_url"]
        assert field["format"] == "uri" and field["nullable"] is True, (name, field)


def test_a_found_book_keeps_its_openlibrary_url(api):
    url = "https://openlibrary.org/books/OL7035621M"
    book = Book.objects.create(isbn="9780345418913", status="found", openlibrary_url=url)
    assert api.get(f"/api/books/{book.pk}/").json()["openlibrary_url"] == url
