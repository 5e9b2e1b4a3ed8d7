from __future__ import annotations

import pytest


@pytest.fixture
def sandbox_openlibrary(sandbox_server, settings) -> str:
    """Point the product's OpenLibrary client at the (healthy) sandbox."""
    settings.OPENLIBRARY_URL = sandbox_server().removesuffix("gateway/") + "openlibrary"
    return settings.OPENLIBRARY_URL
