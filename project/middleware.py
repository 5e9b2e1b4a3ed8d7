"""The product's middleware: the body size limit, and one thread for the whole chain."""

from __future__ import annotations

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.core.exceptions import RequestDataTooBig

from project.api import body_too_large_error, error_response


def _too_large():
    error = body_too_large_error(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
    return error_response(413, error["code"], error["message"])


class RequestSizeLimitMiddleware:
    """Refuse oversized request bodies with a clear 413 before a view reads them.

    Under daphne a body over the limit never gets this far: it is refused
    as it arrives (project/bodylimit.py).  This keeps the same limit and
    answer wherever daphne is not the server: WSGI, and the test client.
    """

    # Both sync and async, like Django's own middleware: under daphne one
    # sync-only middleware in the chain costs every request two more hops
    # between the event loop and a thread.
    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request):
        if iscoroutinefunction(self):
            return self.__acall__(request)
        refused = self._refused(request)
        return refused if refused is not None else self.get_response(request)

    async def __acall__(self, request):
        refused = self._refused(request)
        return refused if refused is not None else await self.get_response(request)

    @staticmethod
    def _refused(request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return error_response(400, "bad_request", "Content-Length is not a number.")
        if length > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
            return _too_large()
        return None

    def process_exception(self, request, exception):
        # A body without Content-Length is only measured as it is read.
        if isinstance(exception, RequestDataTooBig):
            return _too_large()
        return None


class OneThreadMiddleware:
    """Keeps the whole middleware chain in one thread; last in ``MIDDLEWARE``.

    Under daphne Django runs async-capable middleware on the event loop, and
    its built-in ones (``MiddlewareMixin``) then hop to a thread for every
    ``process_request`` and ``process_response``: about a dozen hops per
    request.  One sync-only middleware at the innermost place makes Django
    run every middleware outside it in sync mode, in the one thread the
    request already hops to; only the view's own call crosses back.
    """

    sync_capable = True
    async_capable = False

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)
