"""Fuzz the HTTP API from its own OpenAPI schema with schemathesis.

Bounded in examples per operation.  Every answer must be a documented status
with a body that fits the schema, and never a 5xx: with DEBUG off, and with it
on, where Django answers some errors itself with its HTML pages.
"""

from __future__ import annotations

import pytest
import schemathesis
from schemathesis.specs.openapi.checks import positive_data_acceptance
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from rest_framework.throttling import SimpleRateThrottle

from books.models import Author, Book
from tests.factories import make_order

schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())


@pytest.fixture
def auth_headers(db, make_user, monkeypatch):
    # Fuzzing is not abuse: no throttling here (its 429s are tested elsewhere).
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"orders": None, "auth": None, "books": None})
    owner = make_user("fuzz-owner")
    make_order(owner)  # something to find, and a foreign object for everyone else
    user = make_user("fuzzer")
    make_order(user)
    # A book not looked up yet, by an author without a page: fields still empty.
    Book.objects.create(isbn="9780345418913").authors.add(Author.objects.create(key="/authors/ol1a", name="Adams"))
    return {"Authorization": f"Token {Token.objects.create(user=user).key}"}


@pytest.fixture
def debug_on(settings):
    settings.DEBUG = True


def call_and_validate(case, headers):
    # Schema-valid but wrong credentials are a 400, as DRF has always answered
    # them; everywhere else schema-valid input must be accepted.
    excluded = [positive_data_acceptance] if case.path == "/api/auth/token/" else []
    case.call_and_validate(headers=headers, excluded_checks=excluded)


@pytest.mark.django_db(transaction=True)
@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_5xx_and_every_answer_fits_the_schema(case, auth_headers):
    call_and_validate(case, auth_headers)


# Fewer examples: what DEBUG changes is how errors are answered, not which.
@pytest.mark.django_db(transaction=True)
@schema.parametrize()
@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_5xx_and_every_answer_fits_the_schema_with_debug_on(case, auth_headers, debug_on):
    call_and_validate(case, auth_headers)


@pytest.mark.django_db(transaction=True)
@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_anonymous_clients_get_documented_refusals(case, db):
    response = case.call()
    assert response.status_code < 500, response.text
