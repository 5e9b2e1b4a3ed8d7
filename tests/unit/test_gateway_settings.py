"""PAYMENT_GATEWAY and the Braintree settings: read once, refused loudly when incomplete."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from tests.support import settings_under

KEYS = {"BRAINTREE_MERCHANT_ID": "m", "BRAINTREE_PUBLIC_KEY": "pub", "BRAINTREE_PRIVATE_KEY": "priv"}


def load(monkeypatch, **env: str) -> dict:
    """Run project/settings.py afresh under this environment (development defaults); its module globals."""
    return settings_under(monkeypatch, {"DEBUG": "1"} | env)


def test_the_sandbox_is_the_default(monkeypatch):
    settings = load(monkeypatch)
    assert settings["PAYMENT_GATEWAY"] == "sandbox"
    assert settings["PAYMENT_GATEWAY_URL"].endswith("/sandbox/gateway/")
    assert settings["BRAINTREE_ENVIRONMENT"] == "sandbox"


def test_braintree_with_its_keys_needs_no_gateway_url(monkeypatch):
    settings = load(monkeypatch, PAYMENT_GATEWAY="Braintree", SANDBOX_ENABLED="0",
                    BRAINTREE_ENVIRONMENT="production", OPENLIBRARY_USER_AGENT="Shop/1 (ops@shop.example)", **KEYS)
    assert settings["PAYMENT_GATEWAY"] == "braintree"
    assert settings["BRAINTREE_ENVIRONMENT"] == "production"
    assert settings["BRAINTREE_PRIVATE_KEY"] == "priv"


def test_braintree_without_its_keys_names_the_missing_ones(monkeypatch):
    with pytest.raises(ImproperlyConfigured, match="BRAINTREE_PUBLIC_KEY, BRAINTREE_PRIVATE_KEY"):
        load(monkeypatch, PAYMENT_GATEWAY="braintree", BRAINTREE_MERCHANT_ID="m")


@pytest.mark.parametrize(
    "env, message",
    [
        ({"PAYMENT_GATEWAY": "paypal"}, "PAYMENT_GATEWAY must be"),
        ({"BRAINTREE_ENVIRONMENT": "staging"}, "BRAINTREE_ENVIRONMENT must be"),
        ({"SANDBOX_ENABLED": "0"}, "PAYMENT_GATEWAY_URL must be set"),
    ],
)
def test_misconfiguration_stops_start_up(monkeypatch, env, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        load(monkeypatch, **env)
