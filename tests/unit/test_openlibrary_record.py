"""Reading OpenLibrary records: every field optional, any field of any type."""

import json

import pytest

from books.services import entity_key
from integrations.openlibrary import BookRecord, Link

FULL = {
    "title": "  The Hitchhiker's   Guide to the Galaxy ",
    "number_of_pages": 224,
    "publish_date": "1995",
    "key": "/books/OL7035621M",
    "url": "https://openlibrary.org/books/OL7035621M/The_Hitchhiker's_Guide",
    "authors": [{"name": "Douglas Adams", "url": "https://openlibrary.org/authors/OL272947A/Douglas_Adams"}],
    "subject_people": [{"name": "Arthur Dent", "url": "https://openlibrary.org/subjects/person:arthur_dent"}],
    "subjects": [{"name": "Fiction", "url": "https://openlibrary.org/subjects/fiction"}],
}


def test_a_full_record():
    record = BookRecord.from_json(FULL)
    assert record.title == "The Hitchhiker's Guide to the Galaxy"
    assert (record.pages, record.publish_date, record.key) == (224, "1995", "/books/OL7035621M")
    assert record.url.startswith("https://openlibrary.org/books/OL7035621M")
    assert record.authors == (Link("Douglas Adams", "https://openlibrary.org/authors/OL272947A/Douglas_Adams"),)
    assert record.people == (Link("Arthur Dent", "https://openlibrary.org/subjects/person:arthur_dent"),)
    assert record.subjects == (Link("Fiction", "https://openlibrary.org/subjects/fiction"),)


def test_an_empty_record_is_all_defaults():
    assert BookRecord.from_json({}) == BookRecord()


@pytest.mark.parametrize(
    "field, value",
    [
        ("title", 42), ("title", None), ("title", ["a"]),
        ("number_of_pages", "many"), ("number_of_pages", -3), ("number_of_pages", True), ("number_of_pages", 1.5),
        ("number_of_pages", 10**9), ("publish_date", {"year": 1995}), ("key", 12), ("key", "no-slash"),
        ("url", "javascript:alert(1)"), ("url", 7), ("url", "openlibrary.org/books/x"),
        ("authors", "Douglas Adams"), ("authors", {"name": "x"}), ("authors", [None, 5, "x", {"name": ""}, {"url": "u"}]),
        ("subjects", [{"name": 5}]), ("subject_people", 0),
    ],
)
def test_a_field_of_the_wrong_type_is_left_out(field, value):
    record = BookRecord.from_json({**FULL, field: value})
    default = BookRecord()
    attr = {"number_of_pages": "pages", "subject_people": "people"}.get(field, field)
    assert getattr(record, attr) == getattr(default, attr)
    # Everything else is still read.
    assert record.publish_date == "1995" or field == "publish_date"


def test_wrongly_typed_parts_of_lists_are_skipped_and_the_rest_kept():
    record = BookRecord.from_json({"authors": [None, {"name": "A", "url": 7}, {"name": 3}, {"name": "B"}]})
    assert record.authors == (Link("A", ""), Link("B", ""))


def test_pages_as_a_string_of_digits_and_a_year_as_a_number():
    record = BookRecord.from_json({"number_of_pages": " 180 ", "publish_date": 1925})
    assert (record.pages, record.publish_date) == (180, "1925")


def test_nul_and_control_characters_are_removed():
    assert BookRecord.from_json({"title": "A\x00B\tC\nD"}).title == "AB C D"


def test_the_sandbox_fixture_with_every_type_wrong_reads_as_a_title_less_record():
    from sandbox.openlibrary import records_by_isbn

    record = BookRecord.from_json(json.loads(json.dumps(records_by_isbn()["9780000000019"])))
    assert record.title == "" and record.pages is None and record.url == "" and record.key == ""
    assert record.publish_date == "1950" and record.authors == () and record.people == ()
    assert record.subjects == (Link("Odd data", ""),)


@pytest.mark.parametrize(
    "a, b",
    [
        ("https://openlibrary.org/authors/OL272947A/Douglas_Adams", "http://openlibrary.org/authors/OL272947A"),
        ("https://openlibrary.org/authors/OL272947A/Douglas_Adams", "https://openlibrary.org/authors/ol272947a/D_Adams/"),
        ("https://openlibrary.org/subjects/Fiction", "https://openlibrary.org/subjects/fiction/"),
    ],
)
def test_entity_keys_ignore_scheme_host_case_and_slug(a, b):
    assert entity_key(Link("x", a)) == entity_key(Link("y", b))


def test_entity_keys_tell_different_records_apart_and_fall_back_to_the_name():
    assert entity_key(Link("Fiction", "https://openlibrary.org/subjects/fiction")) != entity_key(
        Link("Fiction", "https://openlibrary.org/subjects/person:fiction")
    )
    assert entity_key(Link("  George   ORWELL ", "")) == entity_key(Link("george orwell", "")) == "name:george orwell"


def test_subjects_with_a_hash_or_a_question_mark_keep_their_whole_name():
    # OpenLibrary does not escape "#" or "?" in subject URLs (the names are illustrative).
    c_sharp = Link("C# (Computer program language)", "https://openlibrary.org/subjects/c#_(computer_program_language)")
    c = Link("C (Computer program language)", "https://openlibrary.org/subjects/c_(computer_program_language)")
    what = Link("What?", "https://openlibrary.org/subjects/what?")
    keys = {entity_key(c_sharp), entity_key(c), entity_key(what), entity_key(Link("C", "https://openlibrary.org/subjects/c"))}
    assert len(keys) == 4
    assert entity_key(c_sharp) == "/subjects/c#_(computer_program_language)"


def test_the_page_count_comes_from_the_pagination_when_the_number_is_missing():
    assert BookRecord.from_json({"pagination": "242"}).pages == 242
    assert BookRecord.from_json({"pagination": "xiii, 657 p. :"}).pages == 657
    assert BookRecord.from_json({"pagination": "80p."}).pages == 80
    assert BookRecord.from_json({"pagination": "1 v. (unpaged)"}).pages is None
    assert BookRecord.from_json({"number_of_pages": 92, "pagination": "80p."}).pages == 92
