"""The request path under daphne: one hop to a thread for a sync view, none for the middleware."""

from __future__ import annotations

import logging

import pytest
from django.core.handlers.asgi import ASGIHandler
from django.test import AsyncClient


class Said(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_no_middleware_makes_a_request_hop_between_the_loop_and_a_thread(settings):
    # Django logs each adaptation it makes while it builds the chain, in DEBUG.
    settings.DEBUG = True
    said, logger = Said(), logging.getLogger("django.request")
    level = logger.level
    logger.addHandler(said)
    logger.setLevel(logging.DEBUG)
    try:
        ASGIHandler()
    finally:
        logger.removeHandler(said)
        logger.setLevel(level)
    assert [m for m in said.messages if "adapted for middleware" in m] == []


@pytest.mark.django_db
async def test_static_files_and_pages_are_still_served_on_the_loop(settings):
    client = AsyncClient()
    static = await client.get("/static/jobs/progress.js")
    assert static.status_code == 200 and b"export" in b"".join(static.streaming_content)
    assert (await client.get("/accounts/login/")).status_code == 200
    too_big = await client.post("/api/orders/", data=b"x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1),
                                content_type="application/json")
    assert too_big.status_code == 413
