"""Production settings: check --deploy passes, and unsafe setups refuse to start.

The settings module runs afresh under each environment with ``runpy``;
``check --deploy`` then checks those settings in this process.
"""

from __future__ import annotations

import importlib
from io import StringIO

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.test import override_settings
from django.urls import Resolver404, clear_url_caches, resolve

import project.urls
from tests.support import settings_under

PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": "k8#Jq2!vZ9@pL4$wX7^mN1&bR6*tY3(uE5)iO0-aS8_dF2+gH4=jK7",
    "ALLOWED_HOSTS": "pay.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://pay.example.com",
    "BEHIND_TLS_PROXY": "1",
    "PAYMENT_GATEWAY_URL": "https://gateway.example.com/",
    "PAYMENT_GATEWAY_KEY": "the-gateways-merchant-key",
    "OPENLIBRARY_USER_AGENT": "PayExample/1.0 (ops@pay.example.com)",
    "DATABASE_URL": "sqlite:////tmp/deploy-check.sqlite3",
}
# Settings that define the test process itself (its apps, its database);
# every other production value is checked as the product would run with it.
_OWN = {"INSTALLED_APPS", "DATABASES", "CACHES", "CHANNEL_LAYERS", "LOGGING", "BASE_DIR"}


def test_check_deploy_passes_with_the_documented_production_settings(monkeypatch):
    production = settings_under(monkeypatch, PRODUCTION)
    overrides = {name: value for name, value in production.items() if name.isupper() and name not in _OWN}
    out = StringIO()
    with override_settings(**overrides):
        call_command("check", "--deploy", "--fail-level", "WARNING", stdout=out)
    assert "no issues" in out.getvalue()


@pytest.mark.parametrize("secret", ["", "insecure-development-key-do-not-use-in-production"])
def test_production_refuses_to_start_without_a_real_secret_key(monkeypatch, secret):
    with pytest.raises(ImproperlyConfigured, match="SECRET_KEY must be set"):
        settings_under(monkeypatch, PRODUCTION | {"SECRET_KEY": secret})


def test_production_needs_the_gateways_merchant_key(monkeypatch):
    without = {k: v for k, v in PRODUCTION.items() if k != "PAYMENT_GATEWAY_KEY"}
    with pytest.raises(ImproperlyConfigured, match="PAYMENT_GATEWAY_KEY must be set"):
        settings_under(monkeypatch, without)


@pytest.mark.parametrize("agent", ["", "PayExample/1.0", "python-requests/2.34"])
def test_production_names_itself_to_openlibrary_with_a_contact(monkeypatch, agent):
    with pytest.raises(ImproperlyConfigured, match="OPENLIBRARY_USER_AGENT must name this application"):
        settings_under(monkeypatch, PRODUCTION | {"OPENLIBRARY_USER_AGENT": agent})


def test_production_needs_allowed_hosts(monkeypatch):
    with pytest.raises(ImproperlyConfigured, match="ALLOWED_HOSTS must be set"):
        settings_under(monkeypatch, PRODUCTION | {"ALLOWED_HOSTS": ""})


def test_sandbox_and_demo_user_are_off_in_production_unless_enabled(monkeypatch):
    production = settings_under(monkeypatch, PRODUCTION)
    assert production["SANDBOX_ENABLED"] is False and production["DEMO_USER_ENABLED"] is False
    enabled = settings_under(monkeypatch, PRODUCTION | {"SANDBOX_ENABLED": "1", "DEMO_USER_ENABLED": "1"})
    assert enabled["SANDBOX_ENABLED"] is True and enabled["DEMO_USER_ENABLED"] is True


@pytest.mark.parametrize("enabled", [False, True])
def test_the_sandbox_is_mounted_only_when_enabled(enabled):
    try:
        with override_settings(SANDBOX_ENABLED=enabled):
            urls = importlib.reload(project.urls)
            clear_url_caches()
            if enabled:
                assert resolve("/sandbox/gateway/transactions/", urlconf=urls).url_name == "gateway-transactions"
            else:
                with pytest.raises(Resolver404):
                    resolve("/sandbox/gateway/transactions/", urlconf=urls)
    finally:
        importlib.reload(project.urls)
        clear_url_caches()


@pytest.mark.django_db
def test_the_demo_user_command_refuses_when_disabled():
    with override_settings(DEMO_USER_ENABLED=False), pytest.raises(CommandError, match="demo user is disabled"):
        call_command("demo_user")


def test_channel_layer_encryption_comes_from_the_environment(monkeypatch):
    env = PRODUCTION | {"REDIS_URL": "redis://127.0.0.1:6379/0", "CHANNEL_LAYER_ENCRYPTION_KEYS": "key-one,key-two"}
    layers = settings_under(monkeypatch, env)["CHANNEL_LAYERS"]
    assert layers["default"]["CONFIG"]["symmetric_encryption_keys"] == ["key-one", "key-two"]
