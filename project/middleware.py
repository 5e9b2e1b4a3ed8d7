"""Refuse oversized request bodies with a clear 413 before anything reads them."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig

from project.api import error_response


def _too_large():
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return error_response(413, "too_large", f"Request body is larger than {limit} bytes.")


class RequestSizeLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return error_response(400, "bad_request", "Content-Length is not a number.")
        if length > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
            return _too_large()
        return self.get_response(request)

    def process_exception(self, request, exception):
        # A body without Content-Length is only measured as it is read.
        if isinstance(exception, RequestDataTooBig):
            return _too_large()
        return None
