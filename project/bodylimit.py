"""Request bodies over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` refused as daphne receives them, not once read.

daphne calls the ASGI application only after Twisted has received the whole
body, in memory or in a temporary file, so neither an ASGI wrapper nor a
Django middleware can refuse a body before it is read: a 50 MB upload is on
disk before the 413.  Twisted tells the request its declared length as soon
as the headers are in (``gotLength``) and hands it the body chunk by chunk
(``handleContentChunk``).  ``BodyLimitedRequest`` answers 413 there, in the
API's error shape: on a Content-Length over the limit before a byte of the
body is read, and on a chunked body the moment it passes the limit.  Then it
closes the connection without reading on, and the application never hears
of the request.

``install()`` puts it in place of daphne's own request class, which daphne's
HTTP factory looks up each time it builds a connection.  The Django
middleware (``RequestSizeLimitMiddleware``) keeps the same limit wherever
daphne is not the server: WSGI, and the test client.
"""

from __future__ import annotations

import json
import logging

from daphne import http_protocol
from django.conf import settings

from project.api import body_too_large_error

logger = logging.getLogger(__name__)


class BodyLimitedRequest(http_protocol.WebRequest):
    """daphne's request, refusing a body over the limit as it arrives."""

    refused = False
    received = 0

    def gotLength(self, length: int | None) -> None:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if length is not None and length > limit:
            # Twisted answers "Expect: 100-continue" right after this; the
            # client must get the 413 instead, and send no body at all.
            self.requestHeaders.removeHeader(b"expect")
            self._refuse(limit, declared=length)
            length = 0  # no spool file for a body that is never read
        super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:
        if self.refused:
            return  # what was already in the buffer with the refused request
        self.received += len(data)
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if self.received > limit:
            self._refuse(limit, declared=None)
            return
        super().handleContentChunk(data)

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        # The end of a refused body can come in the same read as its last
        # chunk: the application must never see that request.
        if not self.refused:
            super().requestReceived(command, path, version)

    def _refuse(self, limit: int, *, declared: int | None) -> None:
        self.refused = True
        body = json.dumps(body_too_large_error(limit)).encode()
        head = (
            b"HTTP/1.1 413 Request Entity Too Large\r\n"
            b"Content-Type: application/json\r\n"
            b"Content-Length: %d\r\n"
            b"Connection: close\r\n\r\n" % len(body)
        )
        # Straight to the socket: Twisted's own response machinery expects a
        # request it has finished receiving.  loseConnection stops reading at
        # once and closes after the answer is written.
        transport = self.channel.transport
        transport.write(head + body)
        transport.loseConnection()
        logger.warning(
            "Refused a request body over DATA_UPLOAD_MAX_MEMORY_SIZE (%d bytes): %s",
            limit,
            f"Content-Length {declared}" if declared is not None else f"{self.received} bytes received so far",
            extra={"limit": limit, "content_length": declared, "received": self.received},
        )


def install() -> None:
    """Make every HTTP connection daphne accepts from now on use ``BodyLimitedRequest``."""
    http_protocol.WebRequest = BodyLimitedRequest
