"""The request path under daphne: every middleware in one thread, not a hop per middleware."""

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


def test_the_middleware_chain_runs_in_one_thread(settings):
    # Django logs each adaptation it makes while it builds the chain, in
    # DEBUG.  The only one: the innermost middleware calling Django's async
    # view handler.  Any other would mean middleware on the event loop, each
    # hopping to a thread for its process_request and process_response.
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
    assert [m for m in said.messages if "adapted for" in m] == [
        "Asynchronous handler adapted for middleware project.middleware.OneThreadMiddleware."
    ]


@pytest.mark.django_db
async def test_static_files_pages_and_the_size_limit_still_work_under_asgi(settings):
    client = AsyncClient()
    static = await client.get("/static/jobs/progress.js")
    assert static.status_code == 200 and b"export" in b"".join(static.streaming_content)
    assert (await client.get("/accounts/login/")).status_code == 200
    too_big = await client.post("/api/orders/", data=b"x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1),
                                content_type="application/json")
    assert too_big.status_code == 413
