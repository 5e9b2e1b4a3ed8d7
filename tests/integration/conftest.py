from __future__ import annotations

import pytest


@pytest.fixture
def sandbox_openlibrary(sandbox_server, settings) -> str:
    """Point the product's OpenLibrary client at the (healthy) sandbox."""
    settings.OPENLIBRARY_URL = sandbox_server().removesuffix("gateway/") + "openlibrary"
    return settings.OPENLIBRARY_URL


@pytest.fixture
def fake_braintree(monkeypatch):
    """A fake Braintree XML API over real HTTP (tests/fake_braintree.py)."""
    from tests.fake_braintree import FakeBraintree

    # The SDK installs the environment's proxies on its session; never send 127.0.0.1 through one.
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    server = FakeBraintree().start()
    yield server
    server.stop()


@pytest.fixture
def braintree_gateway(fake_braintree, settings, monkeypatch):
    """PAYMENT_GATEWAY=braintree, with Braintree's sandbox environment pointing at the fake."""
    import integrations.gateway
    from integrations.braintree import client as braintree_client
    from tests.fake_braintree import MERCHANT_ID, PRIVATE_KEY, PUBLIC_KEY

    monkeypatch.setitem(braintree_client.ENVIRONMENTS, "sandbox", fake_braintree.environment)
    settings.PAYMENT_GATEWAY = "braintree"
    settings.BRAINTREE_ENVIRONMENT = "sandbox"
    settings.BRAINTREE_MERCHANT_ID, settings.BRAINTREE_PUBLIC_KEY = MERCHANT_ID, PUBLIC_KEY
    settings.BRAINTREE_PRIVATE_KEY = PRIVATE_KEY
    integrations.gateway._braintree.cache_clear()
    yield fake_braintree
    integrations.gateway._braintree.cache_clear()
