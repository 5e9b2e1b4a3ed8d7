"""Careless and hostile HTTP clients get a clear 4xx in the one error shape."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from orders.models import Order

pytestmark = pytest.mark.django_db

ORDER = {"amount": "12.50", "nonce": "fake-valid-nonce"}


def assert_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) <= {"code", "message", "fields"} and body["message"]
    if code:
        assert body["code"] == code
    return body


def test_too_large_body_is_413(api):
    response = api.generic("POST", "/api/orders/", b'{"amount": "1.00", "nonce": "' + b"x" * 300_000 + b'"}',
                           content_type="application/json")
    assert_error(response, 413, "too_large")
    assert not Order.objects.exists()


def test_wrong_method_is_405(api):
    assert_error(api.delete("/api/orders/"), 405, "method_not_allowed")
    assert_error(api.put("/api/jobs/1/", {}), 405)


def test_wrong_media_type_is_415(api):
    response = api.generic("POST", "/api/orders/", "amount=1", content_type="application/x-www-form-urlencoded")
    assert_error(response, 415, "unsupported_media_type")


def test_huge_and_malformed_ids_are_404(api):
    for path in ("/api/orders/99999999999999999999999/", "/api/orders/abc/", "/api/jobs/-1/"):
        assert_error(api.get(path), 404)


# "12.50\n" and "fake-valid-nonce\n": a pattern's "$" matches before a final newline.
@pytest.mark.parametrize("amount", [12.5, 12, True, None, ["1"], {"v": "1"}, " 12.50", "+12.50", "1e3", "0.00", "-0",
                                    "12.50\n", "12.50\r\n", "\n12.50"])
def test_amount_must_be_a_plain_positive_string(api, amount):
    body = assert_error(api.post("/api/orders/", {"amount": amount, "nonce": "fake-valid-nonce"}, format="json"), 400)
    assert "amount" in body["fields"]


@pytest.mark.parametrize("nonce", [0, True, ["a"], " ", "a b", "x" * 101, "<script>", "fake-valid-nonce\n",
                                   "\nfake-valid-nonce"])
def test_nonce_must_be_a_short_token(api, nonce):
    body = assert_error(api.post("/api/orders/", {"amount": "1.00", "nonce": nonce}, format="json"), 400)
    assert "nonce" in body["fields"]


@pytest.fixture
def rates(monkeypatch):
    """Set throttle rates for one test (DRF reads them into the class at import)."""

    def set_rates(**scopes):
        monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"orders": "120/minute", "auth": "30/minute"} | scopes)
        cache.clear()

    yield set_rates
    cache.clear()


def test_order_creation_is_throttled_per_user_with_retry_after(make_user, rates):
    rates(orders="5/minute")
    alice, bob = APIClient(), APIClient()
    alice.force_authenticate(make_user())
    bob.force_authenticate(make_user())
    assert [alice.post("/api/orders/", ORDER, format="json").status_code for _ in range(5)] == [202] * 5
    response = alice.post("/api/orders/", ORDER, format="json")
    assert_error(response, 429, "throttled")
    assert int(response["Retry-After"]) > 0
    # Per user: another user is not affected, and reading is never throttled.
    assert bob.post("/api/orders/", ORDER, format="json").status_code == 202
    assert alice.get("/api/orders/").status_code == 200


def test_token_endpoint_is_throttled_against_password_guessing(make_user, rates):
    rates(auth="3/minute")
    make_user("eve-target")
    client = APIClient()
    codes = [client.post("/api/auth/token/", {"username": "eve-target", "password": f"guess{i}"},
                         format="json").status_code for i in range(4)]
    assert codes == [400, 400, 400, 429]


def test_session_writes_need_the_csrf_token_and_token_clients_do_not(user, token):
    browser = APIClient(enforce_csrf_checks=True)
    browser.force_login(user)
    refused = browser.post("/api/orders/", ORDER, format="json")
    body = assert_error(refused, 403, "permission_denied")
    assert "CSRF" in body["message"]
    browser.get("/")  # the page sets the CSRF cookie
    accepted = browser.post("/api/orders/", ORDER, format="json",
                            HTTP_X_CSRFTOKEN=browser.cookies["csrftoken"].value)
    assert accepted.status_code == 202
    script = APIClient(enforce_csrf_checks=True)
    script.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert script.post("/api/orders/", ORDER, format="json").status_code == 202


def test_invalid_token_is_401_not_anonymous(db):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    assert_error(client.get("/api/orders/"), 401, "authentication_failed")


def test_throttle_fails_open_when_its_cache_is_down(api, settings, monkeypatch):
    from django.core.cache import caches

    from devtools.processes import free_port

    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": f"redis://127.0.0.1:{free_port()}/0"}}
    monkeypatch.setattr(SimpleRateThrottle, "cache", caches["default"])
    response = api.post("/api/orders/", ORDER, format="json")
    assert response.status_code == 202  # durable; the throttle could not count it
