"""ISBN parsing: forms, check digits, conversion, and a reason for every refusal."""

import pytest

from books.isbn import REPEATED, InvalidISBN, classify, isbn10_to_isbn13, normalize_isbn


@pytest.mark.parametrize(
    "raw, isbn13",
    [
        ("9780345418913", "9780345418913"),
        ("978-0-345-41891-3", "9780345418913"),
        ("978 0 345 41891 3", "9780345418913"),
        (" 9780345418913\n", "9780345418913"),
        ("0345418913", "9780345418913"),  # ISBN-10 → ISBN-13
        ("0-451-52493-4", "9780451524935"),
        ("080442957X", "9780804429573"),  # X check digit
        ("0-8044-2957-x", "9780804429573"),  # lower-case x
        ("978\u20111\u2013101\u201299032\u20122", "9781101990322"),  # Unicode dashes from pasted text
        ("9791032305690", "9791032305690"),  # a 979 ISBN
    ],
)
def test_valid_isbns_become_their_isbn13(raw, isbn13):
    assert normalize_isbn(raw) == isbn13


@pytest.mark.parametrize(
    "raw, reason",
    [
        ("", "Empty"),
        (" - ", "Empty"),
        ("9780345418914", "Wrong check digit for an ISBN-13: it ends in 4, expected 3."),
        ("0345418914", "Wrong check digit for an ISBN-10: it ends in 4, expected 3."),
        ("0804429579", "expected X"),
        ("97803454189", "Has 11 digits; an ISBN has 10 or 13."),
        ("12345", "Has 5 digits"),
        ("97803454189133", "Has 14 digits"),
        ("X345418913", "X may only be the last character"),
        ("978034541891X", "An ISBN-13 is digits only."),
        ("1234567890128", "starts with 978 or 979"),
        ("978-0-345-41891-3a", "Only digits, hyphens and spaces"),
        ("ISBN 9780345418913", "Only digits, hyphens and spaces"),
        ("٩٧٨٠٣٤٥٤١٨٩١٣", "Only digits, hyphens and spaces"),  # Arabic-Indic digits are not ISBN digits
        ("978.0.345.41891.3", "Only digits, hyphens and spaces"),
    ],
)
def test_invalid_isbns_say_why(raw, reason):
    with pytest.raises(InvalidISBN) as info:
        normalize_isbn(raw)
    assert reason in str(info.value)


def test_every_isbn10_check_digit_round_trips():
    # 0-306-40615-2 is the textbook example; its ISBN-13 is 978-0-306-40615-7.
    assert isbn10_to_isbn13("0306406152") == "9780306406157"
    assert normalize_isbn("9780306406157") == normalize_isbn("0-306-40615-2")


def test_classify_keeps_order_and_spots_repeats_in_any_form():
    result = classify(["0345418913", "bad", "978-0-345-41891-3", "9780451524935", "9780345418913"])
    assert [(e.input, e.isbn) for e in result.valid] == [("0345418913", "9780345418913"), ("9780451524935", "9780451524935")]
    assert [(e.input, e.reason) for e in result.repeated] == [("978-0-345-41891-3", REPEATED), ("9780345418913", REPEATED)]
    assert [e.input for e in result.invalid] == ["bad"]
    assert result.invalid[0].reason
